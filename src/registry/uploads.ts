import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { RegistryError } from '../domain/errors.ts';
import { newHash, parseDigest, type Digest } from '../domain/digest.ts';
import { StorageError, type BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import type { UploadIds } from './upload-ids.ts';
import type { QuotaService } from './quota.ts';

/** The running SHA-256 of an upload's first `offset` bytes, kept between requests. */
interface HashState {
  hash: Hash;
  offset: number;
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
 * Bytes stream from the request through a hash into the blob store, never buffered whole. The hash
 * state is kept in memory between chunks; after a restart (or on another replica) it is rebuilt from
 * the stored bytes, so a session survives anything but the loss of its bytes.
 */
export class UploadService {
  private readonly hashes = new Map<string, HashState>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: BlobStore,
    private readonly meta: Metadata,
    private readonly ids: UploadIds,
    private readonly quota: QuotaService,
  ) {}

  /** Opens a session for `repository`; `createdBy` is the identity that opened it, `origin` how it arrived. */
  async start(repository: string, createdBy: string | undefined, origin?: SessionOrigin): Promise<UploadStatus> {
    const id = this.ids.issue();
    await this.store.createUpload(id);
    await this.meta.uploads.create(id, repository, createdBy ?? null, origin ? JSON.stringify(origin) : null);
    this.hashes.set(id, { hash: newHash('sha256'), offset: 0 });
    return { id, repository, size: 0 };
  }

  /** The session `id` of `repository` and its size; `BLOB_UPLOAD_UNKNOWN` if there is none. */
  async status(repository: string, id: string): Promise<UploadStatus> {
    const session = await this.meta.uploads.find(id);
    if (!session || session.repository !== repository) throw this.unknown(id);
    const size = await this.store.uploadSize(id);
    if (size === undefined) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'upload session lost: it is recorded but its bytes are gone from storage (a replica with storage of its own, or storage wiped)', {
        diagnosis: 'upload-bytes-lost',
        uploadId: id,
      });
    }
    return { id, repository, size };
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
    return this.locked(id, async () => {
      const current = await this.status(repository, id);
      const range = parseContentRange(headers.contentRange, current.size);
      // Only parsed numbers are shown back, never the header text.
      if (range && headers.contentLength !== undefined && headers.contentLength !== range.end - range.start + 1) {
        throw rangeError(`Content-Length ${headers.contentLength} does not match Content-Range ${range.start}-${range.end} (${range.end - range.start + 1} bytes)`, current.size);
      }
      const size = await this.write(id, current.size, body);
      if (range && size - current.size !== range.end - range.start + 1) {
        throw new RegistryError('SIZE_INVALID', 'chunk shorter or longer than its Content-Range', { field: 'Content-Range', received: size - current.size, declared: range.end - range.start + 1 });
      }
      if (headers.contentLength !== undefined && size - current.size !== headers.contentLength) {
        throw new RegistryError('SIZE_INVALID', 'chunk length does not match Content-Length', { field: 'Content-Length', received: size - current.size, declared: headers.contentLength });
      }
      await this.meta.uploads.touch(id);
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
    return this.locked(id, async () => {
      let { size } = await this.status(repository, id);
      if (body) {
        const range = parseContentRange(headers.contentRange, size);
        size = await this.write(id, size, body);
        if (range && size !== range.end + 1) throw new RegistryError('SIZE_INVALID', 'final chunk does not match its Content-Range', { field: 'Content-Range', declaredEnd: range.end, size });
      }
      const actual = await this.digestOf(id, size, digest);
      if (actual !== digest.value) {
        await this.discard(id);
        throw new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: digest.value, actual, size });
      }
      try {
        await this.quota.check(repository, digest.value, size);
      } catch (err) {
        await this.discard(id);
        throw err;
      }
      await this.store.commitUpload(id, digest.value);
      const repositoryId = await this.meta.repositories.ensure(repository);
      const projectId = await this.quota.projectOf(repository);
      // Charge, link and end of session in one durable commit: on disk when this resolves, so the
      // caller's 201 follows it (and concurrent uploads share the flush).
      await this.meta.uploads.complete(id, { repositoryId, projectId, digest: digest.value, size });
      this.hashes.delete(id);
      return { digest: digest.value, size };
    });
  }

  /**
   * A whole blob in one request (POST with `?digest=`): written to a private session that is
   * completed at once, so a failure leaves nothing visible.
   */
  async monolithic(repository: string, digestParam: string, body: Readable, createdBy: string | undefined, contentLength?: number): Promise<CompletedBlob> {
    parseDigest(digestParam, 'digest query parameter');
    const session = await this.start(repository, createdBy);
    try {
      return await this.complete(repository, session.id, digestParam, body, contentLength === undefined ? {} : { contentLength });
    } catch (err) {
      await this.discard(session.id);
      throw err;
    }
  }

  /** Cancels a session (DELETE); `BLOB_UPLOAD_UNKNOWN` if there is none. */
  async cancel(repository: string, id: string): Promise<void> {
    await this.locked(id, async () => {
      const session = await this.meta.uploads.find(id);
      if (!session || session.repository !== repository) throw this.unknown(id);
      await this.discard(id);
    });
  }

  /** Removes sessions idle for longer than `ttlSeconds` and their bytes. Returns how many. */
  async expire(ttlSeconds: number): Promise<number> {
    const ids = await this.meta.uploads.idleSince(Date.now() - ttlSeconds * 1000);
    for (const id of ids) await this.locked(id, () => this.discard(id));
    return ids.length;
  }

  private async discard(id: string): Promise<void> {
    this.hashes.delete(id);
    await this.store.deleteUpload(id);
    await this.meta.uploads.delete(id);
  }

  /**
   * Streams `body` into the upload at `offset`, hashing each chunk as it arrives (one pass, never
   * re-read); the store writes in batches with backpressure. Returns the new size.
   */
  private async write(id: string, offset: number, body: Readable): Promise<number> {
    const state = await this.hashAt(id, offset);
    let seen = 0;
    const onChunk = (chunk: Buffer) => {
      state.hash.update(chunk);
      seen += chunk.length;
    };
    try {
      const size = await this.store.appendUpload(id, offset, body, { onChunk });
      state.offset = size;
      return size;
    } catch (err) {
      if (err instanceof StorageError && err.kind === 'offset_mismatch') {
        this.hashes.delete(id);
        throw rangeError(err.message, offset);
      }
      // A client gone mid-chunk: the store still wrote every byte the hash saw, so the hash matches
      // the upload and the session continues without re-reading it. Otherwise rebuild it next time.
      const kept = await this.store.uploadSize(id).catch(() => undefined);
      if (kept === offset + seen) state.offset = kept;
      else this.hashes.delete(id);
      throw err;
    }
  }

  /** The SHA-256 state after the first `offset` bytes, rebuilt from storage when not in memory. */
  private async hashAt(id: string, offset: number): Promise<HashState> {
    const known = this.hashes.get(id);
    if (known && known.offset === offset) return known;
    const state = { hash: newHash('sha256'), offset: 0 };
    if (offset > 0) {
      const stream = await this.store.readUpload(id);
      for await (const chunk of stream) {
        state.hash.update(chunk as Buffer);
        state.offset += (chunk as Buffer).length;
      }
    }
    this.hashes.set(id, state);
    return state;
  }

  private async digestOf(id: string, size: number, wanted: Digest): Promise<string> {
    if (wanted.algorithm === 'sha256') {
      const state = await this.hashAt(id, size);
      return `sha256:${state.hash.copy().digest('hex')}`;
    }
    const hash = newHash(wanted.algorithm);
    for await (const chunk of await this.store.readUpload(id)) hash.update(chunk as Buffer);
    return `${wanted.algorithm}:${hash.digest('hex')}`;
  }

  /** Runs `task` with no other task of the same session in flight (chunks must not interleave). */
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
