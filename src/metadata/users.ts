import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { containing, type DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { UserRow } from './schema.ts';

/** What password_hash holds for users of an identity source: no argon2 hash, so no password matches it. */
export const EXTERNAL_PASSWORD = '!external';

/** Orders of the user list: a field, descending when prefixed with "-". */
export const USER_SORTS = ['username', '-username', 'createdAt', '-createdAt', 'lastLoginAt', '-lastLoginAt'] as const;
export type UserSort = (typeof USER_SORTS)[number];

/** What `UserStore.search` lists: a page, in an order, optionally filtered. */
export interface UserQuery {
  offset: number;
  limit: number;
  /** Only users whose name contains this (ASCII case ignored). */
  q?: string;
  /** Only users of this identity source. */
  source?: string;
  /** Default `username`. */
  sort?: UserSort;
}

/** Users: the people that authenticate (robots: robots.ts). Passwords arrive already hashed. */
export class UserStore {
  private readonly byName;

  constructor(private readonly db: DB) {
    this.byName = new PreparedQuery(db, (username: string) => db.selectFrom('users').selectAll().where('username', '=', username));
  }

  /** The user named `username`, or undefined. */
  async find(username: string): Promise<UserRow | undefined> {
    return this.byName.first(username);
  }

  /** All users, by name. */
  async list(): Promise<UserRow[]> {
    return this.db.selectFrom('users').selectAll().orderBy('username').execute();
  }

  /** A page of users matching `query`, with how many match in all (ties by name, so pages never overlap). */
  async search(query: UserQuery): Promise<{ items: UserRow[]; total: number }> {
    let base = this.db.selectFrom('users');
    if (query.q) base = base.where(sql`lower(username)`, 'like', containing(query.q));
    if (query.source) base = base.where('source', '=', query.source);
    const total = Number((await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const sort = query.sort ?? 'username';
    const dir = sort.startsWith('-') ? 'desc' : 'asc';
    let page = base.selectAll();
    if (sort.endsWith('createdAt')) page = page.orderBy('created_at', dir);
    // Never signed in counts as longest ago, on both databases (their NULL orders differ).
    else if (sort.endsWith('lastLoginAt')) page = page.orderBy(sql`last_login_at ${sql.raw(dir === 'asc' ? 'asc nulls first' : 'desc nulls last')}`);
    const items = await page.orderBy('username', dir).offset(query.offset).limit(query.limit).execute();
    return { items, total };
  }

  async count(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Creates a user; rejects with `UserExistsError` when the name is taken. */
  async create(username: string, passwordHash: string, isAdmin: boolean): Promise<void> {
    if (await this.find(username)) throw new UserExistsError(username);
    await this.db
      .insertInto('users')
      .values({ username, password_hash: passwordHash, is_admin: isAdmin ? 1 : 0, credential_generation: 0, uid: randomUUID(), created_at: Date.now() })
      .execute();
  }

  /**
   * Creates the user a person of an external identity source signs in as (no password in Berth:
   * the stored hash can match none). Rejects with `UserExistsError` when the name is taken.
   */
  async createExternal(user: { username: string; source: string; externalId: string | null; email?: string | null; isAdmin: boolean }): Promise<UserRow> {
    if (await this.find(user.username)) throw new UserExistsError(user.username);
    await this.db
      .insertInto('users')
      .values({
        username: user.username,
        password_hash: EXTERNAL_PASSWORD,
        is_admin: user.isAdmin ? 1 : 0,
        credential_generation: 0,
        uid: randomUUID(),
        created_at: Date.now(),
        source: user.source,
        external_id: user.externalId,
        email: user.email ?? null,
      })
      .execute();
    return (await this.find(user.username))!;
  }

  /**
   * Notes a sign-in through an identity source: what it said of the person now, and when;
   * `externalRefresh` (sealed) replaces the stored refresh token when given.
   */
  async recordSignIn(id: number, seen: { externalId: string; email: string | null; isAdmin: boolean; at: number; externalRefresh?: string }): Promise<void> {
    await this.db
      .updateTable('users')
      .set({
        external_id: seen.externalId,
        email: seen.email,
        is_admin: seen.isAdmin ? 1 : 0,
        last_login_at: seen.at,
        groups_synced_at: seen.at,
        ...(seen.externalRefresh !== undefined ? { external_refresh: seen.externalRefresh } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Claims the next check of a user with their identity source: moves `groups_synced_at` from
   * `seen` (what the caller read) to `now`. True for the one caller (of every replica) that moved
   * it; the others go on as if checked. Refresh tokens that the source rotates must not be used
   * twice at once.
   */
  async claimResync(id: number, seen: number | null, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set({ groups_synced_at: now })
      .where('id', '=', id)
      .where((eb) => (seen === null ? eb('groups_synced_at', 'is', null) : eb('groups_synced_at', '=', seen)))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Puts back `groups_synced_at` after a check that could not be made (the source did not answer), unless it moved since. */
  async releaseResync(id: number, claimed: number, previous: number | null): Promise<void> {
    await this.db.updateTable('users').set({ groups_synced_at: previous }).where('id', '=', id).where('groups_synced_at', '=', claimed).execute();
  }

  /**
   * Ends every credential the user holds by moving their credential generation (tokens, sessions
   * and cached logins of older generations stop working): for a person the directory no longer
   * lists; the source's refresh token is forgotten too. False when no such user.
   */
  async bumpGeneration(username: string): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set((eb) => ({ credential_generation: eb('credential_generation', '+', 1), external_refresh: null }))
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Replaces a password and invalidates refresh tokens issued before; false when no such user. */
  async setPassword(username: string, passwordHash: string): Promise<boolean> {
    const result = await this.db
      .updateTable('users')
      .set((eb) => ({ password_hash: passwordHash, credential_generation: eb('credential_generation', '+', 1) }))
      .where('username', '=', username)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Grants or takes away system administration; false when no such user. */
  async setAdmin(username: string, isAdmin: boolean): Promise<boolean> {
    const result = await this.db.updateTable('users').set({ is_admin: isAdmin ? 1 : 0 }).where('username', '=', username).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Number of system administrators (the last one may not be removed). */
  async countAdmins(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('is_admin', '=', 1).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Deletes a user; false when no such user. */
  async delete(username: string): Promise<boolean> {
    const result = await this.db.deleteFrom('users').where('username', '=', username).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

export class UserExistsError extends Error {
  constructor(username: string) {
    super(`user "${username}" already exists`);
    this.name = 'UserExistsError';
  }
}
