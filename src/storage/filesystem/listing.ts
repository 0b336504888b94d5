import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredBlob, StoredUpload } from '../blob-store.ts';
import { ALGORITHMS, SHARD, blobPath, blobsDir, digestAt, isUploadId, uploadsDir } from './paths.ts';

/**
 * Unlinks running at once. libuv runs them on its thread pool (4 threads unless UV_THREADPOOL_SIZE
 * says otherwise), so this bounds the queue rather than the parallelism: enough to keep every
 * thread busy without holding a promise per blob of a large batch.
 */
const DELETE_CONCURRENCY = 64;
/** Stats running at once while a listing page is filled. */
const STAT_CONCURRENCY = 32;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Runs `fn` over `items` with at most `limit` calls pending; `fn` handles its own errors. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A directory's entry names, sorted; none when it does not exist (nothing was ever stored there). */
async function sortedNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}

/**
 * Whether every string starting with `prefix` sorts at or before `after`: then a directory whose
 * entries all start so need not be read.
 */
function whollyBefore(prefix: string, after: string | undefined): boolean {
  return after !== undefined && after > prefix && !after.startsWith(prefix);
}

/**
 * Size and modification time of regular files `names` (in `dir`), in order, until `want` are
 * found; files gone meanwhile, and anything that is not a regular file, are skipped.
 */
async function statFiles(dir: string, names: readonly string[], want: number): Promise<{ name: string; size: number; modifiedAt: number }[]> {
  const found: { name: string; size: number; modifiedAt: number }[] = [];
  for (let i = 0; i < names.length && found.length < want; ) {
    const batch = names.slice(i, i + (want - found.length));
    i += batch.length;
    const stats = new Array<{ name: string; size: number; modifiedAt: number } | undefined>(batch.length);
    let index = 0;
    await eachLimit(batch, STAT_CONCURRENCY, async (name) => {
      const at = index++;
      try {
        const s = await stat(join(dir, name));
        if (s.isFile()) stats[at] = { name, size: s.size, modifiedAt: s.mtimeMs };
      } catch (err) {
        // Deleted between the listing and the stat: not there any more.
        if (!isNotFound(err)) throw err;
      }
    });
    for (const s of stats) if (s) found.push(s);
  }
  return found;
}

/**
 * See `BlobStore.listBlobs`. Walks `blobs/<algorithm>/<shard>/` in digest order, reading one shard
 * directory at a time and none wholly before `after`: memory stays at one shard's names (a store
 * of 10 million sha256 blobs has some 40,000 in each) whatever the store holds.
 */
export async function listBlobs(root: string, after: string | undefined, limit: number): Promise<StoredBlob[]> {
  const found: StoredBlob[] = [];
  const top = blobsDir(root);
  const present = new Set(await sortedNames(top));
  for (const algorithm of ALGORITHMS) {
    if (found.length >= limit) break;
    if (!present.has(algorithm) || whollyBefore(`${algorithm}:`, after)) continue;
    for (const shard of await sortedNames(join(top, algorithm))) {
      if (found.length >= limit) break;
      if (!SHARD.test(shard) || whollyBefore(`${algorithm}:${shard}`, after)) continue;
      const dir = join(top, algorithm, shard);
      const names = (await sortedNames(dir)).filter((name) => {
        const digest = digestAt(algorithm, shard, name);
        return digest !== undefined && (after === undefined || digest > after);
      });
      for (const file of await statFiles(dir, names, limit - found.length)) {
        found.push({ digest: `${algorithm}:${file.name}`, size: file.size, modifiedAt: file.modifiedAt });
      }
    }
  }
  return found;
}

/**
 * See `BlobStore.listUploads`. Lists every file of `uploads/` named as an upload id — which
 * includes `putSmall`'s temporary `put-<random>` files: `deleteUpload` removes those too, and one
 * left by a crash is garbage like any abandoned upload. Directories are skipped (`deleteUpload`
 * cannot remove them, and Berth never makes one there). Order: that of `id + "/"`, as on S3.
 */
export async function listUploads(root: string, after: string | undefined, limit: number): Promise<StoredUpload[]> {
  const bound = after === undefined ? undefined : `${after}/`;
  const dir = uploadsDir(root);
  const names = (await sortedNames(dir))
    .filter((name) => isUploadId(name) && (bound === undefined || `${name}/` > bound))
    .sort((a, b) => (`${a}/` < `${b}/` ? -1 : 1));
  return (await statFiles(dir, names, limit)).map((f) => ({ id: f.name, modifiedAt: f.modifiedAt }));
}

/**
 * See `BlobStore.deleteBlobs`. Every digest is checked before anything is deleted. Empty shard
 * directories stay: a commit renames into a directory it made (or saw) earlier without looking
 * again, so removing one could fail a concurrent commit; there are at most 512 of them.
 */
export async function deleteBlobs(root: string, digests: readonly string[]): Promise<void> {
  const paths = digests.map((digest) => blobPath(root, digest));
  let failed = 0;
  let first: NodeJS.ErrnoException | undefined;
  await eachLimit(paths, DELETE_CONCURRENCY, async (path) => {
    try {
      await unlink(path);
    } catch (err) {
      if (isNotFound(err)) return;
      failed++;
      first ??= err as NodeJS.ErrnoException;
    }
  });
  if (failed > 0) throw new Error(`could not delete ${failed} of ${paths.length} blob(s) (${first?.code ?? 'unknown error'})`, { cause: first });
}
