// Real registry clients (docker, ctr, skopeo): push a generated image, pull it back, verify it.
export {
  type ClientRun,
  type ClientTls,
  type RegistryTarget,
  ClientFailure,
  diffIdOf,
  referenceOf,
} from './client-common.ts';
export { pushPullDocker } from './client-docker.ts';
export { type CtrOptions, pushPullCtr } from './client-ctr.ts';
export { type SkopeoOptions, pushPullSkopeo } from './client-skopeo.ts';
