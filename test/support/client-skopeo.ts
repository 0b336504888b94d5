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

/** A descriptor's digest and size, as a manifest lists it. */
export interface BlobFigures {
  readonly digest: string;
  readonly size: number;
}

/** Exactly what skopeo uploads when it pushes an image: the manifest's bytes and its blobs. */
export interface SkopeoPushPlan {
  /** The manifest bytes skopeo PUTs (Docker schema 2 for a docker-archive source). */
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  readonly config: BlobFigures;
  /** Layers as uploaded: gzip-compressed, so their sizes are not the archive's tar sizes. */
  readonly layers: readonly BlobFigures[];
}

/**
 * What {@link pushPullSkopeo} will upload for `image`, worked out without a registry: skopeo
 * compresses the archive's layers into a `dir:` with `--dest-compress` exactly as it does for a
 * registry (same gzip code and level; the output is deterministic), so the digests, sizes and
 * manifest bytes are those of the push. A test that relies on this checks the manifest digest the
 * push reports against `manifestDigest` (or finds the refused digest here), so a skopeo that stopped
 * being deterministic fails the test instead of passing it.
 */
export async function skopeoPushPlan(image: RandomImage): Promise<SkopeoPushPlan> {
  const workDir = await tmpDir('berth-skopeo-plan');
  try {
    const registriesConf = path.join(workDir, 'registries.conf');
    await writeFile(registriesConf, '');
    const session = new Session('skopeo', { env: cleanEnv({ CONTAINERS_REGISTRIES_CONF: registriesConf }) });
    const out = path.join(workDir, 'image');
    await session.run('skopeo', ['--insecure-policy', 'copy', '--dest-compress', `docker-archive:${image.archivePath}`, `dir:${out}`]);
    const manifest = await readFile(path.join(out, 'manifest.json'));
    const parsed = JSON.parse(manifest.toString('utf8')) as { config: BlobFigures; layers: BlobFigures[] };
    const figures = (d: BlobFigures): BlobFigures => ({ digest: d.digest, size: d.size });
    return { manifest, manifestDigest: digestOf(manifest), config: figures(parsed.config), layers: parsed.layers.map(figures) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
