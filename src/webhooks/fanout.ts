// The `webhooks` consumer of the event outbox: turns each event into one delivery per enabled
// policy of its project that subscribes to its type, then wakes each policy's delivery job.
// Delivering is the job's (src/jobs/kinds/webhook.ts): reading the outbox never waits for a receiver.
import type { Logger } from 'pino';
import type { EventHandler } from '../events/consumer.ts';
import type { OutboxEvent } from '../metadata/events.ts';
import type { NewJob } from '../metadata/jobs.ts';
import type { ProjectRow, WebhookRow } from '../metadata/schema.ts';
import type { NewDelivery, WebhookStore } from '../metadata/webhooks.ts';
import { renderPayload, webhookEventOf, type WebhookFormat } from './payload.ts';
import { eventsOf, WEBHOOK_KIND, webhookKey } from './policies.ts';

/** The consumer's name: its cursor and lease (`events:webhooks`). */
export const WEBHOOKS_CONSUMER = 'webhooks';

/** How long a project's policies are served from memory before they are read again, ms. */
export const POLICY_CACHE_MS = 1_000;

/** What fan-out needs. */
export interface FanoutDeps {
  webhooks: Pick<WebhookStore, 'enabledFor' | 'queue' | 'due' | 'onChange'>;
  projects: { find(name: string): Promise<ProjectRow | undefined> };
  /** Adds a job (the job queue's enqueue: wakes this replica's workers and, on PostgreSQL, every replica's). */
  enqueue(job: NewJob): Promise<{ id: number; created: boolean }>;
  /** The first external URL, for resource URLs in payloads. */
  externalURL?: string;
  log: Logger;
}

/** The message id of an event's delivery to a policy: stable, so a re-read event keeps its `webhook-id`. */
export function messageIdOf(eventId: number, webhookId: number): string {
  return `msg_${eventId}_${webhookId}`;
}

/**
 * The handler of the `webhooks` consumer (run with startConsumer). `handle` queues deliveries —
 * idempotently: a delivery is unique per (policy, event) — and enqueues the delivery job of each
 * policy that got one; `sweep` enqueues the job of every policy with deliveries due (retries that
 * came due, work left by a replica that died). Policies are cached per project for
 * POLICY_CACHE_MS, and dropped when the change feed tells of a change on any replica (the TTL
 * bounds what a missed notification can leave stale).
 */
export function webhookFanout(deps: FanoutDeps): EventHandler & { close(): void } {
  const cache = new Map<string, { rows: WebhookRow[]; at: number }>();
  const unsubscribe = deps.webhooks.onChange(() => cache.clear());

  async function policies(project: string): Promise<WebhookRow[]> {
    const hit = cache.get(project);
    if (hit && performance.now() - hit.at < POLICY_CACHE_MS) return hit.rows;
    const at = performance.now();
    const rows = await deps.webhooks.enabledFor(project);
    if (cache.size >= 1_000) cache.clear();
    cache.set(project, { rows, at });
    return rows;
  }

  async function wake(ids: Iterable<number>): Promise<void> {
    for (const id of ids) await deps.enqueue({ kind: WEBHOOK_KIND, payload: { webhook: id }, exclusiveKey: webhookKey(id) });
  }

  return {
    async handle(events: readonly OutboxEvent[]): Promise<void> {
      const deliveries: NewDelivery[] = [];
      const publics = new Map<string, boolean>();
      for (const event of events) {
        const type = webhookEventOf(event.type);
        if (!type || !event.project) continue;
        const subscribed = (await policies(event.project)).filter((p) => eventsOf(p).includes(type));
        if (subscribed.length === 0) continue;
        let isPublic = publics.get(event.project);
        if (isPublic === undefined) publics.set(event.project, (isPublic = (await deps.projects.find(event.project))?.public === 1));
        for (const policy of subscribed) {
          const messageId = messageIdOf(event.id, policy.id);
          const payload = renderPayload(event, { format: policy.format as WebhookFormat, messageId, projectPublic: isPublic, ...(deps.externalURL ? { externalURL: deps.externalURL } : {}) });
          if (payload !== undefined) deliveries.push({ webhookId: policy.id, eventId: event.id, eventType: type, messageId, payload });
        }
      }
      if (deliveries.length === 0) return;
      await deps.webhooks.queue(deliveries);
      await wake(new Set(deliveries.map((d) => d.webhookId)));
    },
    async sweep(): Promise<void> {
      const due = await deps.webhooks.due();
      if (due.length > 0) await wake(due);
    },
    close: unsubscribe,
  };
}
