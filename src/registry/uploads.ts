import type { Readable } from 'node:stream';
import { RegistryError } from '../domain/errors.ts';
import { newHash, parseDigest, type Digest } from '../domain/digest.ts';
import { StorageError, type BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import type { UploadIds } from './upload-ids.ts';
import type { QuotaService } from './quota.ts';
import { InMemoryHashing, ResumableHashing, type RunningHash, type UploadHashing } from './upload-hash.ts';
import { DEFAULT_LEASE, SessionHold, type LeaseOptions } from './upload-lease.ts';
import { DEFAULT_SMALL_BLOBS, readWhole, SmallBlobBudget, type SmallBlobLimits } from './whole-blobs.ts';

/** How an UploadService keeps sessions between requests. */
export interface UploadServiceOptions {
  /**
   * Save the running SHA-256 of chunked uploads with the session after each request, so any
   * replica continues it without reading the bytes back (for replicas sharing one database).
   * Otherwise it stays in this process's memory: OpenSSL's hash, the fastest, for one process.
   */
  resumableHash?: boolean;
  /** How requests hold a session against requests on other replicas (defaults: DEFAULT_LEASE). */
  lease?: Partial<LeaseOptions>;
  /** Whole blobs read into memory instead of streamed (see `UploadService`; defaults: DEFAULT_SMALL_BLOBS). */
  smallBlobs?: Partial<SmallBlobLimits>;
}

/** What a client declared about a chunk (`Content-Range`, `Content-Length`). */
export interface ChunkHeaders {
  contentRange?: string;
  contentLength?: number;
}

export interface UploadStatus {
  id: string;
  repository: string;
  /** Bytes received so far. */
  size: number;
}

/** How the request that opened a session arrived; kept to explain later requests of it that fail. */
export interface SessionOrigin {
  /** The Host header as it reached Berth. */
  host?: string;
  /** The scheme of the connection to Berth. */
  scheme: string;
  /** The external URL the request matched (or was derived from), e.g. `https://hub.example.com`. */
  via: string;
  /** Forwarding headers present (`x-forwarded-proto`, `forwarded`, …). */
  forwarded?: Record<string, string>;
  client: string;
  userAgent?: string;
}

/** A session as recorded when it was opened. */
export interface SessionRecord {
  id: string;
  repository: string;
  openedBy: string | null;
  openedAt: number;
  origin?: SessionOrigin;
}

export interface CompletedBlob {
  digest: string;
  size: number;
}

/**
 * Upload sessions of the OCI push protocol: start, append chunks, complete with a digest, cancel.
 * Bytes stream from the request through a hash into the blob store, never buffered whole. Where the
 * hash lives between chunks is the `resumableHash` option's choice (src/registry/upload-hash.ts);
 * either way a session survives anything but the loss of its bytes, and continues on any replica.
 * A request that writes to a session holds it (src/registry/upload-lease.ts): chunks never
 * interleave, in this process or across replicas.
 *
 * Except a small whole blob in one request (POST `?digest=`, or, where the store's writes are
 * requests, a PUT with a body on a session that holds nothing), with a Content-Length within
 * `smallBlobs`: read into memory, verified, and stored with one `putSmall`, without the store's
 * upload machinery — one request on S3 instead of about ten (an upload's state and segments
 * written, read back and removed); on the filesystem a file that is never an upload.
 */
export class UploadService {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly hashing: UploadHashing;
  private readonly lease: LeaseOptions;
  private readonly small: SmallBlobBudget;

  constructor(
    private readonly store: BlobStore,
    private readonly meta: Metadata,
    private readonly ids: UploadIds,
    private readonly quota: QuotaService,
    options: UploadServiceOptions = {},
  ) {
    this.hashing = options.resumableHash ? new ResumableHashing(store) : new InMemoryHashing(store);
    this.lease = { ...DEFAULT_LEASE, ...options.lease };
    this.small = new SmallBlobBudget({ ...DEFAULT_SMALL_BLOBS, ...options.smallBlobs });
  }

  /** Opens a session for `repository`; `createdBy` is the identity that opened it, `origin` how it arrived. */
  async start(repository: string, createdBy: string | undefined, origin?: SessionOrigin): Promise<UploadStatus> {
    const id = this.ids.issue();
    await this.store.createUpload(id);
    await this.meta.uploads.create(id, repository, createdBy ?? null, origin ? JSON.stringify(origin) : null);
    return { id, repository, size: 0 };
  }

  /** The session `id` of `repository` and its size; `BLOB_UPLOAD_UNKNOWN` if there is none. */
  async status(repository: string, id: string): Promise<UploadStatus> {
    const session = await this.meta.uploads.find(id);
    if (!session || session.repository !== repository) throw this.unknown(id);
    return { id, repository, size: await this.storedSize(id) };
  }

  /** The session as recorded when opened, if it exists in `repository`. */
  async record(repository: string, id: string): Promise<SessionRecord | undefined> {
    const row = await this.meta.uploads.find(id);
    if (!row || row.repository !== repository) return undefined;
    let origin: SessionOrigin | undefined;
    try {
      origin = row.origin ? (JSON.parse(row.origin) as SessionOrigin) : undefined;
    } catch {
      origin = undefined;
    }
    return { id, repository, openedBy: row.created_by, openedAt: Number(row.created_at), origin };
  }

  /** Appends a chunk (PATCH). Enforces in-order chunks via `Content-Range` when given. */
  async append(repository: string, id: string, body: Readable, headers: ChunkHeaders): Promise<UploadStatus> {
    return this.held(repository, id, async (hold) => {
      const offset = await this.storedSize(id);
      const range = parseContentRange(headers.contentRange, offset);
      // Only parsed numbers are shown back, never the header text.
      if (range && headers.contentLength !== undefined && headers.contentLength !== range.end - range.start + 1) {
        throw rangeError(`Content-Length ${headers.contentLength} does not match Content-Range ${range.start}-${range.end} (${range.end - range.start + 1} bytes)`, offset);
      }
      const size = await this.write(hold, offset, body, await this.hashing.resume(id, offset, hold.saved));
      if (range && size - offset !== range.end - range.start + 1) {
        throw new RegistryError('SIZE_INVALID', 'chunk shorter or longer than its Content-Range', { field: 'Content-Range', received: size - offset, declared: range.end - range.start + 1 });
      }
      if (headers.contentLength !== undefined && size - offset !== headers.contentLength) {
        throw new RegistryError('SIZE_INVALID', 'chunk length does not match Content-Length', { field: 'Content-Length', received: size - offset, declared: headers.contentLength });
      }
      return { id, repository, size };
    });
  }

  /**
   * Completes a session (PUT): appends the optional final chunk, verifies the whole upload against
   * `digest`, and commits it durably. A digest mismatch cancels the session (`DIGEST_INVALID`).
   */
  async complete(repository: string, id: string, digestParam: string | undefined, body: Readable | undefined, headers: ChunkHeaders): Promise<CompletedBlob> {
    if (!digestParam) throw new RegistryError('DIGEST_INVALID', 'digest query parameter is required to complete an upload');
    const digest = parseDigest(digestParam, 'digest query parameter');
    return this.held(repository, id, async (hold) => {
      const size = await this.storedSize(id);
      const length = body && size === 0 && this.store.writesAreRequests ? this.small.reserve(headers.contentLength) : undefined;
      if (length === undefined) return this.finish(repository, hold, digest, body, headers, size);
      try {
        const range = parseContentRange(headers.contentRange, 0);
        const data = await readWhole(body!, length);
        if (range && range.end + 1 !== data.length) throw new RegistryError('SIZE_INVALID', 'final chunk does not match its Content-Range', { field: 'Content-Range', declaredEnd: range.end, size: data.length });
        return await this.storeWhole(repository, digest, data, hold);
      } finally {
        this.small.release(length);
      }
    });
  }

  /**
   * A whole blob in one request (POST with `?digest=`): read whole if small (see the class
   * comment), else written to a private session that is completed at once; either way a failure
   * leaves nothing visible.
   */
  async monolithic(repository: string, digestParam: string, body: Readable, createdBy: string | undefined, contentLength?: number): Promise<CompletedBlob> {
    const digest = parseDigest(digestParam, 'digest query parameter');
    const length = this.small.reserve(contentLength);
    if (length !== undefined) {
      try {
        return await this.storeWhole(repository, digest, await readWhole(body, length));
      } finally {
        this.small.release(length);
      }
    }
    const id = this.ids.issue();
    await this.store.createUpload(id);
    let hold: SessionHold | undefined;
    try {
      // Opened already held: nobody else knows the id, and no other statement is needed to take it.
      hold = await SessionHold.open(this.meta.uploads, id, repository, createdBy ?? null, null, this.lease, this.meta.changes.shared);
      return await this.finish(repository, hold, digest, body, contentLength === undefined ? {} : { contentLength });
    } catch (err) {
      hold?.drop();
      await this.discard(id);
      throw err;
    }
  }

  /** Cancels a session (DELETE); `BLOB_UPLOAD_UNKNOWN` if there is none. */
  async cancel(repository: string, id: string): Promise<void> {
    await this.held(repository, id, async (hold) => {
      hold.drop();
      await this.discard(id);
    });
  }

  /** Removes sessions idle for longer than `ttlSeconds` and their bytes, except those a request holds. Returns how many. */
  async expire(ttlSeconds: number): Promise<number> {
    let removed = 0;
    for (const id of await this.meta.uploads.idleSince(Date.now() - ttlSeconds * 1000)) {
      await this.locked(id, async () => {
        const row = await this.meta.uploads.find(id);
        const hold = row && (await SessionHold.take(this.meta.uploads, id, row.repository, this.lease, { wait: false, shared: this.meta.changes.shared }).catch(() => undefined));
        if (!hold) return;
        hold.drop();
        await this.discard(id);
        removed++;
      });
    }
    return removed;
  }

  /**
   * Verifies and commits a held session (the end of `complete` and `monolithic`): appends `body`
   * when given, compares the upload's digest with `digest`, charges the project, commits the blob
   * and ends the session in one durable commit.
   */
  private async finish(repository: string, hold: SessionHold, digest: Digest, body: Readable | undefined, headers: ChunkHeaders, stored?: number): Promise<CompletedBlob> {
    const id = hold.id;
    let size = stored ?? (await this.storedSize(id));
    let hash: RunningHash | undefined;
    if (body) {
      const range = parseContentRange(headers.contentRange, size);
      // A body that is the whole blob needs no hash that outlives the request: the fastest one.
      if (digest.algorithm === 'sha256') hash = size === 0 ? this.hashing.whole() : await this.hashing.resume(id, size, hold.saved);
      size = await this.write(hold, size, body, hash);
      if (range && size !== range.end + 1) throw new RegistryError('SIZE_INVALID', 'final chunk does not match its Content-Range', { field: 'Content-Range', declaredEnd: range.end, size });
    }
    const actual = digest.algorithm === 'sha256' ? (hash ?? (await this.hashing.resume(id, size, hold.saved))).digest() : await this.readDigest(id, digest);
    return this.conclude(repository, digest, actual, size, hold, async () => {
      try {
        await this.store.commitUpload(id, digest.value, size);
      } catch (err) {
        // Only a request elsewhere that took the session over (this one stalled past its hold)
        // changes the upload between the hash and the commit: the store commits nothing then.
        if (!(err instanceof StorageError && err.kind === 'offset_mismatch')) throw err;
        throw new RegistryError('BLOB_UPLOAD_INVALID', 'the upload changed while it was being completed: check its status and complete it again', { diagnosis: 'upload-session-busy', uploadId: id });
      }
    });
  }

  /**
   * Verifies and stores a whole blob held in memory (see the class comment), ending `hold`'s
   * session, which holds no bytes, if there is one.
   */
  private storeWhole(repository: string, digest: Digest, data: Buffer, hold?: SessionHold): Promise<CompletedBlob> {
    const actual = `${digest.algorithm}:${newHash(digest.algorithm).update(data).digest('hex')}`;
    return this.conclude(repository, digest, actual, data.length, hold, async () => {
      await this.store.putSmall(digest.value, data);
      // A session taken over by another request meanwhile is that request's now: leave it alone.
      if (hold?.signal?.aborted) throw hold.signal.reason;
      // Only the session's empty upload is left to remove; sweeping for what a crashed append may
      // have left would cost every such push two listings on S3 (see DeleteUploadOptions).
      if (hold) await this.store.deleteUpload(hold.id, { sweep: false });
    });
  }

  /**
   * The end of every push: refuses a digest that is not `actual` or a blob the quota does not
   * allow (cancelling `hold`'s session), runs `write` to store the blob and drop the upload's
   * storage, then charges the project, links the blob and ends the session in one durable commit.
   */
  private async conclude(repository: string, digest: Digest, actual: string, size: number, hold: SessionHold | undefined, write: () => Promise<void>): Promise<CompletedBlob> {
    try {
      if (actual !== digest.value) throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: digest.value, actual, size });
      await this.quota.check(repository, digest.value, size);
    } catch (err) {
      hold?.drop();
      if (hold) await this.discard(hold.id);
      throw err;
    }
    // Recorded before the bytes are written, so garbage collection never deletes them under this push (BlobRecords).
    await this.meta.blobs.claim(digest.value, size);
    await write();
    const repositoryId = await this.meta.repositories.ensure(repository);
    const projectId = await this.quota.projectOf(repository);
    // On disk when this resolves, so the caller's 201 follows it (concurrent uploads share the
    // flush). A blob pushed without a session (POST ?digest= read whole) has no session to end:
    // nothing needed recording before its bytes were verified and stored.
    await this.meta.uploads.complete(hold?.id, { repositoryId, projectId, digest: digest.value, size });
    hold?.drop();
    if (hold) this.hashing.forget(hold.id);
    return { digest: digest.value, size };
  }

  private async discard(id: string): Promise<void> {
    this.hashing.forget(id);
    await this.store.deleteUpload(id);
    await this.meta.uploads.delete(id);
  }

  /**
   * Runs `task` holding session `id` of `repository`: after any other request on it in this
   * process (queued), and while no request on another replica writes to it (waited for briefly,
   * then BLOB_UPLOAD_INVALID; replicas exist when the database is shared, see ChangeFeed.shared). `BLOB_UPLOAD_UNKNOWN` when there is no such session. The hold ends
   * with the task, saving the hash it leaves.
   */
  private held<T>(repository: string, id: string, task: (hold: SessionHold) => Promise<T>): Promise<T> {
    return this.locked(id, async () => {
      const hold = await SessionHold.take(this.meta.uploads, id, repository, this.lease, { readRow: this.hashing.resumable, shared: this.meta.changes.shared });
      if (!hold) throw this.unknown(id);
      let result: T;
      try {
        result = await task(hold);
      } catch (err) {
        // The task's error is what the client needs; a failed release only lets the hold lapse.
        await hold.release().catch(() => undefined);
        throw err;
      }
      await hold.release();
      return result;
    });
  }

  /** The upload's stored size; `BLOB_UPLOAD_UNKNOWN` when its bytes are gone. */
  private async storedSize(id: string): Promise<number> {
    const size = await this.store.uploadSize(id);
    if (size === undefined) throw lostBytes(id);
    return size;
  }

  /**
   * Streams `body` into the upload at `offset`, feeding each chunk to `hash` (which covers the
   * first `offset` bytes) as it arrives: one pass, never re-read; the store writes in batches with
   * backpressure. Returns the new size. The hold keeps `hash` for the next request when it matches
   * the stored bytes afterwards, even when the append failed.
   */
  private async write(hold: SessionHold, offset: number, body: Readable, hash: RunningHash | undefined): Promise<number> {
    const id = hold.id;
    const onChunk = hash ? (chunk: Buffer) => hash.update(chunk) : undefined;
    try {
      const signal = hold.signal;
      const size = await this.store.appendUpload(id, offset, body, signal ? { onChunk, signal } : { onChunk });
      this.keep(hold, hash, size);
      return size;
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'offset_mismatch') {
        this.hashing.forget(id);
        throw rangeError(err.message, offset);
      }
      // A client gone mid-chunk: the store still wrote every byte the hash saw, so the hash matches
      // the upload and the session continues without re-reading it. Otherwise rebuild it next time.
      this.keep(hold, hash, await this.store.uploadSize(id).catch(() => undefined));
      throw err;
    }
  }

  /** Keeps `hash` for the session's next request if it covers exactly the `size` bytes stored. */
  private keep(hold: SessionHold, hash: RunningHash | undefined, size: number | undefined): void {
    if (hash && hash.offset === size) hold.checkpoint = this.hashing.keep(hold.id, hash);
    else this.hashing.forget(hold.id);
  }

  /** The digest of an upload's stored bytes with an algorithm other than SHA-256 (read back whole). */
  private async readDigest(id: string, wanted: Digest): Promise<string> {
    const hash = newHash(wanted.algorithm);
    for await (const chunk of await this.store.readUpload(id)) hash.update(chunk as Buffer);
    return `${wanted.algorithm}:${hash.digest('hex')}`;
  }

  /** Runs `task` with no other task of the same session in flight in this process (queued, in order). */
  private async locked<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(task);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  /** `BLOB_UPLOAD_UNKNOWN`, saying whether this registry ever issued the id (M10). */
  private unknown(id: string): RegistryError {
    const issuedAt = this.ids.issuedAt(id);
    if (issuedAt === undefined) {
      return new RegistryError(
        'BLOB_UPLOAD_UNKNOWN',
        'upload session unknown: this registry never issued this id. Another registry may answer under the same name, or replicas do not share their metadata and storage',
        // The id is not shown back: this registry did not issue it, so it is only what the client sent.
        { diagnosis: 'upload-session-never-issued' },
      );
    }
    return new RegistryError(
      'BLOB_UPLOAD_UNKNOWN',
      `upload session unknown: it was issued here at ${new Date(issuedAt).toISOString()} and has ended (completed, cancelled, or expired after being idle) or its record was lost`,
      { diagnosis: 'upload-session-ended', uploadId: id, issuedAt: new Date(issuedAt).toISOString() },
    );
  }
}

function lostBytes(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'upload session lost: it is recorded but its bytes are gone from storage (a replica with storage of its own, or storage wiped)', {
    diagnosis: 'upload-bytes-lost',
    uploadId: id,
  });
}

function rangeError(reason: string, size: number): RegistryError {
  return new RegistryError('RANGE_INVALID', 'chunk out of order or overlapping', { field: 'Content-Range', reason, expected: `${size}-<end>: the chunk must start where the upload ends`, size }, {
    headers: { Range: `0-${Math.max(size - 1, 0)}` },
  });
}

/** Parses a chunk's `Content-Range: <start>-<end>`; it must continue exactly where the upload ends. */
function parseContentRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw rangeError('malformed Content-Range: expected <start>-<end>, optionally with a bytes unit and /<length>', size);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) throw rangeError('Content-Range offsets too large', size);
  if (end < start) throw rangeError(`Content-Range end ${end} before start ${start}`, size);
  if (start !== size) throw rangeError(`chunk starts at ${start} but the upload holds ${size} bytes`, size);
  return { start, end };
}
