// Fresh random images as `docker save`-style archives (docker-archive), made without any daemon.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TarWriter } from './tar.ts';
import { tmpDir } from './system.ts';

/** What to generate. */
export interface RandomImageOptions {
  /** One entry per layer: size in bytes of the random file inside that layer. */
  readonly layerSizes: readonly number[];
  /** Directory for the archive; default a fresh temp dir. */
  readonly dir?: string;
  /** Name recorded in manifest.json RepoTags; default `berth-e2e/random:<hex>`. */
  readonly repoTag?: string;
}

/** A generated image and what a pulled copy must match. */
export interface RandomImage {
  /** The docker-archive tarball (docker load / ctr import / skopeo docker-archive:). */
  readonly archivePath: string;
  readonly dir: string;
  /** The repo:tag stored in the archive (what `docker load` tags it as). */
  readonly repoTag: string;
  /** `sha256:…` of the config JSON: the image ID in Docker, the manifest's config digest. */
  readonly configDigest: string;
  /** `sha256:…` of each uncompressed layer tar, in order (config rootfs.diff_ids). */
  readonly diffIds: readonly string[];
  /** Byte size of each uncompressed layer tar. */
  readonly layerTarSizes: readonly number[];
}

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

function* randomChunks(size: number): Generator<Buffer> {
  for (let left = size; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
}

interface LayerFile {
  readonly file: string;
  readonly diffId: string;
  readonly size: number;
}

async function writeLayer(file: string, index: number, size: number, mtime: number): Promise<LayerFile> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    const tar = new TarWriter(handle, hash);
    await tar.addDirectory('berth-e2e/', mtime);
    await tar.addFileFrom(`berth-e2e/layer-${index}-${randomBytes(4).toString('hex')}.bin`, size, randomChunks(size), mtime);
    await tar.finish();
    return { file, diffId: `sha256:${hash.digest('hex')}`, size: tar.bytesWritten };
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new image with one random file per layer as a docker-archive: manifest.json,
 * `<config hex>.json` (with rootfs.diff_ids and history) and `<diff_id hex>/layer.tar` per layer
 * (uncompressed, as `docker save` writes them). Random content makes every blob new to a registry.
 */
export async function createRandomImage(options: RandomImageOptions): Promise<RandomImage> {
  if (options.layerSizes.length === 0) throw new Error('an image needs at least one layer');
  const dir = options.dir ?? (await tmpDir('berth-image'));
  const nonce = randomBytes(6).toString('hex');
  const repoTag = options.repoTag ?? `berth-e2e/random:${nonce}`;
  const now = new Date();
  const mtime = Math.floor(now.getTime() / 1000);

  const layers: LayerFile[] = [];
  for (const [index, size] of options.layerSizes.entries()) {
    layers.push(await writeLayer(path.join(dir, `layer-${index}.tar.tmp`), index, size, mtime));
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: goArch(),
      os: 'linux',
      created: now.toISOString(),
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Labels: { 'org.berth.e2e.nonce': nonce },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: now.toISOString(), created_by: `berth e2e random layer ${i}` })),
    }),
  );
  const configHex = createHash('sha256').update(config).digest('hex');
  const layerPaths = layers.map((l) => `${l.diffId.slice('sha256:'.length)}/layer.tar`);
  const manifest = Buffer.from(JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [repoTag], Layers: layerPaths }]));

  const archivePath = path.join(dir, 'image.tar');
  const handle = await open(archivePath, 'w');
  try {
    const tar = new TarWriter(handle);
    for (const [index, layer] of layers.entries()) {
      const member = layerPaths[index] ?? '';
      await tar.addDirectory(path.dirname(member), mtime);
      const { size } = await stat(layer.file);
      await tar.addFileFrom(member, size, createReadStream(layer.file), mtime);
    }
    await tar.addFile(`${configHex}.json`, config, mtime);
    await tar.addFile('manifest.json', manifest, mtime);
    await tar.finish();
  } finally {
    await handle.close();
  }
  for (const layer of layers) await rm(layer.file, { force: true });
  return {
    archivePath,
    dir,
    repoTag,
    configDigest: `sha256:${configHex}`,
    diffIds: layers.map((l) => l.diffId),
    layerTarSizes: layers.map((l) => l.size),
  };
}
