import type { Readable, Writable } from 'node:stream';

/** A byte range, both ends inclusive, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A committed blob's bytes (see `BlobStore.read`): read it as a stream, or send it — not both. */
export interface BlobStream extends Readable {
  /**
   * Writes the bytes to `sink` without ending it, resolving once `sink` has called back for the
   * last write; rejects if `sink` fails or closes first. Faster than piping: a driver may reuse a
   * buffer once `sink` has called back for it, which a stream's consumer can never tell it.
   */
  sendTo(sink: Writable): Promise<void>;
}

/** A committed blob as a storage listing shows it. */
export interface StoredBlob {
  digest: string;
  size: number;
  /** Last modification, ms since the epoch. */
  modifiedAt: number;
}

/** An upload's storage as a listing shows it. */
export interface StoredUpload {
  id: string;
  /** The last write to it, ms since the epoch. */
  modifiedAt: number;
}

/** How an append runs (see `BlobStore.appendUpload`). */
export interface AppendOptions {
  /** Stops reading the stream; what had arrived is written, then the append rejects with the reason. */
  signal?: AbortSignal;
  /**
   * Sees each chunk of the stream in order, as it arrives and before it is written: to hash an
   * upload in the same pass. When the append rejects, it may have seen bytes that were not written.
   */
  onChunk?: (chunk: Buffer) => void;
}

/** How an upload's storage is removed (see `BlobStore.deleteUpload`). */
export interface DeleteUploadOptions {
  /**
   * Also look for bytes that an append left without recording them because its process died
   * (default true). A driver that records everything an upload holds ignores it (the filesystem:
   * one file). On S3 looking costs two listings, so the end of a push that needs no upload storage
   * any more passes false: what a crashed append left is then removed when an upload abandoned
   * with it expires, or by the bucket's lifecycle rules.
   */
  sweep?: boolean;
}

/**
 * Where blob and manifest bytes live: content-addressed committed blobs, plus upload sessions that
 * are appended to and then committed under their digest. Drivers know nothing about HTTP, users or
 * repositories; every method may reject with a `StorageError` or a driver I/O error.
 *
 * Implementations: `filesystem/` (one machine), `s3/` (S3-compatible object storage, any number of
 * replicas). Every driver passes `contract.ts`.
 */
export interface BlobStore {
  /**
   * Set by drivers whose every write is a request to a storage service (S3). There a small whole
   * blob costs one request with `putSmall`, but several through an upload (its state and segments
   * written, then read back and removed), so the registry stores a whole blob that arrives on an
   * upload holding nothing with `putSmall` and drops the upload. Unset (the filesystem), the
   * upload's open file is the cheaper place: `putSmall` would open, and the upload's removal
   * unlink, one file more (measured 14 % fewer such pushes per second).
   */
  readonly writesAreRequests?: boolean;

  /** The size of a committed blob, or `undefined` when it does not exist. */
  stat(digest: string): Promise<number | undefined>;

  /**
   * Opens a committed blob for reading, optionally a range of it. Rejects with
   * `StorageError('not_found')` when the blob does not exist.
   */
  read(digest: string, range?: ByteRange): Promise<BlobStream>;

  /** Reads a whole committed blob into memory: for manifests and configs only (small). */
  readAll(digest: string): Promise<Buffer>;

  /**
   * Stores small, complete content under `digest` durably (the caller has verified the digest).
   * Storing a digest that already exists is a no-op.
   */
  putSmall(digest: string, data: Uint8Array): Promise<void>;

  /** Deletes a committed blob; deleting a missing blob is a no-op. Only garbage collection calls it. */
  delete(digest: string): Promise<void>;

  /**
   * Deletes committed blobs in batches — S3: `DeleteObjects`, 1,000 keys a call; the filesystem:
   * parallel unlinks — and resolves once all are gone. Missing blobs are no-ops. Rejects if any
   * deletion failed (the others may have happened: deleting again is safe). Only garbage collection calls it.
   */
  deleteBlobs(digests: readonly string[]): Promise<void>;

