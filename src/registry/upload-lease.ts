import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../domain/errors.ts';
import type { SavedHash, UploadStore } from '../metadata/uploads.ts';
import type { UploadSessionRow } from '../metadata/schema.ts';

/** How a request holds an upload session against requests on other replicas. */
export interface LeaseOptions {
  /** How long a hold lasts unless renewed (ms); renewed every third of it while the request runs. */
  ttlMs: number;
  /** How long a request waits for a session another request holds before it is refused (ms). */
  waitMs: number;
}

export const DEFAULT_LEASE: LeaseOptions = { ttlMs: 30_000, waitMs: 3_000 };

/** Pauses between attempts to take a held session: short first (a chunk ending), then longer. */
const RETRY_MS = [20, 50, 100, 200, 400];

/**
 * A request's exclusive hold on an upload session, kept in the session's row so that it holds
 * across replicas (see `UploadStore.acquire`). Renewed while the request runs, so a long chunk
 * keeps it; lapses when the replica dies, so the session goes on elsewhere. Ended by `release`.
 *
 * Where no other process shares the database (`shared` false: the embedded SQLite), the row holds
 * no lease — the caller's in-process queue is exclusion enough — and a hold costs the statements a
 * request made before leases existed: reading the row, and marking it used at the end.
 */
export class SessionHold {
  /** What to save with the session when the hold ends: a hash that covers the upload's stored bytes. */
  checkpoint: SavedHash | undefined;
  /** Set once the session is gone (completed or discarded): there is no hold left to release. */
  ended = false;
  /** Only for a leased hold: an AbortController costs microseconds the embedded path need not pay. */
  private readonly lost: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  private constructor(
    private readonly uploads: UploadStore,
    readonly id: string,
    /** The lease's owner token; undefined when the row holds no lease (an unshared database). */
    private readonly owner: string | undefined,
    private readonly options: LeaseOptions,
    /** The session's row when it was taken, if read. */
    readonly row: UploadSessionRow | undefined,
  ) {
    if (owner === undefined) return;
    this.lost = new AbortController();
    this.timer = setInterval(() => void this.renew(), Math.max(options.ttlMs / 3, 10));
    this.timer.unref();
  }

  /**
   * Takes session `id` of `repository`. A session another request holds is waited for, up to
   * `options.waitMs` (not at all when `wait` is false), then refused with BLOB_UPLOAD_INVALID.
   * Resolves to undefined when there is no such session in that repository. With `readRow`, the
   * hold carries the session's row as it was once taken (for its saved hash). With `shared` false,
   * no lease is taken (see the class comment).
   */
  static async take(uploads: UploadStore, id: string, repository: string, options: LeaseOptions, { wait = true, readRow = false, shared = true } = {}): Promise<SessionHold | undefined> {
    if (!shared) {
      const row = await uploads.find(id);
      return row && row.repository === repository ? new SessionHold(uploads, id, undefined, options, row) : undefined;
    }
    const owner = randomBytes(12).toString('base64url');
    const deadline = Date.now() + (wait ? options.waitMs : 0);
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      if (await uploads.acquire(id, repository, { owner, until: now + options.ttlMs }, now)) {
        return new SessionHold(uploads, id, owner, options, readRow ? await uploads.find(id) : undefined);
      }
      const row = await uploads.find(id);
      if (!row || row.repository !== repository) return undefined;
      // Free again (released between the two statements): take it at once (a few times at most).
      if ((row.lease_owner === null || Number(row.lease_until) < Date.now()) && attempt < 3) continue;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing this upload: send the next chunk once the previous one is answered', {
          diagnosis: 'upload-session-busy',
          uploadId: id,
        });
      }
      await sleep(Math.min(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]!, left));
    }
  }

  /** Records a new session already held by the request that opens it (leased when `shared`). */
  static async open(uploads: UploadStore, id: string, repository: string, createdBy: string | null, origin: string | null, options: LeaseOptions, shared = true): Promise<SessionHold> {
    const owner = shared ? randomBytes(12).toString('base64url') : undefined;
    await uploads.create(id, repository, createdBy, origin, owner === undefined ? undefined : { owner, until: Date.now() + options.ttlMs });
    return new SessionHold(uploads, id, owner, options, undefined);
  }

  /**
   * Aborted when the hold is lost (another request took the session over after it lapsed): stop
   * writing. Undefined for a hold without a lease, which cannot be lost.
   */
  get signal(): AbortSignal | undefined {
    return this.lost?.signal;
  }

  /** The hash saved with the session when the hold was taken (with `readRow`). */
  get saved(): SavedHash | undefined {
    const row = this.row;
    if (!row || row.hash_state === null || row.hash_offset === null) return undefined;
    return { state: row.hash_state, offset: Number(row.hash_offset) };
  }

  /** Ends the hold, saving `checkpoint` with the session; nothing to do once the session ended. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (this.ended) return;
    this.ended = true;
    if (this.owner === undefined) await this.uploads.touch(this.id, this.checkpoint);
    else await this.uploads.release(this.id, this.owner, this.checkpoint);
  }

  /** Stops renewing without writing (the session was deleted, or the caller gives up on it). */
  drop(): void {
    clearInterval(this.timer);
    this.ended = true;
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.ended || this.owner === undefined) return;
    this.renewing = true;
    try {
      const now = Date.now();
      const held = await this.uploads.renew(this.id, { owner: this.owner, until: now + this.options.ttlMs }, now);
      if (!held && !this.ended) {
        clearInterval(this.timer);
        this.lost?.abort(new RegistryError('BLOB_UPLOAD_INVALID', 'upload session taken over by another request while this one stalled: send the chunk again from the offset the session reports', {
          diagnosis: 'upload-session-taken-over',
          uploadId: this.id,
        }));
      }
    } catch {
      // The database is unreachable for now: the next renewal tries again before the lease lapses.
    } finally {
      this.renewing = false;
    }
  }
}
