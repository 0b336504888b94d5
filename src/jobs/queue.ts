import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { backoff, type RetryPolicy } from '../domain/backoff.ts';
import type { JobStore, NewJob } from '../metadata/jobs.ts';
import type { JobRow } from '../metadata/schema.ts';
import type { AbortReason, Job, JobLogLevel } from './kind.ts';

export type { RetryPolicy };

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 10_000, maxMs: 3_600_000 };

/** Progress is written at most this often (and with every heartbeat and at the end). */
const PROGRESS_INTERVAL_MS = 1000;
/** A job's log is trimmed to its newest lines after every this many lines of a run. */
const TRIM_EVERY = 20;

/**
 * The delay before the retry that follows failed attempt `attempt` (from 1): the exponential
 * backoff, drawn from its upper half ("equal jitter") so jobs that failed together do not retry
 * together.
 */
export function retryDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = backoff(attempt, policy);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface QueueOptions {
  /** This replica's name in lease owners (default: host, pid and a random suffix). */
  replica?: string;
  /** How long a claim lasts without a heartbeat. */
  leaseMs: number;
  retry?: RetryPolicy;
}

/**
 * The job queue as a replica uses it: enqueue, claim with a lease, cancel. Policy lives here
 * (lease length, owners, backoff); the SQL in JobStore; what a job does in its kind.
 */
export class JobQueue {
  readonly replica: string;
  readonly leaseMs: number;
  readonly retry: RetryPolicy;
  private claims = 0;
  private readonly listeners = new Set<() => void>();

  constructor(readonly store: JobStore, options: QueueOptions) {
    this.replica = options.replica ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.leaseMs = options.leaseMs;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /**
   * Adds a job; with `dedupeKey`, only if no job has that key yet (`created` says which). Wakes
   * this process's workers and, on PostgreSQL, every replica's.
   */
  async enqueue(job: NewJob): Promise<{ id: number; created: boolean }> {
    const result = await this.store.enqueue(job);
    if (result.created) this.due();
    return result;
  }

  /** Tells workers that jobs may be due (after an enqueue or a release); never throws. */
  due(): void {
    for (const listener of this.listeners) listener();
    this.store.notify().catch(() => undefined);
  }

  /** Calls `listener` whenever this process enqueues or releases a job; returns the unsubscribe. */
  onDue(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Claims up to `limit` due jobs of `kinds` (see JobStore.claim), each under a lease owner of its own claim. */
  async claim(kinds: readonly string[], limit: number): Promise<ClaimedJob[]> {
    const owner = `${this.replica}#${++this.claims}`;
    const rows = await this.store.claim(owner, kinds, limit, Date.now() + this.leaseMs);
    return rows.map((row) => new ClaimedJob(this, row, owner));
  }

  /** Settles lapsed jobs that must not run again (see JobStore.reap). */
  reap(): Promise<number> {
    return this.store.reap();
  }

  /** Cancels a job (see JobStore.cancel). */
  cancel(id: number): Promise<JobRow | undefined> {
    return this.store.cancel(id);
  }
}

/**
 * A job this replica holds a lease on, from claim to its end. Every change it makes is guarded by
 * the lease: once another replica took the job over, they all do nothing (and return false).
 */
export class ClaimedJob {
  readonly job: Job;
  private readonly controller = new AbortController();
  private lastBeat = Date.now();
  private pendingProgress: string | undefined;
  private lastProgressWrite = 0;
  private lines = 0;

  constructor(private readonly queue: JobQueue, readonly row: JobRow, readonly owner: string) {
    this.job = { id: row.id, kind: row.kind, payload: parsePayload(row.payload), attempt: row.attempts, maxAttempts: row.max_attempts };
  }

  /** Aborted when the run must stop; the reason is an AbortReason. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the run was told to stop, if it was. */
  get abortReason(): AbortReason | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as AbortReason) : undefined;
  }

  /** Tells the run to stop (the first reason wins). */
  abort(reason: AbortReason): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /**
   * Extends the lease and saves pending progress. Aborts the run when cancellation was asked, when
   * the lease is no longer this replica's, or when heartbeats have failed for a whole lease (another
   * replica may have taken the job over). Rejects with the database's error otherwise.
   */
  async heartbeat(): Promise<void> {
    const progress = this.pendingProgress;
    let beat: { held: boolean; cancelRequested: boolean };
    try {
      beat = await this.queue.store.heartbeat(this.job.id, this.owner, Date.now() + this.queue.leaseMs, progress);
    } catch (err) {
      if (Date.now() - this.lastBeat > this.queue.leaseMs) this.abort('lease-lost');
      throw err;
    }
    if (!beat.held) return this.abort('lease-lost');
    this.lastBeat = Date.now();
    if (progress !== undefined && this.pendingProgress === progress) this.pendingProgress = undefined;
    if (beat.cancelRequested) this.abort('cancelled');
  }

  /** Records progress; written now unless written less than a second ago (then with the next heartbeat or the end). */
  async progress(progress: Record<string, unknown>): Promise<void> {
    this.pendingProgress = JSON.stringify(progress);
    if (Date.now() - this.lastProgressWrite < PROGRESS_INTERVAL_MS) return;
    this.lastProgressWrite = Date.now();
    const written = this.pendingProgress;
    await this.queue.store.progress(this.job.id, this.owner, written);
    if (this.pendingProgress === written) this.pendingProgress = undefined;
  }

  /** Adds a line to the job's log, keeping it bounded. */
  async log(level: JobLogLevel, message: string): Promise<void> {
    await this.queue.store.log(this.job.id, level, message);
    if (++this.lines % TRIM_EVERY === 0) await this.queue.store.trimLog(this.job.id);
  }

  /** The run succeeded. */
  complete(): Promise<boolean> {
    return this.end('succeeded');
  }

  /** The run stopped because cancellation was asked. */
  cancelled(): Promise<boolean> {
    return this.end('cancelled', 'cancelled while it ran');
  }

  /**
   * The run failed with `err`: the job is queued again after a backoff while it has attempts left
   * (`retrying`), else it fails for good (`failed`); `lost` when the lease was no longer ours.
   */
  async fail(err: unknown): Promise<'retrying' | 'failed' | 'lost'> {
    const message = err instanceof Error ? err.message : String(err);
    if (this.job.attempt >= this.job.maxAttempts) return (await this.end('failed', message)) ? 'failed' : 'lost';
    const runAt = Date.now() + retryDelay(this.job.attempt, this.queue.retry);
    return (await this.queue.store.requeue(this.job.id, this.owner, runAt, { error: message })) ? 'retrying' : 'lost';
  }

  /** Gives the job back (this replica is stopping): due at once, the attempt not counted. */
  async release(): Promise<boolean> {
    const released = await this.queue.store.requeue(this.job.id, this.owner, Date.now(), { refund: true });
    if (released) this.queue.due();
    return released;
  }

  private async end(state: 'succeeded' | 'failed' | 'cancelled', error?: string): Promise<boolean> {
    // Runs trim every TRIM_EVERY lines; a first run that wrote fewer leaves the log far below the
    // bound, and skipping the trim then spares the common short job a statement.
    if (this.job.attempt > 1 || this.lines >= TRIM_EVERY) await this.queue.store.trimLog(this.job.id);
    return this.queue.store.finish(this.job.id, this.owner, state, {
      ...(error !== undefined ? { error } : {}),
      ...(this.pendingProgress !== undefined ? { progress: this.pendingProgress } : {}),
    });
  }
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}
