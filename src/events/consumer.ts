// A reader of the event outbox (src/metadata/events.ts) that runs on exactly one replica at a time:
// webhooks and event-based replication are each one named consumer with a cursor of its own.
import type { Logger } from 'pino';
import type { EventStore, OutboxEvent } from '../metadata/events.ts';
import type { LeaseStore } from '../metadata/leases.ts';

/** What a consumer does with the events it reads. */
export interface EventHandler {
  /**
   * Handles a batch of events in id order. Resolving acknowledges the whole batch (the cursor moves
   * past it); rejecting leaves the cursor where it was, so the same events come again after
   * `retryMs`. Events may come more than once (after a crash or a lost lease): handling must be
   * idempotent, e.g. keyed by event id.
   */
  handle(events: readonly OutboxEvent[], signal: AbortSignal): Promise<void>;
  /**
   * Called every `sweepMs` while this replica holds the consumer's lease (also when no event came):
   * for work that must not wait for the next event, such as re-enqueuing what a crashed replica
   * left. A rejection is logged; the next sweep tries again.
   */
  sweep?(signal: AbortSignal): Promise<void>;
}

export interface ConsumerOptions {
  /** The consumer's name: its cursor in `event_cursors` and its lease `events:<name>`. */
  name: string;
  events: Pick<EventStore, 'read' | 'ack'>;
  leases: Pick<LeaseStore, 'acquire' | 'release'>;
  /** This replica in lease owners. */
  owner: string;
  log: Logger;
  handler: EventHandler;
  /** Events per batch (default 500). */
  batch?: number;
  /** How often an idle consumer looks for new events, ms (default 200). */
  pollMs?: number;
  /** The lease's length, ms (default 15 s): how long a dead replica's consumer waits to be taken over. */
  leaseMs?: number;
  /** How often `sweep` runs, ms (default 5 s). */
  sweepMs?: number;
  /** Wait after a failed batch, ms (default 2 s). */
  retryMs?: number;
}

/** A running consumer. */
export interface RunningConsumer {
  /** Looks for new events now instead of at the next poll (e.g. after this replica appended one). */
  wake(): void;
  /** Stops after the batch in hand and gives the lease up. */
  stop(): Promise<void>;
}

/**
 * Starts reading the outbox as consumer `name`. Every replica starts one; the one holding the lease
 * `events:<name>` reads, the others retry the lease every third of its length, so a replica that
 * dies is replaced within `leaseMs`. The lease is renewed before every batch; a batch is
 * acknowledged only after `handle` resolved (at least once, never lost). Never rejects: database
 * errors are logged and retried.
 */
export function startConsumer(options: ConsumerOptions): RunningConsumer {
  const batch = options.batch ?? 500;
  const pollMs = options.pollMs ?? 200;
  const leaseMs = options.leaseMs ?? 15_000;
  const sweepMs = options.sweepMs ?? 5_000;
  const retryMs = options.retryMs ?? 2_000;
  const key = `events:${options.name}`;
  const log = options.log.child({ component: 'events', consumer: options.name });
  const abort = new AbortController();
  let wakeUp: (() => void) | undefined;
  let renewedAt = -Infinity;
  let sweptAt = -Infinity;
  let holding = false;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
      if (abort.signal.aborted) done();
    });

  /** Holds the lease, renewing it once a third of it has passed; false when another replica holds it. */
  async function hold(): Promise<boolean> {
    const now = performance.now();
    if (holding && now - renewedAt < leaseMs / 3) return true;
    const held = await options.leases.acquire(key, options.owner, leaseMs);
    if (held !== holding) log.info({ held }, held ? 'took the event consumer lease' : 'lost the event consumer lease');
    holding = held;
    if (held) renewedAt = now;
    return held;
  }

  async function step(): Promise<number> {
    if (!(await hold())) return leaseMs / 3;
    if (options.handler.sweep && performance.now() - sweptAt >= sweepMs) {
      sweptAt = performance.now();
      await options.handler.sweep(abort.signal).catch((err: unknown) => log.warn({ err }, 'event consumer sweep failed'));
    }
    const events = await options.events.read(options.name, batch);
    if (events.length === 0) return pollMs;
    try {
      await options.handler.handle(events, abort.signal);
    } catch (err) {
      if (abort.signal.aborted) return 0;
      log.warn({ err, from: events[0]!.id, to: events.at(-1)!.id }, 'handling events failed; they will be read again');
      return retryMs;
    }
    await options.events.ack(options.name, events.at(-1)!.id);
    return events.length === batch ? 0 : pollMs;
  }

  const running = (async () => {
    while (!abort.signal.aborted) {
      let wait: number;
      try {
        wait = await step();
      } catch (err) {
        log.warn({ err }, 'event consumer step failed');
        wait = retryMs;
      }
      if (wait > 0 && !abort.signal.aborted) await sleep(wait);
    }
    if (holding) await options.leases.release(key, options.owner).catch((err: unknown) => log.warn({ err }, 'releasing the event consumer lease failed'));
  })();

  return {
    wake: () => wakeUp?.(),
    async stop() {
      abort.abort();
      wakeUp?.();
      await running;
    },
  };
}
