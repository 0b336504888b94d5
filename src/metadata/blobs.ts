import { setTimeout as sleep } from 'node:timers/promises';
import type { RawBuilder } from 'kysely';
import { RegistryError } from '../domain/errors.ts';
import { oneOf, type DB } from './dialect.ts';
import { sqlDialectOf, type SqlDialect } from './jobs.ts';
import { PreparedQuery } from './prepared.ts';
import type { ProjectStore } from './projects.ts';

/** How long a push waits for garbage collection to finish deleting content it wants to store again. */
const CLAIM_WAIT_MS = 10_000;
/** Rows locked or changed per statement (a GC batch is 1,000: one statement each). */
const BATCH = 1000;

/** A content object and its size. */
export interface BlobEntry {
  digest: string;
  size: number;
}

/** What condemning a batch decided (see `BlobRecords.condemn`). */
export interface Condemned {
  /** The blobs now marked `deleting`, whose bytes the caller deletes next. */
  blobs: BlobEntry[];
  /** Bytes each project stopped counting (blobs uploaded for a push that never referenced them). */
  released: Map<number, number>;
}

function byDigest(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The `blobs` table: one row per content object storage holds (layers, configs, manifests), and the
 * protocol that lets garbage collection sweep while pushes go on.
 *
 * Invariant: a manifest row exists only while every blob it lists, and its own bytes, have a row
 * that is not `deleting` — and the bytes of such a row are in storage.
 *
 * - A push claims a row (`claim`: created or touched, waiting while it is `deleting`) before it
 *   writes the bytes, and the transaction that then records them (a blob linked, a manifest
 *   stored, a mount) holds every row it relies on (`hold`: locked, touched, required present and
 *   not deleting).
 * - The sweep condemns candidates in a transaction of its own (`condemn`): it locks their rows
 *   first and only then, in a later statement, checks that nothing references them and that they
 *   were untouched for the grace period; those become `deleting`, with the links and project
 *   counts that served them. Only after that commits are the bytes deleted, and the rows last.
 *
 * Locks order the two: a push that held a row first is seen by the sweep's check (its reference
 * or its touch); a sweep that condemned first makes the push's `hold` fail — a clean, retryable
 * MANIFEST_BLOB_UNKNOWN or BLOB_UPLOAD_INVALID — and its `claim` wait until the bytes are gone and
 * write them anew. Rows are locked in digest order everywhere, so PostgreSQL never deadlocks two
 * of these transactions; on SQLite transactions are serial and all of this holds trivially.
 */
export class BlobRecords {
  private readonly dialect: SqlDialect;
  private readonly upsert;

  constructor(private readonly db: DB, private readonly projects: ProjectStore) {
    this.dialect = sqlDialectOf(db);
    // Relaxed: the row matters only once the transaction recording the bytes commits durably, later in the log.
    this.upsert = new PreparedQuery(
      db,
      (digest: string, size: number, now: number) =>
        db
          .insertInto('blobs')
          .values({ digest, size, touched_at: now, deleting: 0 })
          .onConflict((oc) => oc.column('digest').doUpdateSet({ touched_at: now, size }).where('blobs.deleting', '=', 0)),
      { relaxed: true },
    );
  }

