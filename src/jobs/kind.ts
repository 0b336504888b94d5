// What a job kind is: one module under src/jobs/kinds/ that the worker runs. The queue and the
// worker know kinds only through this interface.

/** A job as its kind's `run` sees it. */
export interface Job {
  id: number;
  kind: string;
  /** The payload it was enqueued with (parsed JSON). */
  payload: unknown;
  /** This run's number, from 1. */
  attempt: number;
  maxAttempts: number;
}

/** A line of a job's log, stored with the job (the newest few hundred are kept) and shown by the API. */
export type JobLogLevel = 'info' | 'warn' | 'error';

/** Why a run's signal was aborted (its `reason`). */
export type AbortReason =
  /** Cancellation was asked (API, CLI): the job ends `cancelled`. */
  | 'cancelled'
  /** The lease was lost (taken over after it lapsed): another replica runs the job now. */
  | 'lease-lost'
  /** This replica is shutting down: the job goes back to the queue, its attempt not counted. */
  | 'shutdown';

/** What a run gets besides its job. */
export interface JobContext<S> {
  /** The composition root's services (the `context` given to startJobs). */
  services: S;
  /**
   * Aborted when the run must stop; `signal.reason` is an AbortReason. Cancellation is seen at the
   * next heartbeat (a third of the lease). A run that stops early because of it must throw (e.g.
   * `signal.throwIfAborted()`): a run that returns normally counts as done.
   */
  signal: AbortSignal;
  /** Adds a line to the job's log (and the server's log). Never throws: a failed write is logged. */
  log(level: JobLogLevel, message: string): Promise<void>;
  /** Reports progress (JSON-serialisable, e.g. `{ done: 10, total: 40 }`); saved at most once a second and at the end. */
  progress(progress: Record<string, unknown>): Promise<void>;
}

/**
 * A job kind. `run` may be called again for the same job — after a failure (a retry), and when the
 * replica running it died and another took the job over after its lease lapsed — and even while a
 * stalled earlier run still goes on: it must be idempotent. A rejection fails the attempt (retried
 * with backoff until the job's `maxAttempts`); its message is stored as the job's error, so it must not
 * contain secrets.
 */
export interface JobKind<S> {
  /** The name jobs are enqueued with; lower-case words and hyphens. */
  kind: string;
  /** A cron expression (UTC) for a schedule named like the kind, created on first start; absent: not scheduled. */
  schedule?: string;
  /**
   * Jobs of this kind with the same key never run at once: enqueuing one while another is queued
   * or running adds nothing (a schedule's tick is coalesced into the active job). Absent: no limit.
   */
  exclusiveKey?(payload: unknown): string | undefined;
  run(job: Job, ctx: JobContext<S>): Promise<void>;
}
