import type { DB } from './dialect.ts';
import type { AuthFlowsTable } from './schema.ts';

/** A sign-in in progress as stored: `data` is the flow's own JSON (src/auth/oidc/flows.ts defines it). */
export type AuthFlowRow = AuthFlowsTable;

/**
 * Sign-ins in progress through an OpenID provider (table `auth_flows`), shared by every replica: a
 * browser may start a sign-in on one replica and come back to another. Rows are keyed by a hash of
 * a secret the caller holds (the OAuth `state`, a one-time code, a device flow's id), never by the
 * secret itself. Every read ignores expired rows; `take` makes a row single-use even when two
 * replicas race for it.
 */
export class AuthFlowStore {
  constructor(private readonly db: DB) {}

  /** Stores a new flow; throws when a flow of that key exists (a key is a fresh random value's hash). */
  async create(idHash: string, kind: string, data: string, expiresAt: number, userId: number | null = null): Promise<void> {
    await this.db.insertInto('auth_flows').values({ id_hash: idHash, kind, data, user_id: userId, expires_at: expiresAt, created_at: Date.now() }).execute();
  }

  /** The live (unexpired) flow of this key and kind, left in place. */
  async find(idHash: string, kind: string, now = Date.now()): Promise<AuthFlowRow | undefined> {
    return this.db.selectFrom('auth_flows').selectAll().where('id_hash', '=', idHash).where('kind', '=', kind).where('expires_at', '>', now).executeTakeFirst();
  }

  /**
   * Removes and returns the live flow of this key and kind: of two callers racing for one flow,
   * exactly one gets it (the other, like a replay, gets undefined).
   */
  async take(idHash: string, kind: string, now = Date.now()): Promise<AuthFlowRow | undefined> {
    return this.db.deleteFrom('auth_flows').where('id_hash', '=', idHash).where('kind', '=', kind).where('expires_at', '>', now).returningAll().executeTakeFirst();
  }

  /**
   * Replaces a flow's data (and user) if its data is still `expected` — a compare-and-set, so two
   * concurrent steps of one flow cannot both proceed; false when another step got there first or
   * the flow is gone.
   */
  async update(idHash: string, expected: string, data: string, userId: number | null): Promise<boolean> {
    const result = await this.db.updateTable('auth_flows').set({ data, user_id: userId }).where('id_hash', '=', idHash).where('data', '=', expected).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Removes the flow of this key, if any. */
  async remove(idHash: string): Promise<void> {
    await this.db.deleteFrom('auth_flows').where('id_hash', '=', idHash).execute();
  }

  /** Removes expired flows; returns how many live ones remain (to bound what anonymous callers can store). */
  async sweep(now = Date.now()): Promise<number> {
    await this.db.deleteFrom('auth_flows').where('expires_at', '<=', now).execute();
    const row = await this.db.selectFrom('auth_flows').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
