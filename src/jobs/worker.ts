import type { Logger } from 'pino';
import type { JobContext, JobKind, JobLogLevel } from './kind.ts';
import type { ClaimedJob, JobQueue } from './queue.ts';

export interface WorkerOptions {
  /** Jobs run at once (`jobs.concurrency`). */
  concurrency: number;
  /** How often an idle worker looks for due jobs (`jobs.pollInterval`), ms. */
  pollMs: number;
  log: Logger;
  /** Heartbeat interval, ms (default: a third of the lease, so two may fail before it lapses). */
  heartbeatMs?: number;
  /** On stop, how long runs told to stop are waited for, ms (default 10 s); later ones are left to lapse. */
  stopGraceMs?: number;
}

/**
 * One replica's job runner: `concurrency` slots, filled from the queue whenever a slot is free and
 * jobs are due — every `pollMs`, at once when this process enqueues, and when woken (PostgreSQL
 * NOTIFY). It takes over jobs whose lease lapsed (their replica died), so kinds must be idempotent.
 * Only jobs of the kinds it was given are claimed: a job of a kind it does not know waits for a
 * replica that does.
 */
export class Worker<S> {
  private readonly kinds: Map<string, JobKind<S>>;
  private readonly running = new Map<ClaimedJob, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private lastReap = -Infinity;
  private unsubscribe: (() => void) | undefined;
  private readonly heartbeatMs: number;

  constructor(private readonly queue: JobQueue, kinds: readonly JobKind<S>[], private readonly services: S, private readonly options: WorkerOptions) {
    this.kinds = new Map(kinds.map((k) => [k.kind, k]));
    this.heartbeatMs = options.heartbeatMs ?? Math.max(10, Math.floor(queue.leaseMs / 3));
  }

  /** Starts polling (at once). */
  start(): void {
    const due = this.queue.onDue(() => this.wake());
    // A cancellation asked in this process reaches its run now, not at the next heartbeat.
    const cancelled = this.queue.store.onCancelRequested((id) => {
      for (const claimed of this.running.keys()) if (claimed.job.id === id) claimed.heartbeat().catch(() => undefined);
    });
    this.unsubscribe = () => {
      due();
      cancelled();
    };
    this.wake();
  }

  /** Looks for due jobs now (or right after the look in progress). */
  wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.polling = this.poll().finally(() => {
      this.polling = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.wake();
      } else this.schedule();
    });
  }

  /** Jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /**
   * Stops claiming, tells running jobs to stop (`shutdown`: each goes back to the queue, its attempt
   * not counted, unless it finishes first) and waits for them, at most `stopGraceMs`.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    await this.polling;
    for (const claimed of this.running.keys()) claimed.abort('shutdown');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.stopGraceMs ?? 10_000)));
    await Promise.race([Promise.allSettled([...this.running.values()]), grace]);
    clearTimeout(timer);
  }

  private schedule(): void {
    // ±10 %, so replicas started together do not poll in step.
    const delay = this.options.pollMs * (0.9 + Math.random() * 0.2);
    this.timer = setTimeout(() => this.wake(), delay);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    try {
      if (performance.now() - this.lastReap >= this.options.pollMs) {
        this.lastReap = performance.now();
        const settled = await this.queue.reap();
        if (settled > 0) this.options.log.warn({ jobs: settled }, 'settled jobs whose lease lapsed on their last attempt');
      }
      const free = this.options.concurrency - this.running.size;
      if (free <= 0) return;
      for (const claimed of await this.queue.claim([...this.kinds.keys()], free)) {
        if (this.stopped) await claimed.release();
        else this.run(claimed);
      }
    } catch (err) {
      this.options.log.error({ err }, 'job poll failed');
    }
  }

  private run(claimed: ClaimedJob): void {
    const { job } = claimed;
    const kind = this.kinds.get(job.kind)!;
    const log = this.options.log.child({ job: job.id, kind: job.kind, attempt: job.attempt });
    const beat = setInterval(() => claimed.heartbeat().catch((err: unknown) => log.warn({ err }, 'job heartbeat failed')), this.heartbeatMs);
    beat.unref();
    const ctx: JobContext<S> = {
      services: this.services,
      signal: claimed.signal,
      log: async (level: JobLogLevel, message: string) => {
        log[level]({ line: message }, 'job log');
        await claimed.log(level, message).catch((err: unknown) => log.warn({ err }, 'job log line could not be stored'));
      },
      progress: (progress) => claimed.progress(progress),
    };
    const done = (async () => {
      log.info({ owner: claimed.owner }, 'job started');
      await ctx.log('info', `attempt ${job.attempt} of ${job.maxAttempts} started on ${claimed.owner}`);
      try {
        // Told to stop while the run was being set up: the kind would never hear of it.
        claimed.signal.throwIfAborted();
        await kind.run(job, ctx);
        log.info({ outcome: (await claimed.complete()) ? 'succeeded' : 'lost' }, 'job ended');
      } catch (err) {
        const reason = claimed.abortReason;
        if (reason === 'cancelled') {
          await ctx.log('warn', 'cancelled');
          log.info({ outcome: (await claimed.cancelled()) ? 'cancelled' : 'lost' }, 'job ended');
        } else if (reason === 'shutdown') {
          log.info({ outcome: (await claimed.release()) ? 'released' : 'lost' }, 'job ended');
        } else if (reason === 'lease-lost') {
          log.warn('job lease lost: another replica runs it now');
        } else {
          await ctx.log('error', `attempt ${job.attempt} failed: ${err instanceof Error ? err.message : String(err)}`);
          log.warn({ err, outcome: await claimed.fail(err) }, 'job attempt failed');
        }
      }
    })()
      .catch((err: unknown) => log.error({ err }, 'job could not be settled (its lease will lapse)'))
      .finally(() => {
        clearInterval(beat);
        this.running.delete(claimed);
        this.wake();
      });
    this.running.set(claimed, done);
  }
}
