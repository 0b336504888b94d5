// Real registry clients (docker, ctr, skopeo): push a generated image, pull it back, verify it.
export {
  type ClientRun,
  type ClientTls,
  type RegistryTarget,
  ClientFailure,
  DEFAULT_CLIENT_TIMEOUT_MS,
  diffIdOf,
  referenceOf,
} from './client-common.ts';
export { type DockerClientOptions, pushPullDocker } from './client-docker.ts';
export { type CtrOptions, pushPullCtr } from './client-ctr.ts';
export { type SkopeoOptions, pushPullSkopeo } from './client-skopeo.ts';
