import type { Logger } from 'pino';
// Types only: the driver is loaded on PostgreSQL alone (see connect).
import type pg from 'pg';
import { JOBS_CHANNEL } from '../metadata/jobs.ts';

/** After a lost connection, listening starts again this much later. */
const RECONNECT_MS = 5_000;

/**
 * On PostgreSQL, calls `onDue` whenever any replica signals that jobs became due (JobStore.notify),
 * over a connection of its own that `LISTEN`s (a pooled one cannot). Lost connections are opened
 * again after a pause, and `onDue` is called once listening (re)starts, for what was missed. Only a
 * wake-up: workers poll anyway, so a notification lost here delays a job by a poll interval at most.
 */
export function listenForDueJobs(config: pg.ClientConfig, onDue: () => void, log: Logger): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const again = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, RECONNECT_MS);
    retry.unref();
  };

  const connect = async () => {
    const { Client } = (await import('pg')).default;
    const candidate = new Client(config);
    // Messages only: the configuration (with its password) stays out of the log.
    candidate.on('error', (err) => {
      log.warn({ reason: err.message }, 'job wake-up connection failed');
      if (client === candidate) client = undefined;
      candidate.end().catch(() => undefined);
      again();
    });
    candidate.on('notification', () => onDue());
    try {
      await candidate.connect();
      await candidate.query(`listen ${JOBS_CHANNEL}`);
    } catch (err) {
      log.warn({ reason: (err as Error).message }, 'job wake-up connection failed');
      await candidate.end().catch(() => undefined);
      again();
      return;
    }
    if (closed) {
      await candidate.end().catch(() => undefined);
      return;
    }
    client = candidate;
    onDue();
  };

  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
