import { relaxed, type DB } from './dialect.ts';
import type { JobItemRow } from './schema.ts';

/** One thing a job decided or did (retention: an artifact kept or deleted, and why). */
export interface NewJobItem {
  /** What it is about, e.g. `team/app@sha256:…` (at most 600 characters). */
  subject: string;
  /** e.g. `retained`, `deleted`, `would-delete`, `failed` (at most 32 characters). */
  outcome: string;
  /** Kind-specific facts, stored as JSON. */
  detail?: Record<string, unknown>;
}

/** A page of a job's items, in the order they were added, with the total matching the filter. */
export interface JobItemPage {
  items: JobItemRow[];
  total: number;
}

/** Rows per insert: well inside both databases' limits on bound parameters (SQLite: 32,766). */
const BATCH = 500;

/**
 * The `job_items` table: what a job decided, item by item, for its history (a retention run's
 * decisions). Items go with their job when it is purged (foreign key, cascading). Errors: only the
 * database's own.
 */
export class JobItemStore {
  constructor(private readonly db: DB) {}

  /**
   * Adds `items` to job `jobId` in order, a few hundred rows per statement (each statement atomic,
   * not the whole call). Returns each item's id by its subject (subjects should be unique within
   * the call for that to tell them apart).
   */
  async append(jobId: number, items: readonly NewJobItem[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    for (let i = 0; i < items.length; i += BATCH) {
      const rows = items.slice(i, i + BATCH).map((item) => ({
        job_id: jobId,
        subject: item.subject,
        outcome: item.outcome,
        detail: item.detail === undefined ? null : JSON.stringify(item.detail),
      }));
      // Relaxed: a job's report, made durable by the job's next durable write (the log is flushed in order).
      const inserted = await this.db.executeQuery(relaxed(this.db.insertInto('job_items').values(rows).returning(['id', 'subject']).compile()));
      for (const row of inserted.rows) ids.set(row.subject, Number(row.id));
    }
    return ids;
  }

  /** Sets the outcome of items `ids` of job `jobId` (and their detail, when given). */
  async settle(jobId: number, ids: readonly number[], outcome: string, detail?: Record<string, unknown>): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const update = this.db
        .updateTable('job_items')
        .set({ outcome, ...(detail !== undefined ? { detail: JSON.stringify(detail) } : {}) })
        .where('job_id', '=', jobId)
        .where('id', 'in', ids.slice(i, i + BATCH));
      await this.db.executeQuery(relaxed(update.compile()));
    }
  }

  /** Removes items `ids` of job `jobId`. */
  async remove(jobId: number, ids: readonly number[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) await this.db.deleteFrom('job_items').where('job_id', '=', jobId).where('id', 'in', ids.slice(i, i + BATCH)).execute();
  }

  /** A page of job `jobId`'s items in the order they were added, only those with `outcome` when given. */
  async page(jobId: number, query: { outcome?: string; offset: number; limit: number }): Promise<JobItemPage> {
    let select = this.db.selectFrom('job_items').where('job_id', '=', jobId);
    if (query.outcome !== undefined) select = select.where('outcome', '=', query.outcome);
    const total = Number((await select.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await select.selectAll().orderBy('id').offset(query.offset).limit(query.limit).execute();
    return { items: rows.map((r) => ({ ...r, id: Number(r.id), job_id: Number(r.job_id) })), total };
  }

  /** How many items of job `jobId` have each outcome (outcomes with none are absent). */
  async counts(jobId: number): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('job_items')
      .select(['outcome', (eb) => eb.fn.countAll<number>().as('n')])
      .where('job_id', '=', jobId)
      .groupBy('outcome')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.outcome, Number(r.n)]));
  }

  /**
   * Removes job `jobId`'s items except those whose outcome is in `keep` (a run taken over after a
   * crash starts its report again, keeping what the earlier attempt already did). Returns how many.
   */
  async clear(jobId: number, keep: readonly string[] = []): Promise<number> {
    let query = this.db.deleteFrom('job_items').where('job_id', '=', jobId);
    if (keep.length > 0) query = query.where('outcome', 'not in', [...keep]);
    return Number((await query.executeTakeFirst()).numDeletedRows);
  }
}
