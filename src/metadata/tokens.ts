import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { PersonalTokenRow } from './schema.ts';

/** Personal access tokens and API login sessions. Both are stored as SHA-256 hashes only. */
export class TokenStore {
  private readonly byHash;
  private readonly touchOne;
  private readonly byId;

  constructor(private readonly db: DB) {
    this.byHash = new PreparedQuery(db, (tokenHash: string) =>
      db.selectFrom('personal_tokens as t').innerJoin('users as u', 'u.id', 't.user_id').selectAll('t').select(['u.username', 'u.is_admin', 'u.uid']).where('t.token_hash', '=', tokenHash),
    );
    this.byId = new PreparedQuery(db, (id: number) => db.selectFrom('personal_tokens').selectAll().where('id', '=', id));
    this.touchOne = new PreparedQuery(db, (id: number, now: number) => db.updateTable('personal_tokens').set({ last_used_at: now }).where('id', '=', id), { relaxed: true });
  }

  /** Creates a token; false when the user already has one of that name. */
  async create(userId: number, name: string, tokenHash: string, prefix: string, expiresAt: number | null): Promise<boolean> {
    const result = await this.db
      .insertInto('personal_tokens')
      .values({ user_id: userId, name, token_hash: tokenHash, prefix, expires_at: expiresAt, revoked: 0, last_used_at: null, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['user_id', 'name']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** The token with this hash and its owner's name. */
  async findByHash(tokenHash: string): Promise<(PersonalTokenRow & { username: string; is_admin: number; uid: string }) | undefined> {
    return this.byHash.first(tokenHash);
  }

  /** The token with this id. */
  async findById(id: number): Promise<PersonalTokenRow | undefined> {
    return this.byId.first(id);
  }

  async list(userId: number): Promise<PersonalTokenRow[]> {
    return this.db.selectFrom('personal_tokens').selectAll().where('user_id', '=', userId).orderBy('name').execute();
  }

  async revoke(userId: number, name: string): Promise<boolean> {
    const result = await this.db.updateTable('personal_tokens').set({ revoked: 1 }).where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Notes a token's use; a relaxed commit (informative: a power cut may lose its last second). */
  async touch(id: number): Promise<void> {
    await this.touchOne.run(undefined, id, Date.now());
  }

  // ---- sessions ----

  /** Opens a session bound to the credential that proved the user (`pw:<generation>` or `pat:<id>`). */
  async createSession(idHash: string, userId: number, credential: string, expiresAt: number): Promise<void> {
    await this.db.insertInto('sessions').values({ id_hash: idHash, user_id: userId, credential, expires_at: expiresAt, created_at: Date.now() }).execute();
  }

  async findSession(idHash: string): Promise<{ username: string; is_admin: number; uid: string; credential: string | null; expires_at: number; created_at: number } | undefined> {
    return this.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['u.username', 'u.is_admin', 'u.uid', 's.credential', 's.expires_at', 's.created_at'])
      .where('s.id_hash', '=', idHash)
      .executeTakeFirst();
  }

  /** Ends every session of a user (a password change or reset); returns how many ended. */
  async deleteSessionsOf(userId: number): Promise<number> {
    const result = await this.db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async deleteExpiredSessions(now = Date.now()): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<', now).execute();
  }
}
