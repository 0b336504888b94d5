// The target's record of migrations into it: which source, started and finished when. It lets a
// rerun resume (same source, unfinished) while refusing a database that holds anything else.
import type { AnyDatabase } from './tables.ts';

/**
 * The table `berth migrate` keeps in the target. Not part of Berth's schema (the registry never
 * reads it), so not in the table plan; it stays after a migration as a record of it.
 */
export const MIGRATION_TABLE = 'berth_migration';

/** Why the target cannot take this migration; the message says what to do. */
export class TargetRefused extends Error {
  override name = 'TargetRefused';
}

/** One migration recorded in the target. */
export interface MigrationRecord {
  source: string;
  startedAt: number;
  finishedAt: number | null;
}

async function records(db: AnyDatabase, tables: readonly string[]): Promise<MigrationRecord[]> {
  if (!tables.includes(MIGRATION_TABLE)) return [];
  const rows = await db.selectFrom(MIGRATION_TABLE).selectAll().execute();
  return rows.map((r) => ({ source: String(r['source']), startedAt: Number(r['started_at']), finishedAt: r['finished_at'] === null ? null : Number(r['finished_at']) }));
}

/**
 * Claims the target for a migration from `source`, or recognises an unfinished one from the same
 * source (then resumed: true). Refuses with {@link TargetRefused} a target that finished a
 * migration from this source already (it may have changed since: repeating the copy would bring
 * back what was deleted there), holds a migration from another source, or holds registry data
 * without a record (Berth was started on it: its rows would clash with the copied ones).
 * `nonEmpty` counts the rows of the tables the migration fills, for that last check.
 */
export async function claimTarget(db: AnyDatabase, tables: readonly string[], source: string, nonEmpty: () => Promise<[string, number][]>): Promise<{ resumed: boolean; startedAt: number }> {
  const existing = await records(db, tables);
  const mine = existing.find((r) => r.source === source);
  if (mine?.finishedAt) {
    throw new TargetRefused(
      `the target already holds a finished migration from ${source} (finished ${new Date(mine.finishedAt).toISOString()}); it is not repeated, since the registry may have changed there since — to start over, give an empty database and bucket`,
    );
  }
  if (mine) return { resumed: true, startedAt: mine.startedAt };
  if (existing.length > 0) {
    throw new TargetRefused(`the target database holds a migration from another installation (${existing[0]!.source}); give an empty database`);
  }
  const filled = (await nonEmpty()).filter(([, n]) => n > 0);
  if (filled.length > 0) {
    const what = filled.slice(0, 4).map(([t, n]) => `${t}: ${n} rows`).join(', ');
    throw new TargetRefused(`the target database is not empty (${what}${filled.length > 4 ? ', …' : ''}): was Berth started on it? berth migrate fills only an empty database`);
  }
  await db.schema
    .createTable(MIGRATION_TABLE)
    .ifNotExists()
    .addColumn('source', 'varchar(1024)', (c) => c.primaryKey())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  const startedAt = Date.now();
  await db.insertInto(MIGRATION_TABLE).values({ source, started_at: startedAt, finished_at: null }).execute();
  return { resumed: false, startedAt };
}

/** Records the migration from `source` as finished: from now on a rerun is refused. */
export async function finishTarget(db: AnyDatabase, source: string): Promise<void> {
  await db.updateTable(MIGRATION_TABLE).set({ finished_at: Date.now() }).where('source', '=', source).execute();
}
