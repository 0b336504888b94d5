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

  /** Where committed blobs are (ends in `/`). */
  get blobs(): string {
    return `${this.prefix}blobs/`;
  }

  /** Where uploads are (ends in `/`). */
  get uploads(): string {
    return `${this.prefix}uploads/`;
  }

  /**
   * The digest whose blob `key` is, or `undefined` when `key` is not exactly a key `blob()` makes
   * (a stray object of another tool, a folder marker): listings skip those.
   */
  digestOf(key: string): string | undefined {
    if (!key.startsWith(this.blobs)) return undefined;
    const [algorithm, shard, hex, ...more] = key.slice(this.blobs.length).split('/');
    if (more.length > 0 || !algorithm || !shard || !hex || !hex.startsWith(shard) || shard.length !== 2) return undefined;
    const digest = `${algorithm}:${hex}`;
    return DIGEST.test(digest) ? digest : undefined;
  }

  /**
   * The key after which a listing of `blobs/` holds exactly the blobs whose digests sort after
   * `after`, or a key before that (the caller filters what lies between); `undefined`: from the
   * start. Digest order is key order: the shard repeats the hex's first two digits, and ':' and '/'
   * both sort before every digit and letter.
   */
  blobsAfter(after: string | undefined): string | undefined {
    if (after === undefined) return undefined;
    // At most a digest's length of hex: a shorter prefix is still a bound below, and S3 caps keys.
    const m = /^(sha256|sha512):([a-f0-9]{0,128})/.exec(after);
    if (m) return m[2]!.length < 2 ? `${this.blobs}${m[1]!}/${m[2]!}` : `${this.blobs}${m[1]!}/${m[2]!.slice(0, 2)}/${m[2]!}`;
    // Not a digest's beginning: the nearest bound below it.
    if (after < 'sha256:') return undefined;
    return after < 'sha512:' ? `${this.blobs}sha256/` : `${this.blobs}sha512/`;
  }

  /**
   * The id of the upload whose folder holds `key`, or `undefined` when `key` is in none (an object
   * directly under `uploads/`, or a folder whose name `upload()` would refuse).
   */
  uploadIdOf(key: string): string | undefined {
    if (!key.startsWith(this.uploads)) return undefined;
    const rest = key.slice(this.uploads.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return undefined;
    const id = rest.slice(0, slash);
    return UPLOAD_ID.test(id) ? id : undefined;
  }

  /**
   * The key after which a listing of `uploads/` holds exactly the folders of ids listed after
   * `after` (ids are listed in the order of `id + "/"`, S3's order of their keys; '0' is the
   * character after '/'), or a key before that when `after` is no upload id (the caller filters).
   */
  uploadsAfter(after: string | undefined): string | undefined {
    if (after === undefined) return undefined;
    // Else its longest plain-ASCII beginning (of at most 128 characters): a bound below it.
    return UPLOAD_ID.test(after) ? `${this.uploads}${after}0` : `${this.uploads}${/^[\x20-\x7e]{0,128}/.exec(after)![0]}`;
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
