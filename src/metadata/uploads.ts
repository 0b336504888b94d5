import type { DB } from './dialect.ts';
import type { UploadSessionRow } from './schema.ts';

/** Upload sessions: which repository an upload belongs to and who opened it. Bytes live in the blob store. */
export class UploadStore {
  constructor(private readonly db: DB) {}

  async create(id: string, repository: string, createdBy: string | null, origin: string | null): Promise<void> {
    const now = Date.now();
    await this.db.insertInto('upload_sessions').values({ id, repository, created_by: createdBy, origin, created_at: now, updated_at: now }).execute();
  }

  async find(id: string): Promise<UploadSessionRow | undefined> {
    return this.db.selectFrom('upload_sessions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Marks a session as used now, so it does not expire while a client works on it. */
  async touch(id: string): Promise<void> {
    await this.db.updateTable('upload_sessions').set({ updated_at: Date.now() }).where('id', '=', id).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('upload_sessions').where('id', '=', id).execute();
  }

  /** Sessions untouched since `before` (ms), for expiry. */
  async idleSince(before: number, limit = 500): Promise<string[]> {
    const rows = await this.db.selectFrom('upload_sessions').select('id').where('updated_at', '<', before).limit(limit).execute();
    return rows.map((r) => r.id);
  }
}
