// `berth migrate`'s work, apart from the command line: copies one installation (metadata database
// and blob store) into another, resumably, verifying every blob. Backend-neutral: any pair of
// metadata databases (SQLite, PostgreSQL) and blob stores (filesystem, S3).
import { TOKEN_KEY } from '../auth/keys.ts';
import type { Metadata } from '../metadata/index.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { copyBlobs, referencedBlobs, type BlobCopy } from './blobs.ts';
import { checkPlan, TABLE_PLAN } from './plan.ts';
import { claimTarget, finishTarget, MIGRATION_TABLE } from './state.ts';
import { copyKeyed, copyReplacing, countRows, resetSequences, schemaTables, type AnyDatabase, type TableCopy } from './tables.ts';

export { TargetRefused } from './state.ts';
export type { BlobFailure } from './blobs.ts';

/** One side of a migration: an opened metadata database and blob store. */
export interface Installation {
  /** The metadata, opened (so migrated to this Berth's schema). */
  meta: Pick<Metadata, 'db' | 'dialect' | 'signingKeys'>;
  store: BlobStore;
  /** Names the installation in messages and in the target's record of migrations: no secrets (no password in a URL). */
  name: string;
}

/** Where a migration stands, passed to `onProgress` as it changes. */
export interface MigrationProgress {
  phase: 'tables' | 'blobs';
  /** The table being copied (phase `tables`). */
  table?: string;
  rowsDone: number;
  rowsTotal: number;
  blobsDone: number;
  blobsTotal: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsFailed: number;
  /** Bytes copied by this run. */
  bytes: number;
}

export interface MigrateOptions {
  /** Blobs copied at once (default 4). */
  parallel?: number;
  /**
   * The source's token signing key (PEM) to store in the target's database, so tokens the source
   * issued stay valid there: give it when the source keeps its key outside the database (a file)
   * and the target will use the database's. Never logged or returned.
   */
  signingKeyPem?: string;
  onProgress?: (progress: Readonly<MigrationProgress>) => void;
}

/** What a migration did. */
export interface MigrationSummary {
  source: string;
  target: string;
  /** An earlier run from the same source was interrupted and this one went on from there. */
  resumed: boolean;
  /** Tables copied, in order: rows in the source, and rows this run inserted (the rest were there already). */
  tables: TableCopy[];
  /** Tables left out, with the rows they held and why. */
  leftOut: { table: string; rows: number; why: string }[];
  /** PostgreSQL sequences moved past the copied ids. */
  sequences: number;
  /**
   * The signing key given in the options: `stored` in the target, `present` (the target had it
   * already: a rerun), `different` (the target holds another key, kept: tokens the source issued
   * will not be accepted), or `not given`.
   */
  signingKey: 'stored' | 'present' | 'different' | 'not given';
  blobs: BlobCopy;
  /** Whether everything was copied and verified: the target is ready, and the migration recorded as finished. */
  complete: boolean;
  durationMs: number;
}

/**
 * Copies `source` into `target`: every metadata table in foreign-key order, ids preserved, read
 * from one snapshot of the source (a transaction); then every blob the metadata references,
 * verified against its digest before the target stores it. Resumable: rows and blobs the target
 * already has are skipped, so a run killed at any point is finished by running it again.
 *
 * Rejects with `TargetRefused` when the target holds anything but an unfinished migration from
 * this source, and with an Error naming the tables when the schema has a table the plan does not
 * know (nothing is copied then). Blob failures do not reject: they are in `summary.blobs.failures`
 * and leave `complete` false (a rerun tries them again).
 */
export async function migrateInstallation(source: Installation, target: Installation, options: MigrateOptions = {}): Promise<MigrationSummary> {
  const started = Date.now();
  const src = source.meta.db as unknown as AnyDatabase;
  const dst = target.meta.db as unknown as AnyDatabase;
  const targetTables = await schemaTables(dst, target.meta.dialect);
  checkPlan(targetTables.filter((t) => t !== MIGRATION_TABLE));
  checkPlan(await schemaTables(src, source.meta.dialect));

  const filled = TABLE_PLAN.filter((p) => p.action !== 'skip');
  const claim = await claimTarget(dst, targetTables, source.name, async () => Promise.all(filled.map(async (p) => [p.table, await countRows(dst, p.table)] as [string, number])));

  const progress: MigrationProgress = { phase: 'tables', rowsDone: 0, rowsTotal: 0, blobsDone: 0, blobsTotal: 0, blobsCopied: 0, blobsSkipped: 0, blobsFailed: 0, bytes: 0 };
  const report = () => options.onProgress?.(progress);
  const tables: TableCopy[] = [];
  const leftOut: MigrationSummary['leftOut'] = [];

  // One snapshot of the source for every table and the blob list, so the copy is consistent even
  // if something wrote to the source meanwhile (it should be stopped).
  const blobList = await src
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (snap) => {
      const counts = new Map<string, number>();
      for (const p of TABLE_PLAN) counts.set(p.table, await countRows(snap, p.table));
      progress.rowsTotal = filled.reduce((sum, p) => sum + counts.get(p.table)!, 0);
      report();
      for (const plan of TABLE_PLAN) {
        if (plan.action === 'skip') {
          leftOut.push({ table: plan.table, rows: counts.get(plan.table)!, why: plan.why ?? 'not moved' });
          continue;
        }
        progress.table = plan.table;
        report();
        const onRows = (n: number) => {
          progress.rowsDone += n;
          report();
        };
        tables.push(plan.action === 'replace' ? await copyReplacing(snap, dst, plan, onRows) : await copyKeyed(snap, dst, plan, onRows));
      }
      return referencedBlobs(snap);
    });
  const sequences = target.meta.dialect === 'postgres' ? await resetSequences(dst, filled.map((p) => p.table)) : 0;
  const signingKey = options.signingKeyPem === undefined ? 'not given' : await storeSigningKey(target, options.signingKeyPem);

  progress.phase = 'blobs';
  delete progress.table;
  progress.blobsTotal = blobList.size;
  report();
  const blobs = await copyBlobs(source.store, target.store, blobList, {
    parallel: options.parallel ?? 4,
    onBlob: (event) => {
      progress.blobsDone++;
      if (event.outcome === 'copied') {
        progress.blobsCopied++;
        progress.bytes += event.bytes;
      } else if (event.outcome === 'skipped') progress.blobsSkipped++;
      else progress.blobsFailed++;
      report();
    },
  });

  const complete = blobs.failures.length === 0;
  if (complete) await finishTarget(dst, source.name);
  return { source: source.name, target: target.name, resumed: claim.resumed, tables, leftOut, sequences, signingKey, blobs, complete, durationMs: Date.now() - started };
}

/** Name of the token signing key in the signing_keys table (as src/auth/keys.ts reads it). */

/** Stores `pem` as the target's token signing key unless it has one; says which key it has now. */
async function storeSigningKey(target: Installation, pem: string): Promise<MigrationSummary['signingKey']> {
  const before = await target.meta.signingKeys.find(TOKEN_KEY);
  if (before !== undefined) return before.trim() === pem.trim() ? 'present' : 'different';
  const stored = await target.meta.signingKeys.ensure(TOKEN_KEY, () => pem);
  return stored.trim() === pem.trim() ? 'stored' : 'different';
}
