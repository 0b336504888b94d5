import { EVENT_RETENTION_MS } from '../../metadata/events.ts';
import type { JobKind } from '../kind.ts';

/** Finished jobs (and their logs) are kept this long. */
export const JOB_RETENTION_MS = 30 * 86_400_000;

/** What housekeeping needs from the composition root. */
export interface HousekeepingServices {
  jobs: { purge(before: number): Promise<number> };
  events: { prune(before: number): Promise<number> };
  /** Webhook deliveries (delivered or failed) past WEBHOOK_DELIVERY_RETENTION_MS. */
  webhookDeliveries: { prune(before: number): Promise<number> };
}

/** Delivered and failed webhook deliveries are kept this long (the delivery log). */
export const WEBHOOK_DELIVERY_RETENTION_MS = 30 * 86_400_000;

/**
 * Keeps the job and event tables bounded: deletes jobs finished more than 30 days ago and outbox
 * events older than 7 days (see EventStore for what consumers may rely on), and delivered or failed
 * webhook deliveries older than 30 days. Daily. Idempotent.
 */
export const housekeeping: JobKind<HousekeepingServices> = {
  kind: 'housekeeping',
  schedule: '17 3 * * *',
  async run(_job, ctx) {
    const now = Date.now();
    const jobs = await ctx.services.jobs.purge(now - JOB_RETENTION_MS);
    ctx.signal.throwIfAborted();
    const events = await ctx.services.events.prune(now - EVENT_RETENTION_MS);
    ctx.signal.throwIfAborted();
    const deliveries = await ctx.services.webhookDeliveries.prune(now - WEBHOOK_DELIVERY_RETENTION_MS);
    await ctx.progress({ jobs, events, deliveries });
    await ctx.log('info', `deleted ${jobs} finished job(s), ${events} event(s) and ${deliveries} webhook deliveries past retention`);
  },
};
