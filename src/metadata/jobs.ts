import { sql, type UpdateQueryBuilder, type UpdateResult } from 'kysely';
import type { DB } from './dialect.ts';
import type { Database, JobLogRow, JobRow, JobState } from './schema.ts';

type JobUpdate = UpdateQueryBuilder<Database, 'jobs', 'jobs', UpdateResult>;

/** The databases Berth runs on, as far as the job and event stores must tell them apart. */
export type SqlDialect = 'sqlite' | 'postgres';

/**
 * The dialect of `db`, from the placeholders its compiler writes (`$1` on PostgreSQL, `?` on
 * SQLite): for stores built where `Metadata.dialect` is not at hand.
 */
export function sqlDialectOf(db: DB): SqlDialect {
  return db.selectFrom('jobs').select('id').where('id', '=', 0).compile().sql.includes('$1') ? 'postgres' : 'sqlite';
}

/** A job to add to the queue. */
export interface NewJob {
  kind: string;
  /** JSON-serialisable; never secrets (the management API shows it). */
  payload?: unknown;
  /** Runs started before it is failed for good (default 3). */
  maxAttempts?: number;
  /** Not before this time, ms (default: now). */
  runAt?: number;
  /** While a job with this key exists, enqueuing the key again adds nothing (see JobStore.enqueue). */
  dedupeKey?: string;
  /**
   * While a job with this key is queued or running, enqueuing the key again adds nothing and returns
   * that job (`created: false`): at most one such job at a time (one GC; one retention run per project).
   */
  exclusiveKey?: string;
}

/** A page of the job list, newest first. */
export interface JobQuery {
  state?: JobState;
  kind?: string;
  offset: number;
  limit: number;
}

/** The PostgreSQL channel `notify` signals on and idle workers listen to. */
export const JOBS_CHANNEL = 'berth_jobs';
/** Log lines kept per job: the newest ones (older lines are dropped as new ones come). */
export const JOB_LOG_LINES = 200;
/** Longer messages are cut to this many characters. */
const LOG_MESSAGE_CHARS = 2000;
/** States in which a job is done and never changes again. */
export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/**
 * The jobs table: the durable queue every replica shares. All state changes of a job that a worker
 * holds are guarded by its lease (`lease_owner`), so a worker whose lease was taken over can no
 * longer change the job. Times are milliseconds; `now` parameters exist so tests and callers use
 * one clock. Errors: only the database's own (connection, constraint) — none are expected.
 */
export class JobStore {
  readonly dialect: SqlDialect;

  private readonly enqueued = new Set<() => void>();
  private readonly cancelRequested = new Set<(id: number) => void>();

  constructor(private readonly db: DB, dialect?: SqlDialect) {
    this.dialect = dialect ?? sqlDialectOf(db);
  }

  /**
   * Adds a job (state `queued`), on `on` when given (a caller's transaction: the job exists exactly
   * when the caller's change commits). With a dedupe key that some job already has, nothing is
   * added and that job's id is returned with `created: false` — on PostgreSQL a concurrent insert of
   * the same key is waited for, so exactly one of several racing callers creates it.
   */
  async enqueue(job: NewJob, now = Date.now(), on: DB = this.db): Promise<{ id: number; created: boolean }> {
    const result = await this.insert(job, now, on);
    // Within a caller's transaction the job is not visible before it commits: no wake-up then.
    if (result.created && on === this.db) for (const listener of this.enqueued) listener();
    return result;
  }

  /** Calls `listener` with the id of each job whose cancellation this process asked for; returns the unsubscribe. */
  onCancelRequested(listener: (id: number) => void): () => void {
    this.cancelRequested.add(listener);
    return () => this.cancelRequested.delete(listener);
  }

  /** Calls `listener` after each job this process enqueues outside a transaction; returns the unsubscribe. */
  onEnqueued(listener: () => void): () => void {
    this.enqueued.add(listener);
    return () => this.enqueued.delete(listener);
  }

