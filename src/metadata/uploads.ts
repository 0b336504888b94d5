import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import { RegistryError } from '../domain/errors.ts';
import type { BlobRecords } from './blobs.ts';
import type { ProjectStore } from './projects.ts';
import type { RepositoryStore } from './repositories.ts';
import type { UploadSessionRow } from './schema.ts';

/**
 * An upload's running SHA-256 as saved with its session: the hasher's state (base64) and the number
 * of bytes it covers (see src/registry/upload-hash.ts).
 */
export interface SavedHash {
  state: string;
  offset: number;
}

/** A request's hold on a session (see `UploadStore.acquire`): who holds it, until when (ms). */
export interface SessionLease {
  owner: string;
  until: number;
}

/** A verified upload to record: where it goes and what it is. */
export interface CompletedUpload {
  repositoryId: number;
  projectId: number;
  digest: string;
  size: number;
}

/**
 * Upload sessions: which repository an upload belongs to and who opened it. Bytes live in the blob
 * store.
 *
 * Opening, touching and ending a session are relaxed commits (see `relaxed` in dialect.ts): not flushed
 * to disk before the client is answered. Losing one to a power cut is harmless — the client's next
 * request on the session gets BLOB_UPLOAD_UNKNOWN and it starts the upload again (a session that
 * reappears expires), and nothing a client was told is stored depends on them alone.
 */
export class UploadStore {
  private readonly byId;
  private readonly insert;
  private readonly acquireOne;
  private readonly renewOne;
  private readonly releaseOne;
  private readonly releaseSaving;
  private readonly touchOne;
  private readonly touchSaving;
  private readonly deleteOne;

  constructor(private readonly db: DB, private readonly projects: ProjectStore, private readonly repositories: RepositoryStore, private readonly blobs: BlobRecords) {
    this.byId = new PreparedQuery(db, (id: string) => db.selectFrom('upload_sessions').selectAll().where('id', '=', id));
    this.insert = new PreparedQuery(
      db,
      (id: string, repository: string, createdBy: string | null, origin: string | null, now: number, leaseOwner: string | null, leaseUntil: number | null) =>
        db.insertInto('upload_sessions').values({ id, repository, created_by: createdBy, origin, created_at: now, updated_at: now, lease_owner: leaseOwner, lease_until: leaseUntil }),
      { relaxed: true },
    );
    // Touching the session (updated_at) rides on every lease write: a session held is not idle.
    this.acquireOne = new PreparedQuery(
      db,
      (id: string, repository: string, owner: string, until: number, now: number) =>
        db
          .updateTable('upload_sessions')
          .set({ lease_owner: owner, lease_until: until, updated_at: now })
          .where('id', '=', id)
          .where('repository', '=', repository)
          .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_until', '<', now)])),
      { relaxed: true },
    );
    this.renewOne = new PreparedQuery(
      db,
      (id: string, owner: string, until: number, now: number) =>
        db.updateTable('upload_sessions').set({ lease_until: until, updated_at: now }).where('id', '=', id).where('lease_owner', '=', owner),
      { relaxed: true },
    );
    this.releaseOne = new PreparedQuery(
      db,
      (id: string, owner: string, now: number) =>
        db.updateTable('upload_sessions').set({ lease_owner: null, lease_until: null, updated_at: now }).where('id', '=', id).where('lease_owner', '=', owner),
      { relaxed: true },
    );
    this.releaseSaving = new PreparedQuery(
      db,
      (id: string, owner: string, now: number, state: string, offset: number) =>
        db
          .updateTable('upload_sessions')
          .set({ lease_owner: null, lease_until: null, updated_at: now, hash_state: state, hash_offset: offset })
          .where('id', '=', id)
          .where('lease_owner', '=', owner),
      { relaxed: true },
    );
    this.touchOne = new PreparedQuery(db, (id: string, now: number) => db.updateTable('upload_sessions').set({ updated_at: now }).where('id', '=', id), { relaxed: true });
    this.touchSaving = new PreparedQuery(
      db,
      (id: string, now: number, state: string, offset: number) => db.updateTable('upload_sessions').set({ updated_at: now, hash_state: state, hash_offset: offset }).where('id', '=', id),
      { relaxed: true },
    );
    // Relaxed alone; in `complete` it shares the durable commit of the blob's other writes.
    this.deleteOne = new PreparedQuery(db, (id: string) => db.deleteFrom('upload_sessions').where('id', '=', id), { relaxed: true });
  }

