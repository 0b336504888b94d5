import { randomBytes } from 'node:crypto';
import { StorageError } from '../blob-store.ts';

/*
 * Key layout of the S3 driver, below `storage.s3.prefix` in the bucket:
 *
 *   <prefix>
 *   ├── blobs/
 *   │   └── sha256/
 *   │       └── ab/
 *   │           └── abcdef…(full hex)       committed, immutable, content-addressed
 *   └── uploads/
 *       └── <upload id>/
 *           ├── state                       JSON: size, part size, multipart upload id, part ETags,
 *           │                               tail segments — the commit point of every append
 *           ├── data                        the multipart upload's key: holds full parts while the
 *           │                               upload runs; an object only once it was completed
 *           └── tail/<offset>-<random>      bytes after the last full part (less than one part in all)
 *
 * An upload's bytes are: parts 1…n of the multipart upload on `data` (each exactly the state's part
 * size), then the tail segments in order. S3 wants every part but the last to be at least 5 MiB, so
 * bytes that do not fill a part wait in tail segments until a later append fills one (the segments
 * are read back and sent as that part's start) or the commit sends them as the last part.
 *
 * Committing completes the multipart upload on `data`, then copies it to `blobs/…` server-side (one
 * CopyObject, or UploadPartCopy ranges in parallel beyond CopyObject's 5 GiB), then deletes the
 * objects of `uploads/<id>/` that the state names (one DeleteObjects; the prefix is listed only
 * when the state cannot vouch for the list, see state.ts). A blob key is only ever written by an
 * atomic PutObject, CopyObject or CompleteMultipartUpload of verified bytes: it is absent or
 * complete, never partial. An upload smaller than one part is copied (one segment) or put
 * (several) straight to its blob key.
 */

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;
const UPLOAD_ID = /^[A-Za-z0-9_-]{16,128}$/;

/** Keys of one store (one bucket prefix). */
export class Layout {
  /** `prefix` is empty or path segments each ending in `/` (the configuration validates it). */
  constructor(readonly prefix: string) {}

  /** Key of a committed blob; rejects anything that is not a well-formed digest (no traversal). */
  blob(digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw new StorageError('invalid', `invalid digest for storage: ${digest.slice(0, 80)}`);
    return `${this.prefix}blobs/${m[1]!}/${m[2]!.slice(0, 2)}/${m[2]!}`;
  }

  /** The folder of an upload's objects (ends in `/`); rejects ids that are not plain URL-safe tokens. */
  upload(id: string): string {
    if (!UPLOAD_ID.test(id)) throw new StorageError('invalid', 'invalid upload id');
    return `${this.prefix}uploads/${id}/`;
  }

  /** The upload's state object (its commit point). */
  state(id: string): string {
    return `${this.upload(id)}state`;
  }

  /** The key the upload's multipart upload completes into. */
  data(id: string): string {
    return `${this.upload(id)}data`;
  }

  /**
   * A fresh key for a tail segment starting at byte `offset`. Never reused: an append that failed
   * before its state was written leaves an unreferenced segment (removed with the upload), never
   * one that a recorded state points at with other bytes.
   */
  newSegment(id: string, offset: number): string {
    return `${this.upload(id)}tail/${offset}-${randomBytes(6).toString('hex')}`;
  }

  /** Whether `key` is a tail segment of upload `id` (a state read from the bucket names only its own). */
  isSegmentOf(id: string, key: string): boolean {
    return key.startsWith(`${this.upload(id)}tail/`) && !key.includes('..');
  }
}
