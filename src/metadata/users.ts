import { randomUUID } from 'node:crypto';
import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { UserRow } from './schema.ts';

/** Users: the people (and, later, robots) that authenticate. Passwords arrive already hashed. */
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
