import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Metadata } from '../metadata/index.ts';
import type { JobKind } from './kind.ts';
import { JobQueue, type RetryPolicy } from './queue.ts';
import { Scheduler } from './scheduler.ts';
import { listenForDueJobs } from './wakeups.ts';
import { Worker } from './worker.ts';

export type { Job, JobContext, JobKind } from './kind.ts';
export { JobQueue } from './queue.ts';

/** What the composition root hands the job system. */
export interface StartJobsOptions<S> {
  meta: Pick<Metadata, 'jobs' | 'schedules' | 'postgres'>;
  log: Logger;
  config: Pick<Config, 'jobs'>;
  /** The kinds this replica runs (only their jobs are claimed and their schedules fired here). */
  kinds: readonly JobKind<S>[];
  /** The services every kind's `run` receives as `ctx.services`. */
  context: S;
  /** This replica's name in lease owners (default: host, pid and a random suffix). */
  replica?: string;
  /** Backoff between attempts (default: 10 s doubling, at most 1 h). */
  retry?: RetryPolicy;
}

/** The running job system of one replica. */
export interface RunningJobs {
  /** For enqueuing and cancelling jobs. */
  queue: JobQueue;
  /**
   * Stops the scheduler and the worker: running jobs are told to stop and go back to the queue
   * (waited for up to 10 s; a job still running then is left to its lease). Call before the
   * metadata closes.
   */
  stop(): Promise<void>;
}

/**
 * Starts this replica's part of the job system: the kinds' default schedules are created, then a
 * scheduler and a worker of `jobs.concurrency` slots run (neither with concurrency 0: the replica
 * then only enqueues). On PostgreSQL idle workers are also woken by `NOTIFY`. Rejects when the
 * schedules cannot be read or written (the database is unreachable).
 */
export async function startJobs<S>(options: StartJobsOptions<S>): Promise<RunningJobs> {
  const { meta, config, kinds } = options;
  const log = options.log.child({ component: 'jobs' });
  const queue = new JobQueue(meta.jobs, { leaseMs: config.jobs.lease * 1000, ...(options.replica ? { replica: options.replica } : {}), ...(options.retry ? { retry: options.retry } : {}) });
  if (config.jobs.concurrency === 0) return { queue, stop: async () => undefined };
  const pollMs = config.jobs.pollInterval * 1000;
  const worker = new Worker(queue, kinds, options.context, { concurrency: config.jobs.concurrency, pollMs, log });
  const scheduler = new Scheduler(meta.schedules, queue, {
    log,
    reloadMs: pollMs,
    kinds: new Set(kinds.map((k) => k.kind)),
    exclusiveKey: (kind, payload) => kinds.find((k) => k.kind === kind)?.exclusiveKey?.(payload),
    defaults: kinds.flatMap((k) => (k.schedule ? [{ name: k.kind, kind: k.kind, cron: k.schedule }] : [])),
  });
  await scheduler.start();
  worker.start();
  const wakeups = meta.postgres ? listenForDueJobs(meta.postgres, () => worker.wake(), log) : undefined;
  // Jobs enqueued in this process outside the queue (the API's starts) wake its workers at once.
  const unsubscribe = meta.jobs.onEnqueued(() => worker.wake());
  return {
    queue,
    async stop() {
      await scheduler.stop();
      unsubscribe();
      await wakeups?.close();
      await worker.stop();
    },
  };
}
