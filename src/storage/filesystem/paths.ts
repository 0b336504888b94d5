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
 * Small content (manifests) is written to a temporary file under uploads/ and renamed the same way.
 * Everything is private to Berth's user: directories are created 0700, files 0600.
 */

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,128}$/;

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

export function uploadsDir(root: string): string {
  return join(root, 'uploads');
}