  private async insert(job: NewJob, now: number, on: DB): Promise<{ id: number; created: boolean }> {
    const row = {
      kind: job.kind,
      payload: JSON.stringify(job.payload ?? {}),
      state: 'queued' as const,
      attempts: 0,
      max_attempts: job.maxAttempts ?? 3,
      run_at: job.runAt ?? now,
      lease_owner: null,
      lease_until: null,
      progress: null,
      error: null,
      dedupe_key: job.dedupeKey ?? null,
      exclusive_key: job.exclusiveKey ?? null,
      cancel_requested: 0,
      created_at: now,
      started_at: null,
      finished_at: null,
    };
    const insert = on.insertInto('jobs').values(row);
    if (job.exclusiveKey !== undefined) {
      // The key is released lazily: by the next enqueue once its job has ended.
      await on.updateTable('jobs').set({ exclusive_key: null }).where('exclusive_key', '=', job.exclusiveKey).where('state', 'in', ['succeeded', 'failed', 'cancelled']).execute();
      const result = await insert.onConflict((oc) => oc.doNothing()).executeTakeFirst();
      const existing = await on
        .selectFrom('jobs')
        .select('id')
        .where((eb) => eb.or([eb('exclusive_key', '=', job.exclusiveKey!), ...(job.dedupeKey !== undefined ? [eb('dedupe_key', '=', job.dedupeKey)] : [])]))
        .orderBy('id', 'desc')
        .executeTakeFirstOrThrow();
      return { id: Number(existing.id), created: Number(result.numInsertedOrUpdatedRows ?? 0) > 0 };
    }
    if (job.dedupeKey === undefined) {
      const id = this.dialect === 'postgres' ? (await insert.returning('id').executeTakeFirstOrThrow()).id : (await insert.executeTakeFirstOrThrow()).insertId;
      return { id: Number(id), created: true };
    }
    const result = await insert.onConflict((oc) => oc.column('dedupe_key').doNothing()).executeTakeFirst();
    const existing = await on.selectFrom('jobs').select('id').where('dedupe_key', '=', job.dedupeKey).executeTakeFirstOrThrow();
    return { id: Number(existing.id), created: Number(result.numInsertedOrUpdatedRows ?? 0) > 0 };
  }

  /**
   * Takes up to `limit` due jobs of `kinds` for `owner` with a lease until `leaseUntil`: queued jobs
   * whose `run_at` has come, and running jobs whose lease lapsed (their replica died or stalled) and
   * that have attempts left. Each becomes `running` with one more attempt. On PostgreSQL the rows
   * are picked with `FOR UPDATE SKIP LOCKED` by the claiming statement itself (one UPDATE … FROM a
   * locking CTE, one round trip), so replicas claiming at once never take the same job; on SQLite
   * the claim's transaction is the only writer. Oldest due first.
   */
  async claim(owner: string, kinds: readonly string[], limit: number, leaseUntil: number, now = Date.now()): Promise<JobRow[]> {
    if (kinds.length === 0 || limit <= 0) return [];
    const due = (on: DB) =>
      on
        .selectFrom('jobs')
        .select('id')
        .where('state', 'in', ['queued', 'running'])
        .where('kind', 'in', [...kinds])
        .where((eb) =>
          eb.or([
            eb.and([eb('state', '=', 'queued'), eb('run_at', '<=', now)]),
            eb.and([eb('state', '=', 'running'), eb('lease_until', '<', now), eb('cancel_requested', '=', 0), eb('attempts', '<', eb.ref('max_attempts'))]),
          ]),
        )
        .orderBy('run_at')
        .orderBy('id')
        .limit(limit);
    const lease = { state: 'running' as const, lease_owner: owner, lease_until: leaseUntil, started_at: now };
    const inOrder = (rows: JobRow[]) => rows.map(normalizeJob).sort((a, b) => a.run_at - b.run_at || a.id - b.id);
    if (this.dialect === 'postgres') {
      // One statement: the materialized CTE picks and locks the rows, skipping those other claims
      // hold (evaluated once, so never more than `limit`), and the update takes exactly those.
      const rows = await this.db
        .with((w) => w('picked').materialized(), () => due(this.db).forUpdate().skipLocked())
        .updateTable('jobs')
        .from('picked')
        .set((eb) => ({ ...lease, attempts: eb('jobs.attempts', '+', 1) }))
        .whereRef('jobs.id', '=', 'picked.id')
        .returningAll('jobs')
        .execute();
      return inOrder(rows);
    }
    return this.db.transaction().execute(async (tx) => {
      const ids = (await due(tx).execute()).map((r) => Number(r.id));
      if (ids.length === 0) return [];
      await tx.updateTable('jobs').set((eb) => ({ ...lease, attempts: eb('attempts', '+', 1) })).where('id', 'in', ids).execute();
      return inOrder(await tx.selectFrom('jobs').selectAll().where('id', 'in', ids).execute());
    });
  }

