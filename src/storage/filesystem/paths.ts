import { join } from 'node:path';
import { StorageError } from '../blob-store.ts';

/*
 * On-disk layout of the filesystem driver, below the data directory:
 *
 *   <root>/
 *   ├── blobs/
 *   │   └── sha256/
 *   │       └── ab/
 *   │           └── abcdef…(full hex)        committed, immutable, content-addressed
 *   └── uploads/
 *       └── <upload id>                      bytes of an upload session in progress
 *
 * Committing renames uploads/<id> to blobs/<alg>/<xx>/<hex> (same filesystem, so atomic) after an
 * fsync of the file, then fsyncs the directory, so a blob is either absent or complete after a crash.
 * Small content (manifests) is written to a temporary file under uploads/ (put-<random>, named like
 * an upload id, so one a crash left is listed and removed as an abandoned upload) and renamed the
 * same way. Fan-out directories are created on first use and never removed while Berth runs.
 * Everything is private to Berth's user: directories are created 0700, files 0600.
 */

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,128}$/;
/** The algorithm directories under `blobs/`, in digest order. */
export const ALGORITHMS = ['sha256', 'sha512'] as const;
/** A fan-out directory's name: the first two hex digits of the digests it holds. */
export const SHARD = /^[a-f0-9]{2}$/;

/** Path of a committed blob; rejects anything that is not a well-formed digest (no traversal). */
export function blobPath(root: string, digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new StorageError('invalid', `invalid digest for storage: ${digest.slice(0, 80)}`);
  return join(root, 'blobs', m[1]!, m[2]!.slice(0, 2), m[2]!);
}

/** Path of an upload's bytes; rejects ids that are not plain URL-safe tokens. */
export function uploadPath(root: string, id: string): string {
  if (!UPLOAD_ID.test(id)) throw new StorageError('invalid', 'invalid upload id');
  return join(root, 'uploads', id);
}

/**
 * The digest of the file `name` in `blobs/<algorithm>/<shard>/`, or `undefined` when it is not a
 * well-formed blob there (a stray or temporary file): exactly the names `blobPath` makes.
 */
export function digestAt(algorithm: string, shard: string, name: string): string | undefined {
  const digest = `${algorithm}:${name}`;
  return name.startsWith(shard) && DIGEST.test(digest) ? digest : undefined;
}

/** Whether `name` in `uploads/` is one `uploadPath` makes (so `deleteUpload` can remove it). */
export function isUploadId(name: string): boolean {
  return UPLOAD_ID.test(name);
}

export function blobsDir(root: string): string {
  return join(root, 'blobs');
}

export function uploadsDir(root: string): string {
  return join(root, 'uploads');
}