  /**
   * Up to `limit` committed blobs whose digest sorts after `after` (from the start when
   * undefined), in ascending digest order, with their size and last modification (ms): for
   * garbage collection to find objects no metadata row knows. Objects that are not well-formed
   * blobs of this store are skipped. A page shorter than `limit` is the last.
   */
  listBlobs(after: string | undefined, limit: number): Promise<StoredBlob[]>;

  /**
   * Up to `limit` uploads' storage listed after upload `after` (from the start when undefined), with
   * the time (ms) it was last written: for garbage collection to find upload storage no session row
   * knows. Ids come in ascending order of `id + "/"` (S3's order of their folders; plain id order
   * unless an id is another's beginning followed by '-'): continue from the last id a page returned,
   * and compare ids no other way. A page shorter than `limit` is the last. Only storage that
   * `deleteUpload(id)` removes is listed: on S3 an upload whose only trace is a multipart upload in
   * progress (its time: when that was initiated) is listed; on the filesystem `putSmall`'s
   * temporary files are too (a crash leaves them like an abandoned upload).
   */
  listUploads(after: string | undefined, limit: number): Promise<StoredUpload[]>;

  /**
   * Creates an empty upload session's storage. `id` is an opaque URL-safe identifier. A driver may
   * keep an upload open between appends (the filesystem driver does, for a few idle seconds);
   * `commitUpload` and `deleteUpload` release it.
   */
  createUpload(id: string): Promise<void>;

  /**
   * Appends a stream to an upload that currently holds exactly `offset` bytes, and resolves to the
   * new size once every byte is written (not yet flushed to disk: `commitUpload` does that). The
   * stream is consumed with backpressure: a driver holds a bounded amount of it in memory (the
   * filesystem a few MiB; S3 a few parts, each `storage.s3.partSize`).
   *
   * Rejects with `StorageError('offset_mismatch')` when the upload's size is not `offset` or another
   * append to it is still running (appends never interleave), `StorageError('not_found')` when the
   * upload does not exist. If the stream fails or `options.signal` aborts mid-way, every byte that
   * had arrived is still written, then it rejects; on a write error the bytes written so far stay.
   * Either way the caller re-reads `uploadSize`.
   */
  appendUpload(id: string, offset: number, data: Readable, options?: AppendOptions): Promise<number>;

  /** The number of bytes an upload holds, or `undefined` when it does not exist. */
  uploadSize(id: string): Promise<number | undefined>;

  /** Reads an upload's bytes from `start` (to rebuild a hash after a restart). */
  readUpload(id: string, start?: number): Promise<Readable>;

  /**
   * Makes an upload's bytes the committed blob `digest`, durably (flushed before it resolves), and
   * removes the upload (without a sweep, see `DeleteUploadOptions`). If the blob already exists it
   * stays one copy of the same bytes (a driver may drop the upload or put it in the blob's place
   * atomically). The caller has verified
   * the digest; the blob becomes visible to `stat`/`read` only once it is complete. `size`, when
   * given, is the number of bytes the caller verified: an upload holding another number is not
   * committed (and a driver may use what it learnt answering `uploadSize` instead of looking again).
   * Rejects with `StorageError('not_found')` when the upload does not exist, `offset_mismatch` while
   * it is appended to or when it does not hold `size` bytes.
   */
  commitUpload(id: string, digest: string, size?: number): Promise<void>;

  /** Removes an upload's storage; a missing upload is a no-op. */
  deleteUpload(id: string, options?: DeleteUploadOptions): Promise<void>;

  /**
   * A URL from which anyone holding it can GET the committed blob `digest` (with a `Range` if they
   * like) directly from the storage service, for `expiresInSeconds`; for redirecting pulls there.
   * Absent on drivers whose storage clients cannot reach (the filesystem). Does not look whether
   * the blob exists. Rejects with `StorageError('invalid')` for a malformed digest or an expiry
   * outside 1 s…7 days.
   */
  signedURL?(digest: string, expiresInSeconds: number): Promise<string>;
}

/**
 * `unavailable`: the storage service could not be reached, or kept failing or throttling, after the
 * driver's retries; nothing is known to have changed, and the same call may succeed later.
 */
export type StorageErrorKind = 'not_found' | 'offset_mismatch' | 'invalid' | 'unavailable';

/** A storage failure the registry layer maps to a registry error. */
export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  constructor(kind: StorageErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.kind = kind;
  }
}
