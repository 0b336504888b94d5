// Issue 16's webhook figures: the lag from a push's acknowledgement to its delivery at a receiver
// in the bench process, and a burst of tag pushes that must all be delivered.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryClient } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { format, recordSamples, runCount, type FigureContext, type Sample } from '../measure.ts';
import type { ReplicationSetup } from './replication.ts';
import { smallImage, WebhookReceiver } from './replication-setup.ts';

/** The webhook figures' project and repository. */
const HOOK_PROJECT = 'bench-hooks';
const HOOK_REPOSITORY = `${HOOK_PROJECT}/app`;
/** How long one delivery may take in the lag figure before the sample fails. */
const LAG_TIMEOUT_MS = 60_000;
/** The burst figure gives up when no delivery came for this long after the pushes ended. */
const STALL_MS = 60_000;

/**
 * Figure 4: a webhook of project `bench-hooks` (`artifact.pushed`, Harbor's format) to a receiver
 * in this process. The lag: one small manifest pushed under a new tag at a time (a varying pause
 * between), each timed from the PUT's acknowledgement to the delivery naming that tag. The burst:
 * `webhookBurst` tag PUTs of the same manifest from `webhookBurstClients` clients; every tag must
 * arrive (lost = pushed − delivered), duplicates are counted; events per second from the first
 * push to the last delivery.
 */
export async function webhookFigures(ctx: FigureContext, setup: ReplicationSetup): Promise<void> {
  const { berth, api } = setup;
  const nonce = randomBytes(4).toString('hex');
  const receiver = await WebhookReceiver.start(new RegExp(`(?:lag|burst)-${nonce}-\\d+`));
  const agent = keepAliveAgent(ctx.scale.webhookBurstClients);
  try {
    await api.project(HOOK_PROJECT);
    await api.webhook(HOOK_PROJECT, 'bench', receiver.url, 'harbor');
    const image = smallImage();
    const client = new RegistryClient(berth, agent);
    for (const blob of image.blobs) await client.pushMonolithic(HOOK_REPOSITORY, blob.bytes, blob.digest);
    const tagPush = async (c: RegistryClient, tag: string): Promise<number> => {
      await c.putManifest(HOOK_REPOSITORY, tag, image.manifest);
      return performance.now();
    };
    // Untimed: the first delivery opens the connection to the receiver.
    const warm = `lag-${nonce}-0`;
    const warmAcked = await tagPush(client, warm);
    ctx.log(`  webhook delivery · warm-up (not counted): ${format((await receiver.arrival(warm, LAG_TIMEOUT_MS)) - warmAcked)} ms`);

    const lags: Sample[] = [];
    for (let i = 1; i <= ctx.scale.webhookLagSamples; i++) {
      await sleep(100 + Math.random() * 300);
      const tag = `lag-${nonce}-${i}`;
      const acked = await tagPush(client, tag);
      const arrived = await receiver.arrival(tag, LAG_TIMEOUT_MS);
      lags.push({ value: (arrived - acked) / 1000 });
    }
    ctx.log(`  webhook delivery lag · ${lags.length} pushes: ${lags.map((l) => format(l.value * 1000)).join(', ')} ms`);
    recordSamples(ctx, { key: 'webhook-lag', label: 'webhook delivery: push acknowledged → delivery received', unit: 's', better: 'lower' }, 'berth', lags, `${lags.length} pushes one at a time, Harbor's format`);

    const total = ctx.scale.webhookBurst;
    const clients = Array.from({ length: ctx.scale.webhookBurstClients }, () => new RegistryClient(berth, agent));
    const tags = Array.from({ length: total }, (_, i) => `burst-${nonce}-${i}`);
    const started = performance.now();
    let refused = 0;
    await runCount(clients.length, total, async (i, worker) => {
      try {
        await tagPush(clients[worker]!, tags[i]!);
      } catch {
        refused++;
      }
    });
    const pushed = performance.now();
    const pushRate = (total - refused) / ((pushed - started) / 1000);
    ctx.log(`  webhook burst · ${total - refused} tag pushes in ${format((pushed - started) / 1000)} s (${format(pushRate)} /s${refused ? `, ${refused} refused` : ''}); waiting for the deliveries`);
    const delivered = () => tags.reduce((n, t) => n + (receiver.first.has(t) ? 1 : 0), 0);
    let last = delivered();
    let lastChange = performance.now();
    while (last < total - refused && performance.now() - lastChange < STALL_MS) {
      await sleep(200);
      const now = delivered();
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      }
    }
    const arrivals = tags.flatMap((t) => (receiver.first.has(t) ? [receiver.first.get(t)!] : []));
    const lastArrival = arrivals.length ? Math.max(...arrivals) : NaN;
    const duplicates = tags.reduce((n, t) => n + Math.max(0, (receiver.counts.get(t) ?? 0) - 1), 0);
    const lost = total - refused - arrivals.length;
    const seconds = (lastArrival - started) / 1000;
    const note = `${total - refused} tag pushes by ${clients.length} clients at ${format(pushRate)} /s; delivered ${arrivals.length}, lost ${lost}, duplicates ${duplicates}, requests at the receiver ${receiver.requests}; last delivery ${format((lastArrival - pushed) / 1000)} s after the last push`;
    ctx.log(`  webhook burst · ${note}`);
    recordSamples(ctx, { key: 'webhook-burst', label: `webhook burst: ${total} events delivered, first push → last delivery`, unit: 'events/s', better: 'higher' }, 'berth', [{ value: arrivals.length ? arrivals.length / seconds : 0 }], note);
    recordSamples(ctx, { key: 'webhook-burst-lost', label: 'webhook burst: events pushed but never delivered', unit: 'events', better: 'lower' }, 'berth', [{ value: lost }], note);
    recordSamples(ctx, { key: 'webhook-burst-push', label: 'webhook burst: tag pushes acknowledged per second meanwhile', unit: 'pushes/s', better: 'higher' }, 'berth', [{ value: pushRate }]);
    if (refused) throw new Error(`webhook burst: ${refused} of ${total} tag pushes refused`);
  } finally {
    agent.destroy();
    await receiver.close();
  }
}
