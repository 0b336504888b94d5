import type { DB } from './dialect.ts';
import type { ScheduleRow } from './schema.ts';

/** A schedule as code declares it (a job kind's default) or a test sets it. */
export interface ScheduleSpec {
  name: string;
  kind: string;
  /** A cron expression croner accepts (5 or 6 fields; evaluated in UTC). */
  cron: string;
  payload?: unknown;
  enabled?: boolean;
}

/**
 * The schedules table: which jobs are enqueued when. Every replica reads it and computes the ticks
 * itself (src/jobs/scheduler.ts); the table only says what to schedule, never who fires a tick.
 */
export class ScheduleStore {
  constructor(private readonly db: DB) {}

  /**
   * Adds the schedule unless one of that name exists: defaults declared in code never overwrite
   * what an administrator changed (cron, payload, enabled).
   */
  async ensure(spec: ScheduleSpec, now = Date.now()): Promise<void> {
    await this.db.insertInto('schedules').values(row(spec, now)).onConflict((oc) => oc.column('name').doNothing()).execute();
  }

  /** Adds or replaces the schedule `spec.name` (its kind, cron, payload and enabled flag). */
  async put(spec: ScheduleSpec, now = Date.now()): Promise<void> {
    const values = row(spec, now);
    await this.db
      .insertInto('schedules')
      .values(values)
      .onConflict((oc) => oc.column('name').doUpdateSet({ kind: values.kind, cron: values.cron, payload: values.payload, enabled: values.enabled, next_run_at: null }))
      .execute();
  }

  /** Every schedule, by name. */
  async list(): Promise<ScheduleRow[]> {
    const rows = await this.db.selectFrom('schedules').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      ...r,
      enabled: Number(r.enabled),
      next_run_at: r.next_run_at === null ? null : Number(r.next_run_at),
      last_run_at: r.last_run_at === null ? null : Number(r.last_run_at),
      created_at: Number(r.created_at),
    }));
  }

  /** The time of the last tick of schedule `name` that was enqueued (ms); undefined before the first or without the schedule. */
  async lastRun(name: string): Promise<number | undefined> {
    const row = await this.db.selectFrom('schedules').select('last_run_at').where('name', '=', name).executeTakeFirst();
    return row?.last_run_at === null || row === undefined ? undefined : Number(row.last_run_at);
  }

  /** Notes that the tick `tick` was enqueued and the next one is `next` (ms; informative). */
  async ticked(name: string, tick: number, next: number | null): Promise<void> {
    await this.db.updateTable('schedules').set({ last_run_at: tick, next_run_at: next }).where('name', '=', name).execute();
  }
}

function row(spec: ScheduleSpec, now: number) {
  return {
    name: spec.name,
    kind: spec.kind,
    cron: spec.cron,
    payload: JSON.stringify(spec.payload ?? {}),
    enabled: spec.enabled === false ? 0 : 1,
    next_run_at: null,
    last_run_at: null,
    created_at: now,
  };
}