  /**
   * Before content `digest` is written to storage: records it (or marks it touched now). While
   * garbage collection is deleting it, waits for that to finish (then writes it anew); after
   * `CLAIM_WAIT_MS`, UNAVAILABLE (503), which clients retry.
   */
  async claim(digest: string, size: number): Promise<void> {
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      if ((await this.upsert.run(undefined, digest, size, Date.now())) > 0) return;
      if (Date.now() > deadline) {
        throw new RegistryError('UNAVAILABLE', 'garbage collection is deleting this content right now; retry shortly', { digest, reason: 'gc-in-progress' }, { headers: { 'Retry-After': '5' } });
      }
      await sleep(delay);
    }
  }

  /**
   * Within transaction `on`, before it records anything that relies on `digests`: locks their rows
   * (in digest order) and marks them touched now. Returns those that have no row or are being
   * deleted — the caller must not rely on them (and rolls back).
   */
  async hold(on: DB, digests: Iterable<string>, now = Date.now()): Promise<string[]> {
    const all = [...new Set(digests)].sort(byDigest);
    const held = new Set<string>();
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH);
      // One statement where lock order cannot matter — SQLite's serial transactions, or one row;
      // otherwise locked in digest order first (an UPDATE locks rows in no set order).
      if (this.dialect === 'sqlite' || batch.length === 1) {
        const touched = await on.updateTable('blobs').set({ touched_at: now }).where(this.among('digest', batch)).where('deleting', '=', 0).returning('digest').execute();
        for (const row of touched) held.add(row.digest);
        continue;
      }
      const locked = await this.lock(on, batch);
      const live = locked.filter((r) => r.deleting === 0).map((r) => r.digest);
      if (live.length > 0) await on.updateTable('blobs').set({ touched_at: now }).where(this.among('digest', live)).execute();
      for (const digest of live) held.add(digest);
    }
    return all.filter((d) => !held.has(d));
  }

  /** Within `on`: marks `digests` touched now (a reference to them was removed: their grace period starts again). */
  async touch(on: DB, digests: Iterable<string>, now = Date.now()): Promise<void> {
    await this.hold(on, digests, now);
  }

  private among(column: string, digests: readonly string[]): RawBuilder<boolean> {
    return oneOf(this.dialect, column, digests);
  }

  /** Locks the rows of `digests` (sorted by the caller) within `on`, in digest order; returns them. */
  private async lock(on: DB, digests: string[]): Promise<{ digest: string; size: number; deleting: number }[]> {
    if (digests.length === 0) return [];
    const query = on.selectFrom('blobs').select(['digest', 'size', 'deleting']).where(this.among('digest', digests)).orderBy('digest');
    // SQLite has no row locks: its transactions are serial.
    const rows = this.dialect === 'postgres' ? await query.forUpdate().execute() : await query.execute();
    return rows.map((r) => ({ digest: r.digest, size: Number(r.size), deleting: Number(r.deleting) }));
  }

  /**
   * The blobs that look collectable among the next `window` rows after `after` in digest order:
   * not deleting, untouched since `cutoff`, and neither a manifest of any repository nor listed by
   * one; `next` is where the following window starts (undefined: the table ends here). Each call
   * reads a bounded number of rows however sparse the garbage — on SQLite, whose queries run on
   * the event loop, a scan to the end of a large table would stall every request meanwhile. Only a
   * hint (a read without locks): `condemn` decides.
   */
  async candidates(after: string, cutoff: number, window: number): Promise<{ entries: BlobEntry[]; next: string | undefined }> {
    const end = await this.db.selectFrom('blobs').select('digest').where('digest', '>', after).orderBy('digest').limit(1).offset(window - 1).executeTakeFirst();
    let query = this.db
      .selectFrom('blobs as b')
      .select(['b.digest', 'b.size'])
      .where('b.digest', '>', after)
      .where('b.deleting', '=', 0)
      .where('b.touched_at', '<', cutoff)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.digest', '=', 'b.digest'))))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))))
      .orderBy('b.digest');
    if (end) query = query.where('b.digest', '<=', end.digest);
    const rows = await query.execute();
    return { entries: rows.map((r) => ({ digest: r.digest, size: Number(r.size) })), next: end?.digest };
  }

  /**
   * Decides, under lock, which of `digests` are garbage (see the class comment) and marks them
   * `deleting` in one transaction, with the repository links and project counts that served
   * them (usage falls by exactly their sizes). With `dryRun`, decides the same way and changes nothing.
   */
  async condemn(digests: readonly string[], cutoff: number, options: { dryRun?: boolean } = {}): Promise<Condemned> {
    const all = [...new Set(digests)].sort(byDigest);
    const result: Condemned = { blobs: [], released: new Map() };
    if (all.length === 0) return result;
    const decide = async (tx: DB): Promise<void> => {
      for (let i = 0; i < all.length; i += BATCH) {
        const batch = all.slice(i, i + BATCH);
        await this.lock(tx, batch);
        // A later statement than the lock: on PostgreSQL it sees what any push holding a row committed.
        const garbage = await tx
          .selectFrom('blobs as b')
          .select(['b.digest', 'b.size'])
          .where(this.among('b.digest', batch))
          .where('b.deleting', '=', 0)
          .where('b.touched_at', '<', cutoff)
          .where((eb) => eb.not(eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.digest', '=', 'b.digest'))))
          .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))))
          .orderBy('b.digest')
          .execute();
        if (garbage.length === 0) continue;
        const condemned = garbage.map((r) => r.digest);
        for (const row of garbage) result.blobs.push({ digest: row.digest, size: Number(row.size) });
        for (const [projectId, bytes] of await this.projects.forget(tx, condemned, options)) result.released.set(projectId, (result.released.get(projectId) ?? 0) + bytes);
        if (options.dryRun) continue;
        await tx.updateTable('blobs').set({ deleting: 1 }).where(this.among('digest', condemned)).execute();
        await tx.deleteFrom('repository_blobs').where(this.among('digest', condemned)).execute();
      }
    };
    await this.db.transaction().execute(decide);
    return result;
  }

  /** Up to `limit` blobs marked `deleting` (a sweep that stopped between marking and forgetting them), in digest order. */
  async deleting(limit: number, after = ''): Promise<BlobEntry[]> {
    const rows = await this.db.selectFrom('blobs').select(['digest', 'size']).where('deleting', '=', 1).where('digest', '>', after).orderBy('digest').limit(limit).execute();
    return rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  /** Removes the rows of `digests` that are marked `deleting` (their bytes are gone): claims waiting on them go on. */
  async forget(digests: readonly string[]): Promise<void> {
    for (let i = 0; i < digests.length; i += BATCH) {
      await this.db.deleteFrom('blobs').where(this.among('digest', digests.slice(i, i + BATCH))).where('deleting', '=', 1).execute();
    }
  }

  /**
   * For storage objects found without a row (orphans): inserts a `deleting` row for each of
   * `digests` that still has none, so no push can claim it while its bytes are deleted, and
   * returns those. A digest that has a row by now is not an orphan and is left alone.
   */
  async condemnOrphans(entries: readonly BlobEntry[]): Promise<BlobEntry[]> {
    const condemned: BlobEntry[] = [];
    for (const entry of entries) {
      const result = await this.db
        .insertInto('blobs')
        .values({ digest: entry.digest, size: entry.size, touched_at: 0, deleting: 1 })
        .onConflict((oc) => oc.column('digest').doNothing())
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0) > 0) condemned.push(entry);
    }
    return condemned;
  }

  /** Which of `digests` have a row. */
  async known(digests: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < digests.length; i += BATCH) {
      const rows = await this.db.selectFrom('blobs').select('digest').where(this.among('digest', digests.slice(i, i + BATCH))).execute();
      for (const row of rows) found.add(row.digest);
    }
    return found;
  }

  /** Number of rows not being deleted, and their bytes. */
  async totals(): Promise<{ count: number; bytes: number }> {
    const row = await this.db
      .selectFrom('blobs')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('size').as('bytes')])
      .where('deleting', '=', 0)
      .executeTakeFirstOrThrow();
    return { count: Number(row.n), bytes: Number(row.bytes ?? 0) };
  }

  /** Up to `limit` rows not being deleted after `after`, in digest order (what storage must hold). */
  async page(after: string | undefined, limit: number): Promise<BlobEntry[]> {
    const rows = await this.db.selectFrom('blobs').select(['digest', 'size']).where('deleting', '=', 0).where('digest', '>', after ?? '').orderBy('digest').limit(limit).execute();
    return rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }
}
