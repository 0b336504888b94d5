import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';

/**
 * Short, named leases shared by every replica on the database (table `leases`): one replica at a
 * time does a piece of work such as fetching a missing blob from an upstream registry, and another
 * takes it over once the holder stops renewing (it died). Times are each replica's own clock in ms,
 * so replicas' clocks must agree to well within a lease's length.
 *
 * Writes are relaxed commits (see `relaxed` in dialect.ts): a lease lost to a power cut lets a second
 * replica do the same work once more — never a wrong result.
 */
export class LeaseStore {
  private readonly take;
  private readonly extend;
  private readonly drop;

  constructor(db: DB) {
    // One statement, so two replicas racing for a free or lapsed lease cannot both win: SQLite runs
    // it alone; on PostgreSQL the loser of the insert waits for the winner's row, then evaluates the
    // update's condition against it and changes nothing.
    this.take = new PreparedQuery(
      db,
      (key: string, owner: string, expiresAt: number, now: number) =>
        db
          .insertInto('leases')
          .values({ key, owner, expires_at: expiresAt })
          .onConflict((oc) =>
            oc
              .column('key')
              .doUpdateSet((eb) => ({ owner: eb.ref('excluded.owner'), expires_at: eb.ref('excluded.expires_at') }))
              .where((eb) => eb.or([eb('leases.expires_at', '<', now), eb('leases.owner', '=', eb.ref('excluded.owner'))])),
          ),
      { relaxed: true },
    );
    this.extend = new PreparedQuery(
      db,
      (key: string, owner: string, expiresAt: number) => db.updateTable('leases').set({ expires_at: expiresAt }).where('key', '=', key).where('owner', '=', owner),
      { relaxed: true },
    );
    this.drop = new PreparedQuery(db, (key: string, owner: string) => db.deleteFrom('leases').where('key', '=', key).where('owner', '=', owner), { relaxed: true });
  }

  /**
   * Takes lease `key` for `owner` until `ttlMs` from now when nobody holds it, its holder let it
   * lapse, or `owner` holds it already (then it is extended); true when `owner` holds it now.
   */
  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return (await this.take.run(undefined, key, owner, now + ttlMs, now)) > 0;
  }

  /**
   * Extends `owner`'s lease `key` to `ttlMs` from now; false when `owner` holds it no more (released,
   * or taken over by another owner after it lapsed). A lapsed lease nobody took is still `owner`'s.
   */
  async renew(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.extend.run(undefined, key, owner, Date.now() + ttlMs)) > 0;
  }

  /** Gives lease `key` up if `owner` holds it (otherwise a no-op): another owner may take it at once. */
  async release(key: string, owner: string): Promise<void> {
    await this.drop.run(undefined, key, owner);
  }
}
