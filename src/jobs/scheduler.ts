import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { ScheduleSpec, ScheduleStore } from '../metadata/schedules.ts';
import type { ScheduleRow } from '../metadata/schema.ts';
import type { JobQueue } from './queue.ts';

export interface SchedulerOptions {
  log: Logger;
  /** How often the schedules table is read again (changes made elsewhere take effect), ms; also the longest sleep. */
  reloadMs: number;
  /** Schedules created on start unless one of the same name exists. */
  defaults?: readonly ScheduleSpec[];
  /** Kinds this replica can run: only their schedules are fired here (others by replicas that know them). */
  kinds: ReadonlySet<string>;
  /** The exclusive key of a job of `kind` with `payload` (see JobKind.exclusiveKey): a tick while such a job is active is coalesced into it. */
  exclusiveKey?: (kind: string, payload: unknown) => string | undefined;
}

interface Entry {
  row: ScheduleRow;
  cron: Cron;
  /** The next tick, ms; null when the expression has no further ticks. */
  next: number | null;
}

/** The dedupe key of a schedule's tick: the same on every replica, so each tick is enqueued once. */
export function tickKey(name: string, tick: number): string {
  return `${name}@${new Date(tick).toISOString()}`;
}

/**
 * Turns schedules into jobs. Every replica runs one: each computes the next tick of every
 * schedule itself (croner, in UTC) and, when it comes, enqueues the schedule's job with the dedupe
 * key `<schedule>@<tick time>` — all replicas compute the same key, so the database keeps exactly
 * one job per tick however many replicas fire it and however their clocks differ. Ticks missed
 * while no replica ran are not caught up (the next one comes as usual); when a replica falls
 * behind (a long pause), it fires the latest passed tick once.
 */
export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private firing: Promise<void> | undefined;
  private stopped = false;
  private lastReload = -Infinity;
  /** Schedules whose expression was refused, so the refusal is logged once. */
  private readonly refused = new Set<string>();

  constructor(private readonly schedules: ScheduleStore, private readonly queue: JobQueue, private readonly options: SchedulerOptions) {}

  /** Creates the default schedules, reads the table and starts waiting for the first tick. */
  async start(): Promise<void> {
    for (const spec of this.options.defaults ?? []) await this.schedules.ensure(spec);
    await this.reload();
    this.arm();
  }

  /** Stops firing (a tick being enqueued now completes). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.firing;
  }

  private async reload(): Promise<void> {
    this.lastReload = performance.now();
    const rows = (await this.schedules.list()).filter((r) => r.enabled === 1 && this.options.kinds.has(r.kind));
    const now = Date.now();
    for (const name of this.entries.keys()) if (!rows.some((r) => r.name === name)) this.entries.delete(name);
    for (const row of rows) {
      const known = this.entries.get(row.name);
      if (known && known.row.cron === row.cron) {
        known.row = row;
        continue;
      }
      try {
        const cron = new Cron(row.cron, { timezone: 'Etc/UTC' });
        this.entries.set(row.name, { row, cron, next: cron.nextRun(new Date(now))?.getTime() ?? null });
        this.refused.delete(row.name);
      } catch (err) {
        this.entries.delete(row.name);
        if (!this.refused.has(row.name)) this.options.log.error({ schedule: row.name, cron: row.cron, err }, 'schedule has an invalid cron expression: skipped');
        this.refused.add(row.name);
      }
    }
  }

  /**
   * Sleeps until the earliest tick, at most `reloadMs` (the clock or the table may change
   * meanwhile); after a failure (database unreachable) `reloadMs` in any case.
   */
  private arm(failed = false): void {
    if (this.stopped) return;
    const ticks = [...this.entries.values()].map((e) => e.next).filter((t): t is number => t !== null);
    const until = failed ? this.options.reloadMs : ticks.length > 0 ? Math.min(...ticks) - Date.now() : Infinity;
    this.timer = setTimeout(() => {
      this.firing = this.fire().then((ok) => {
        this.firing = undefined;
        this.arm(!ok);
      });
    }, Math.max(0, Math.min(until, this.options.reloadMs)));
    this.timer.unref();
  }

  /** Enqueues every tick that has come; false when something failed (it is tried again later). */
  private async fire(): Promise<boolean> {
    let ok = true;
    try {
      if (performance.now() - this.lastReload >= this.options.reloadMs) await this.reload();
    } catch (err) {
      ok = false;
      this.options.log.error({ err }, 'schedules could not be read');
    }
    const now = Date.now();
    for (const entry of this.entries.values()) {
      if (this.stopped) return ok;
      if (entry.next === null || entry.next > now) continue;
      const tick = entry.next;
      const following = entry.cron.nextRun(new Date(Math.max(now, tick)))?.getTime() ?? null;
      try {
        const payload = parse(entry.row.payload);
        const exclusiveKey = this.options.exclusiveKey?.(entry.row.kind, payload);
        const { id, created } = await this.queue.enqueue({ kind: entry.row.kind, payload, dedupeKey: tickKey(entry.row.name, tick), ...(exclusiveKey !== undefined ? { exclusiveKey } : {}) });
        if (created) {
          this.options.log.info({ schedule: entry.row.name, job: id, tick: new Date(tick).toISOString() }, 'scheduled job enqueued');
          await this.schedules.ticked(entry.row.name, tick, following);
        }
        entry.next = following;
      } catch (err) {
        // The tick stays due: the next wake tries it again (its key keeps it to one job).
        ok = false;
        this.options.log.error({ schedule: entry.row.name, err }, 'scheduled job could not be enqueued');
      }
    }
    return ok;
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
