// Push and pull with skopeo (containers/image: the code of podman, buildah and skopeo).
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RandomImage } from './images.ts';
import { cleanEnv } from './run.ts';
import { tmpDir } from './system.ts';
import { digestOf } from '../../src/domain/digest.ts';
import { type ClientRun, type RegistryTarget, Session, referenceOf, verifyPulledImage } from './client-common.ts';

/** Options for {@link pushPullSkopeo}. */
export interface SkopeoOptions {
  /** Scratch directory (cert dir, digest file, pulled copy); default a fresh temp dir, removed afterwards. */
  readonly workDir?: string;
  /** Add `--debug`, so a failure shows the HTTP requests skopeo made. */
  readonly debug?: boolean;
  /** Bound on each skopeo command; default DEFAULT_CLIENT_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

/**
 * skopeo copy docker-archive → docker:// with --dest-creds, then docker:// → dir: with
 * --src-creds, and check the pulled manifest digest, config and every layer against the image.
 * Plain targets use --*-tls-verify=false; TLS targets a cert dir holding only the CA (skopeo would
 * read any *.key next to it as a client certificate). registries.conf is an empty private file.
 */
export async function pushPullSkopeo(target: RegistryTarget, image: RandomImage, options: SkopeoOptions = {}): Promise<ClientRun> {
  const workDir = options.workDir ?? (await tmpDir('berth-skopeo'));
  const registriesConf = path.join(workDir, 'registries.conf');
  await writeFile(registriesConf, '');
  const session = new Session('skopeo', {
    env: cleanEnv({ CONTAINERS_REGISTRIES_CONF: registriesConf, REGISTRY_AUTH_FILE: path.join(workDir, 'auth.json') }),
    redact: [target.password],
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const tlsFlags = async (side: 'src' | 'dest'): Promise<string[]> => {
    if (target.tls === 'plain') return [`--${side}-tls-verify=false`];
    const certDir = path.join(workDir, 'certs');
    await mkdir(certDir, { recursive: true });
    await copyFile(target.tls.caFile, path.join(certDir, 'ca.crt'));
    return [`--${side}-cert-dir`, certDir];
  };
  const creds = `${target.username}:${target.password}`;
  const global = ['--insecure-policy', ...(options.debug ? ['--debug'] : [])];
  const reference = referenceOf(target);
  try {
    const digestFile = path.join(workDir, 'pushed.digest');
    await session.run('skopeo', [
      ...global, 'copy', '--dest-creds', creds, ...(await tlsFlags('dest')), '--digestfile', digestFile,
      `docker-archive:${image.archivePath}`, `docker://${reference}`,
    ]);
    const manifestDigest = (await readFile(digestFile, 'utf8')).trim();
    const pulled = path.join(workDir, 'pulled');
    await session.run('skopeo', [
      ...global, 'copy', '--src-creds', creds, ...(await tlsFlags('src')), `docker://${reference}`, `dir:${pulled}`,
    ]);
    const manifest = await readFile(path.join(pulled, 'manifest.json'));
    if (digestOf(manifest) !== manifestDigest) {
      throw session.fail(`pulled manifest is ${digestOf(manifest)}, pushed ${manifestDigest}`);
    }
    const readBlob = (digest: string): Promise<Buffer> => readFile(path.join(pulled, digest.replace(/^sha256:/, '')));
    await verifyPulledImage(session, image, manifest, readBlob);
    return { client: 'skopeo', reference, manifestDigest, transcript: session.transcript };
  } finally {
    if (!options.workDir) await rm(workDir, { recursive: true, force: true });
  }
}
