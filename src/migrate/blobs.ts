// Copying blobs between two blob stores, each verified against its digest before the target shows it.
import { setTimeout as sleep } from 'node:timers/promises';
import { isDigest, newHash, type Algorithm } from '../domain/digest.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { AnyDatabase } from './tables.ts';

/** Blobs up to this size are read whole and stored with one `putSmall` (one request on S3). */
export const SMALL_BLOB_BYTES = 4 * 1024 * 1024;
/** Attempts per blob when reading or writing fails (a verification failure is never retried: the bytes would be the same). */
const ATTEMPTS = 3;

/** A blob that could not be copied, and why (a digest mismatch: the source's bytes are corrupt). */
export interface BlobFailure {
  digest: string;
  reason: string;
}

/** What happened to one blob. */
export type BlobOutcome = { digest: string; outcome: 'copied'; bytes: number } | { digest: string; outcome: 'skipped'; bytes: number } | { digest: string; outcome: 'failed'; reason: string };

/** What copying the blobs did. */
export interface BlobCopy {
  /** Blobs the metadata references. */
  total: number;
  copied: number;
  /** Already in the target with the source's size (an earlier run copied them). */
  skipped: number;
  /** Bytes this run copied. */
  bytes: number;
  failures: BlobFailure[];
}

/**
 * Every content object the metadata says storage holds, with its size: the `blobs` table (see
 * src/metadata/blobs.ts), without those garbage collection is deleting.
 */
export async function referencedBlobs(db: AnyDatabase): Promise<Map<string, number | undefined>> {
  const rows = await db.selectFrom('blobs').select(['digest', 'size']).where('deleting', '=', 0).execute();
  return new Map(rows.map((row) => [String(row['digest']), Number(row['size'])]));
}

/**
 * Copies each of `blobs` from `source` to `target`, `parallel` at a time, and reports each
 * through `onBlob`. A blob the target already has with the source's size is skipped. The bytes
 * are hashed on the way with the digest's algorithm and the result compared with the digest (and
 * the size with the source's) before the blob is committed in the target: a mismatch leaves the
 * target without it and is reported as a failure, as is a blob missing from the source or present
 * in the target with another size (never overwritten). Never rejects for one blob's sake.
 */
export async function copyBlobs(
  source: BlobStore,
  target: BlobStore,
  blobs: ReadonlyMap<string, number | undefined>,
  options: { parallel: number; onBlob?: (event: BlobOutcome) => void },
): Promise<BlobCopy> {
  const result: BlobCopy = { total: blobs.size, copied: 0, skipped: 0, bytes: 0, failures: [] };
  const entries = [...blobs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const [digest, recorded] = entries[next++]!;
      const event = await copyOne(source, target, digest, recorded);
      if (event.outcome === 'copied') {
        result.copied++;
        result.bytes += event.bytes;
      } else if (event.outcome === 'skipped') result.skipped++;
      else result.failures.push({ digest, reason: event.reason });
      options.onBlob?.(event);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, entries.length)) }, worker));
  result.failures.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  return result;
}

async function copyOne(source: BlobStore, target: BlobStore, digest: string, recorded: number | undefined): Promise<BlobOutcome> {
  const failed = (reason: string): BlobOutcome => ({ digest, outcome: 'failed', reason });
  if (!isDigest(digest)) return failed('not a digest Berth can verify');
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const size = await source.stat(digest);
      if (size === undefined) return failed('missing from the source storage');
      if (recorded !== undefined && recorded !== size) return failed(`the source storage holds ${size} bytes, the metadata records ${recorded}`);
      const present = await target.stat(digest);
      if (present === size) return { digest, outcome: 'skipped', bytes: size };
      if (present !== undefined) return failed(`the target already holds it with ${present} bytes instead of ${size}; left as it is`);
      const mismatch = size <= SMALL_BLOB_BYTES ? await copySmall(source, target, digest, size) : await copyStreamed(source, target, digest, size);
      return mismatch ? failed(mismatch) : { digest, outcome: 'copied', bytes: size };
    } catch (err) {
      lastError = err;
      if (attempt < ATTEMPTS) await sleep(200 * attempt);
    }
  }
  return failed(`copy failed after ${ATTEMPTS} attempts: ${(lastError as Error).message ?? String(lastError)}`);
}

function algorithmOf(digest: string): Algorithm {
  return digest.slice(0, digest.indexOf(':')) as Algorithm;
}

/** Why `actual` bytes hashing to `computed` are not the blob `digest` of `size` bytes; undefined when they are. */
function verify(digest: string, size: number, computed: string, actual: number): string | undefined {
  if (computed !== digest) return `digest mismatch: the source's bytes hash to ${computed} (corrupt source blob); not copied`;
  if (actual !== size) return `size mismatch: read ${actual} bytes of ${size}; not copied`;
  return undefined;
}

async function copySmall(source: BlobStore, target: BlobStore, digest: string, size: number): Promise<string | undefined> {
  const data = await source.readAll(digest);
  const computed = `${algorithmOf(digest)}:${newHash(algorithmOf(digest)).update(data).digest('hex')}`;
  const mismatch = verify(digest, size, computed, data.length);
  if (!mismatch) await target.putSmall(digest, data);
  return mismatch;
}

/**
 * Streams a large blob through an upload session of the target, hashing on the way; commits it
 * only when the hash matches. The upload id is derived from the digest, so a run killed mid-copy
 * leaves at most one upload per blob behind, which the next run removes before starting over.
 */
async function copyStreamed(source: BlobStore, target: BlobStore, digest: string, size: number): Promise<string | undefined> {
  const id = `migrate-${digest.replace(':', '-').slice(0, 100)}`;
  await target.deleteUpload(id);
  await target.createUpload(id);
  try {
    const hash = newHash(algorithmOf(digest));
    const written = await target.appendUpload(id, 0, await source.read(digest), { onChunk: (chunk) => hash.update(chunk) });
    const mismatch = verify(digest, size, `${algorithmOf(digest)}:${hash.digest('hex')}`, written);
    if (mismatch) return mismatch;
    await target.commitUpload(id, digest);
    return undefined;
  } finally {
    // Gone after a commit; after a mismatch or an error, nothing of it may stay.
    await target.deleteUpload(id).catch(() => undefined);
  }
}
