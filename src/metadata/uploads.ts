import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { ProjectStore } from './projects.ts';
import type { RepositoryStore } from './repositories.ts';
import type { UploadSessionRow } from './schema.ts';

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
  private readonly touchOne;
  private readonly deleteOne;

  constructor(private readonly db: DB, private readonly projects: ProjectStore, private readonly repositories: RepositoryStore) {
    this.byId = new PreparedQuery(db, (id: string) => db.selectFrom('upload_sessions').selectAll().where('id', '=', id));
    this.insert = new PreparedQuery(db, (id: string, repository: string, createdBy: string | null, origin: string | null, now: number) =>
      db.insertInto('upload_sessions').values({ id, repository, created_by: createdBy, origin, created_at: now, updated_at: now }),
      { relaxed: true },
    );
    this.touchOne = new PreparedQuery(db, (id: string, now: number) => db.updateTable('upload_sessions').set({ updated_at: now }).where('id', '=', id), { relaxed: true });
    // Relaxed alone; in `complete` it shares the durable commit of the blob's other writes.
    this.deleteOne = new PreparedQuery(db, (id: string) => db.deleteFrom('upload_sessions').where('id', '=', id), { relaxed: true });
  }

  async create(id: string, repository: string, createdBy: string | null, origin: string | null): Promise<void> {
    await this.insert.run(undefined, id, repository, createdBy, origin, Date.now());
  }

  async find(id: string): Promise<UploadSessionRow | undefined> {
    return this.byId.first(id);
  }

  /** Marks a session as used now, so it does not expire while a client works on it. */
  async touch(id: string): Promise<void> {
    await this.touchOne.run(undefined, id, Date.now());
  }

  async delete(id: string): Promise<void> {
    await this.deleteOne.run(undefined, id);
  }

  /**
   * Records a verified upload in one durable commit: the project is charged for the blob, the blob
   * is linked into the repository, and the session ends. Resolves once that is on disk, so the
   * caller may then answer 201.
   */
  async complete(id: string, blob: CompletedUpload): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await this.projects.charge(blob.projectId, blob.digest, blob.size, tx);
      await this.repositories.linkBlob(blob.repositoryId, blob.digest, blob.size, tx);
      await this.deleteOne.run(tx, id);
    });
  }

  /** Sessions untouched since `before` (ms), for expiry. */
  async idleSince(before: number, limit = 500): Promise<string[]> {
    const rows = await this.db.selectFrom('upload_sessions').select('id').where('updated_at', '<', before).limit(limit).execute();
    return rows.map((r) => r.id);
  }
}