  /** Records a new session; with `lease`, already held by the request that opens it. */
  async create(id: string, repository: string, createdBy: string | null, origin: string | null, lease?: SessionLease): Promise<void> {
    await this.insert.run(undefined, id, repository, createdBy, origin, Date.now(), lease?.owner ?? null, lease?.until ?? null);
  }

  async find(id: string): Promise<UploadSessionRow | undefined> {
    return this.byId.first(id);
  }

  /**
   * Holds session `id` of `repository` for `lease.owner` until `lease.until` when nobody holds it
   * (or a hold lapsed before `now`), and marks it used; false when there is no such session in
   * that repository or another holder's lease is still running (`find` tells which).
   */
  async acquire(id: string, repository: string, lease: SessionLease, now: number): Promise<boolean> {
    return (await this.acquireOne.run(undefined, id, repository, lease.owner, lease.until, now)) > 0;
  }

  /** Extends `lease.owner`'s hold to `lease.until`; false when it holds the session no more (ended, or taken over after it lapsed). */
  async renew(id: string, lease: SessionLease, now: number): Promise<boolean> {
    return (await this.renewOne.run(undefined, id, lease.owner, lease.until, now)) > 0;
  }

  /**
   * Ends `owner`'s hold and marks the session used, saving `hash` with it when given (a hash that
   * covers the upload's bytes as they now are); false, saving nothing, when `owner` holds it no more.
   */
  async release(id: string, owner: string, hash?: SavedHash, now = Date.now()): Promise<boolean> {
    const changed = hash ? await this.releaseSaving.run(undefined, id, owner, now, hash.state, hash.offset) : await this.releaseOne.run(undefined, id, owner, now);
    return changed > 0;
  }

  /**
   * Marks a session as used now, so it does not expire while a client works on it, saving `hash`
   * with it when given: for a database no other process writes to, where requests take no lease.
   */
  async touch(id: string, hash?: SavedHash, now = Date.now()): Promise<void> {
    if (hash) await this.touchSaving.run(undefined, id, now, hash.state, hash.offset);
    else await this.touchOne.run(undefined, id, now);
  }

  async delete(id: string): Promise<void> {
    await this.deleteOne.run(undefined, id);
  }

  /**
   * Records a blob stored (or mounted) into a repository in one durable commit: the project is
   * charged for it, it is linked into the repository, and session `id` ends, if given. Resolves
   * once that is on disk, so the caller may then answer 201. The blob's row must have been claimed
   * before its bytes were written (`BlobRecords.claim`): when garbage collection condemned it
   * meanwhile, BLOB_UPLOAD_INVALID and nothing is recorded — the client pushes it again.
   */
  async complete(id: string | undefined, blob: CompletedUpload): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if ((await this.blobs.hold(tx, [blob.digest])).length > 0) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', 'garbage collection removed this blob while it was being stored; push it again', { digest: blob.digest, reason: 'collected-during-push' });
      }
      await this.projects.charge(blob.projectId, blob.digest, blob.size, tx);
      await this.repositories.linkBlob(blob.repositoryId, blob.digest, blob.size, tx);
      if (id !== undefined) await this.deleteOne.run(tx, id);
    });
  }

  /** Sessions untouched since `before` (ms), for expiry. */
  async idleSince(before: number, limit = 500): Promise<string[]> {
    const rows = await this.db.selectFrom('upload_sessions').select('id').where('updated_at', '<', before).limit(limit).execute();
    return rows.map((r) => r.id);
  }
}