  /**
   * Settles running jobs whose lease lapsed and that must not run again: cancelled when
   * cancellation was asked, failed when they have no attempts left. Returns how many. (Jobs with
   * attempts left are taken over by `claim` instead.) Rows another replica holds locked are skipped.
   */
  async reap(now = Date.now()): Promise<number> {
    let settled = 0;
    for (const cancelled of [true, false]) {
      let stale = this.db
        .selectFrom('jobs')
        .select('id')
        .where('state', '=', 'running')
        .where('lease_until', '<', now)
        .where((eb) => (cancelled ? eb('cancel_requested', '=', 1) : eb.and([eb('cancel_requested', '=', 0), eb('attempts', '>=', eb.ref('max_attempts'))])));
      if (this.dialect === 'postgres') stale = stale.forUpdate().skipLocked();
      const result = await this.db
        .updateTable('jobs')
        .set(
          cancelled
            ? { state: 'cancelled', lease_owner: null, lease_until: null, finished_at: now }
            : { state: 'failed', lease_owner: null, lease_until: null, finished_at: now, error: 'its lease lapsed on the last attempt (the replica running it stopped or stalled)' },
        )
        .where('id', 'in', stale)
        // Again here: the rows are re-checked if a concurrent change touched them.
        .where('state', '=', 'running')
        .where('lease_until', '<', now)
        .executeTakeFirst();
      settled += Number(result.numUpdatedRows);
    }
    return settled;
  }

  /**
   * Extends `owner`'s lease (and saves `progress`, JSON, when given). `held: false` when the lease
   * is no longer `owner`'s (taken over, or the job settled): the run must stop without settling it.
   * `cancelRequested` says whether cancellation was asked meanwhile.
   */
  async heartbeat(id: number, owner: string, leaseUntil: number, progress?: string): Promise<{ held: boolean; cancelRequested: boolean }> {
    const result = await this.owned(
      this.db.updateTable('jobs').set({ lease_until: leaseUntil, ...(progress !== undefined ? { progress } : {}) }),
      id,
      owner,
    ).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return { held: false, cancelRequested: false };
    const row = await this.db.selectFrom('jobs').select('cancel_requested').where('id', '=', id).executeTakeFirst();
    return { held: true, cancelRequested: Number(row?.cancel_requested ?? 0) === 1 };
  }

  /** Saves `owner`'s progress report (JSON); false when the lease is no longer `owner`'s. */
  async progress(id: number, owner: string, progress: string): Promise<boolean> {
    return Number((await this.owned(this.db.updateTable('jobs').set({ progress }), id, owner).executeTakeFirst()).numUpdatedRows) > 0;
  }

  /** Ends `owner`'s run in a final state (with the error, and last progress if given); false when the lease is no longer `owner`'s. */
  async finish(id: number, owner: string, state: 'succeeded' | 'failed' | 'cancelled', fields: { error?: string; progress?: string } = {}, now = Date.now()): Promise<boolean> {
    const set = {
      state,
      lease_owner: null,
      lease_until: null,
      finished_at: now,
      ...(fields.error !== undefined ? { error: fields.error.slice(0, LOG_MESSAGE_CHARS) } : {}),
      ...(fields.progress !== undefined ? { progress: fields.progress } : {}),
    };
    return Number((await this.owned(this.db.updateTable('jobs').set(set), id, owner).executeTakeFirst()).numUpdatedRows) > 0;
  }

