// Delivers the due messages of one webhook policy: claims them a few at a time, POSTs up to
// `webhooks.concurrency` at once, settles each (delivered, retry later with exponential backoff,
// or failed after `webhooks.maxAttempts`) and ends when none is due. A retry that comes due later
// is picked up by the `webhooks` consumer's sweep, which enqueues this job again: no job slot is
// held while waiting.
import { z } from 'zod';
import type { WebhookStore } from '../../metadata/webhooks.ts';
import type { WebhookDeliveryRow } from '../../metadata/schema.ts';
import { send, type SendResult } from '../../webhooks/deliver.ts';
import { WEBHOOK_KIND, webhookKey, WebhookUnusableError, type WebhookService, type WebhookTarget } from '../../webhooks/policies.ts';
import { signatureHeaders } from '../../webhooks/sign.ts';
import type { JobKind } from '../kind.ts';
import { backoff } from '../../domain/backoff.ts';

/** What a delivery job is enqueued with. */
export const webhookPayload = z.strictObject({ webhook: z.number().int().positive() });

/** The longest wait between two attempts of a delivery. */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/** What the kind needs from the composition root. */
export interface WebhookServices {
  webhook: {
    webhooks: Pick<WebhookStore, 'findById' | 'claim' | 'settle'>;
    policies: Pick<WebhookService, 'target'>;
    /** `webhooks.timeout` in ms. */
    timeoutMs: number;
    maxAttempts: number;
    /** `webhooks.retryDelay` in ms: the wait before the first retry, doubled for each further one. */
    retryDelayMs: number;
    concurrency: number;
  };
}

/** The wait after failed attempt `attempt` (from 1): `base` doubled per attempt, at most an hour. */
export function deliveryBackoff(attempt: number, baseMs: number): number {
  return backoff(attempt, { baseMs, maxMs: MAX_RETRY_DELAY_MS });
}

/**
 * Runs the deliveries of policy `payload.webhook`. A policy deleted or disabled meanwhile ends the
 * run (its pending deliveries stay: they go when it is enabled again). Idempotent and safe beside
 * a stalled earlier run: each delivery is claimed by one sender at a time. Deliveries are
 * at-least-once: a replica dying between the receiver's answer and the settle sends it again,
 * with the same `webhook-id`.
 */
export const webhookKind: JobKind<WebhookServices> = {
  kind: WEBHOOK_KIND,
  exclusiveKey(payload) {
    const parsed = webhookPayload.safeParse(payload);
    return parsed.success ? webhookKey(parsed.data.webhook) : undefined;
  },
  async run(job, ctx) {
    const s = ctx.services.webhook;
    const parsed = webhookPayload.safeParse(job.payload ?? {});
    if (!parsed.success) throw new Error('webhook: the payload is not valid (webhook: a policy id)');
    const id = parsed.data.webhook;
    const row = await s.webhooks.findById(id);
    if (!row || row.enabled !== 1) {
      await ctx.log('info', `webhook ${id} ${row ? 'is disabled' : 'no longer exists'}: nothing to deliver`);
      return;
    }
    let target: WebhookTarget | undefined;
    let unusable: string | undefined;
    try {
      target = await s.policies.target(row);
    } catch (err) {
      if (!(err instanceof WebhookUnusableError)) throw err;
      unusable = err.message;
    }
    // A claim outlives the longest attempt, so no other run takes a delivery still in flight.
    const holdMs = s.timeoutMs + 30_000;
    const figures = { delivered: 0, retrying: 0, failed: 0 };
    const buffer: WebhookDeliveryRow[] = [];
    let refill: Promise<void> | undefined;
    let exhausted = false;

    async function next(): Promise<WebhookDeliveryRow | undefined> {
      for (;;) {
        if (ctx.signal.aborted) return undefined;
        const head = buffer.shift();
        if (head) return head;
        if (exhausted) return undefined;
        refill ??= s.webhooks
          .claim(id, s.concurrency, holdMs)
          .then((rows) => {
            if (rows.length === 0) exhausted = true;
            buffer.push(...rows);
          })
          .finally(() => (refill = undefined));
        await refill;
      }
    }

    async function attempt(delivery: WebhookDeliveryRow): Promise<void> {
      let result: SendResult;
      if (!target) result = { ok: false, statusCode: null, response: null, error: `unusable: ${unusable ?? 'unknown'}`, durationMs: 0 };
      else {
        const headers: Record<string, string> = { ...signatureHeaders(target.secret, delivery.message_id, Math.floor(Date.now() / 1000), delivery.payload) };
        if (target.authHeader) headers.Authorization = target.authHeader;
        result = await send({
          url: target.url,
          body: delivery.payload,
          headers,
          timeoutMs: s.timeoutMs,
          ...(target.ca ? { ca: target.ca } : {}),
          insecure: target.insecure,
          signal: ctx.signal,
        });
      }
      // Stopped by a shutdown: never the last straw; due again at once, for whichever replica takes the job.
      const stopped = !result.ok && ctx.signal.aborted;
      const outcome = result.ok ? 'delivered' : !stopped && delivery.attempts >= s.maxAttempts ? 'failed' : 'retry';
      const nextAt = stopped ? Date.now() : Date.now() + deliveryBackoff(delivery.attempts, s.retryDelayMs);
      await s.webhooks.settle(delivery.id, delivery.attempts, {
        outcome,
        ...(outcome === 'retry' ? { nextAt } : {}),
        statusCode: result.statusCode,
        response: result.response,
        error: result.error,
        durationMs: result.durationMs,
      });
      if (outcome === 'delivered') figures.delivered++;
      else if (outcome === 'failed') figures.failed++;
      else figures.retrying++;
      // Only a report: a failed write is retried with the next one.
      void ctx.progress({ ...figures }).catch(() => undefined);
    }

    const worker = async () => {
      for (let d = await next(); d; d = await next()) await attempt(d);
    };
    await Promise.all(Array.from({ length: s.concurrency }, worker));
    ctx.signal.throwIfAborted();
    await ctx.progress({ ...figures });
    if (figures.retrying + figures.failed > 0) {
      await ctx.log('warn', `webhook "${row.name}": ${figures.delivered} delivered, ${figures.retrying} to be retried, ${figures.failed} failed for good (see its delivery log)`);
    }
  },
};