  /**
   * Puts `owner`'s job back in the queue, due at `runAt`: a retry after a failure (with its
   * `error`), or with `refund` a run stopped by a shutdown, whose attempt is not counted. A job
   * whose cancellation was asked becomes `cancelled` instead. False when the lease is no longer `owner`'s.
   */
  async requeue(id: number, owner: string, runAt: number, options: { error?: string; refund?: boolean } = {}, now = Date.now()): Promise<boolean> {
    const result = await this.owned(
      this.db.updateTable('jobs').set((eb) => ({
        state: eb.case().when('cancel_requested', '=', 1).then('cancelled').else('queued').end().$castTo<JobState>(),
        // Cast: PostgreSQL would type a lone parameter in a CASE as text.
        finished_at: eb.case().when('cancel_requested', '=', 1).then(eb.cast<number>(eb.val(now), 'bigint')).else(null).end(),
        run_at: runAt,
        lease_owner: null,
        lease_until: null,
        ...(options.refund ? { attempts: eb('attempts', '-', 1) } : {}),
        ...(options.error !== undefined ? { error: options.error.slice(0, LOG_MESSAGE_CHARS) } : {}),
      })),
      id,
      owner,
    ).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Cancels a job: a queued one at once (`cancelled`), a running one by asking its run to stop (it
   * sees the request at its next heartbeat and ends `cancelled`). One statement, so a job changing
   * state meanwhile is caught in either state. Returns the job as it is afterwards (a finished job
   * unchanged); undefined when there is no such job.
   */
  async cancel(id: number, now = Date.now()): Promise<JobRow | undefined> {
    await this.db
      .updateTable('jobs')
      .set((eb) => ({
        state: eb.case().when('state', '=', 'queued').then('cancelled').else(eb.ref('state')).end().$castTo<JobState>(),
        finished_at: eb.case().when('state', '=', 'queued').then(now).else(eb.ref('finished_at')).end(),
        cancel_requested: 1,
      }))
      .where('id', '=', id)
      .where('state', 'in', ['queued', 'running'])
      .execute();
    for (const listener of this.cancelRequested) listener(id);
    return this.get(id);
  }

  /**
   * Wakes idle workers of every replica (PostgreSQL `NOTIFY` on JOBS_CHANNEL) because jobs became
   * due; nothing on SQLite, whose one process wakes its workers itself. Only a hint: workers poll.
   */
  async notify(): Promise<void> {
    if (this.dialect === 'postgres') await sql`select pg_notify(${JOBS_CHANNEL}, '')`.execute(this.db);
  }

  /** A job by id; undefined when there is none. */
  async get(id: number): Promise<JobRow | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && normalizeJob(row);
  }

  /** A page of jobs, newest first, with the total matching the filters. */
  async list(q: JobQuery): Promise<{ items: JobRow[]; total: number }> {
    let query = this.db.selectFrom('jobs');
    if (q.state) query = query.where('state', '=', q.state);
    if (q.kind) query = query.where('kind', '=', q.kind);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll().orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { items: items.map(normalizeJob), total };
  }

  /** Adds a line to a job's log (cut to 2000 characters). Call `trimLog` now and then to keep it bounded. */
  async log(id: number, level: JobLogRow['level'], message: string, now = Date.now()): Promise<void> {
    await this.db.insertInto('job_logs').values({ job_id: id, time: now, level, message: message.slice(0, LOG_MESSAGE_CHARS) }).execute();
  }

  /** Drops all but the newest JOB_LOG_LINES lines of a job's log. */
  async trimLog(id: number): Promise<void> {
    const cut = this.db.selectFrom('job_logs').select('id').where('job_id', '=', id).orderBy('id', 'desc').limit(1).offset(JOB_LOG_LINES - 1);
    // Fewer lines than that: the subquery is empty, the comparison null, and nothing is deleted.
    await this.db.deleteFrom('job_logs').where('job_id', '=', id).where('id', '<', cut).execute();
  }

  /** The newest `limit` lines of a job's log, oldest first. */
  async logs(id: number, limit = JOB_LOG_LINES): Promise<JobLogRow[]> {
    const rows = await this.db.selectFrom('job_logs').selectAll().where('job_id', '=', id).orderBy('id', 'desc').limit(limit).execute();
    return rows.reverse().map((r) => ({ ...r, id: Number(r.id), job_id: Number(r.job_id), time: Number(r.time) }));
  }

  /** Deletes finished jobs (and their logs) that finished before `before`; returns how many. */
  async purge(before: number): Promise<number> {
    const result = await this.db.deleteFrom('jobs').where('state', 'in', [...FINAL_STATES]).where('finished_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Restricts an update to the job `id` while `owner` holds its lease. */
  private owned(query: JobUpdate, id: number, owner: string): JobUpdate {
    return query.where('id', '=', id).where('lease_owner', '=', owner).where('state', '=', 'running');
  }
}

/** A job row with its numbers as numbers (PostgreSQL returns `bigint` columns as strings). */
export function normalizeJob(row: JobRow): JobRow {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    ...row,
    id: Number(row.id),
    attempts: Number(row.attempts),
    max_attempts: Number(row.max_attempts),
    run_at: Number(row.run_at),
    lease_until: n(row.lease_until),
    cancel_requested: Number(row.cancel_requested),
    created_at: Number(row.created_at),
    started_at: n(row.started_at),
    finished_at: n(row.finished_at),
  };
}
