// Issue 16's "10,000 events delivered with 0 lost across a replica kill": Berth scaled out (two
// replicas on PostgreSQL + S3 behind nginx, as deploy/scale-out/ runs it), a burst of tag pushes,
// and the replica holding the webhooks consumer's lease killed (SIGKILL) part-way through.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ProcessRegistry } from '../../test/support/processes.ts';
import { startReplicaSet } from '../../test/support/replicas.ts';
import { RegistryClient } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { format, recordSamples, runCount, type FigureContext } from '../measure.ts';
import { type BenchServer, startBackendServers } from '../servers.ts';
import { ReplicationApi, smallImage, WebhookReceiver } from './replication-setup.ts';

const PROJECT = 'bench-hooks-ha';
const REPOSITORY = `${PROJECT}/app`;
/** The share of the burst acknowledged before the kill. */
const KILL_AT = 0.4;
/**
 * `jobs.lease` of the replicas: a delivery job the killed replica held is taken over once its lease
 * ran out (the deployment's 60 s would make the figure a minute longer and measure nothing more).
 */
const JOBS_LEASE = '15s';
/** Give up when no delivery came for this long after the pushes ended (longer than both leases). */
const STALL_MS = 90_000;
/** Attempts of one tag push: a push in flight on the killed replica fails and is sent again. */
const PUSH_ATTEMPTS = 4;

/**
 * The burst across a replica kill: two replicas behind nginx on a PostgreSQL and an S3 server of
 * the figure's own; a webhook to a receiver in this process; `webhookBurst` tag PUTs from
 * `webhookBurstClients` clients through nginx; once {@link KILL_AT} of them were acknowledged, the
 * replica holding the lease `events:webhooks` gets SIGKILL. Every acknowledged tag must be
 * delivered. Records lost, duplicates, events/s and the longest pause between deliveries.
 */
export async function webhookBurstAcrossKill(ctx: FigureContext): Promise<void> {
  const processes = new ProcessRegistry();
  const scratch: string[] = [];
  const nonce = randomBytes(4).toString('hex');
  const receiver = await WebhookReceiver.start(new RegExp(`kill-${nonce}-\\d+`));
  const agent = keepAliveAgent(ctx.scale.webhookBurstClients);
  let api: ReplicationApi | undefined;
  try {
    const backend = await startBackendServers(processes);
    const set = await startReplicaSet({ replicas: 2, registry: processes, backend, jobsLease: JOBS_LEASE, logLevel: ctx.scale.name === 'quick' ? 'info' : 'warn', env: { BERTH_ANONYMOUS_PULL: 'true' } });
    scratch.push(...set.scratch);
    const pids = set.replicas.map((r) => r.process!.pid);
    const berth: BenchServer = { name: 'berth', base: set.url, authMode: 'anonymous-pull', username: 'admin', password: set.adminPassword, pid: pids[0]!, dataDir: set.replicas[0]!.dataDir, logFile: set.replicas[0]!.logFile, stop: async () => undefined };
    ctx.log(`  2 replicas (pids ${pids.join(', ')}) behind nginx ${set.url} on PostgreSQL + S3`);
    api = new ReplicationApi(berth);
    await api.project(PROJECT);
    await api.webhook(PROJECT, 'bench', receiver.url, 'harbor');
    const image = smallImage();
    const clients = Array.from({ length: ctx.scale.webhookBurstClients }, () => new RegistryClient(berth, agent));
    for (const blob of image.blobs) await clients[0]!.pushMonolithic(REPOSITORY, blob.bytes, blob.digest);
    const total = ctx.scale.webhookBurst;
    const tags = Array.from({ length: total }, (_, i) => `kill-${nonce}-${i}`);
    const acknowledged: string[] = [];
    let retried = 0;
    let failed = 0;
    let killed: Promise<string> | undefined;
    const started = performance.now();
    let killedAt = NaN;
    await runCount(clients.length, total, async (i, worker) => {
      for (let attempt = 1; ; attempt++) {
        try {
          await clients[worker]!.putManifest(REPOSITORY, tags[i]!, image.manifest);
          acknowledged.push(tags[i]!);
          break;
        } catch {
          if (attempt >= PUSH_ATTEMPTS) {
            failed++;
            break;
          }
          retried++;
          await sleep(200);
        }
      }
      if (!killed && acknowledged.length >= total * KILL_AT) {
        killedAt = performance.now();
        killed = killLeaseHolder(set.databaseUrl, pids, (index) => set.kill(index));
      }
    });
    const pushed = performance.now();
    const victim = killed ? await killed : 'nobody (the burst ended first)';
    ctx.log(`  webhook burst across a replica kill · ${acknowledged.length} tag pushes acknowledged in ${format((pushed - started) / 1000)} s (${retried} retried, ${failed} failed); killed ${victim}; waiting for the deliveries`);
    let last = -1;
    let lastChange = performance.now();
    for (;;) {
      const now = acknowledged.reduce((n, t) => n + (receiver.first.has(t) ? 1 : 0), 0);
      if (now === acknowledged.length) break;
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > STALL_MS) break;
      await sleep(250);
    }
    const arrivals = acknowledged.flatMap((t) => (receiver.first.has(t) ? [receiver.first.get(t)!] : [])).sort((a, b) => a - b);
    const lost = acknowledged.length - arrivals.length;
    const duplicates = acknowledged.reduce((n, t) => n + Math.max(0, (receiver.counts.get(t) ?? 0) - 1), 0);
    let gap = 0;
    for (let k = 1; k < arrivals.length; k++) gap = Math.max(gap, arrivals[k]! - arrivals[k - 1]!);
    const seconds = arrivals.length ? (arrivals.at(-1)! - started) / 1000 : NaN;
    const note = `2 replicas on PostgreSQL + S3 behind nginx, jobs.lease ${JOBS_LEASE}; ${acknowledged.length} of ${total} tag pushes acknowledged at ${format(acknowledged.length / ((pushed - started) / 1000))} /s (${retried} retried, ${failed} failed), killed ${victim} ${format((killedAt - started) / 1000)} s in; delivered ${arrivals.length}, lost ${lost}, duplicates ${duplicates}; longest pause between deliveries ${format(gap / 1000)} s; last delivery ${format(((arrivals.at(-1) ?? NaN) - pushed) / 1000)} s after the last push`;
    ctx.log(`  webhook burst across a replica kill · ${note}`);
    recordSamples(ctx, { key: 'webhook-kill-burst', label: `webhook burst across a replica kill: ${total} events, first push → last delivery`, unit: 'events/s', better: 'higher' }, 'berth', [{ value: arrivals.length ? arrivals.length / seconds : 0 }], note);
    recordSamples(ctx, { key: 'webhook-kill-lost', label: 'webhook burst across a replica kill: acknowledged pushes never delivered', unit: 'events', better: 'lower' }, 'berth', [{ value: lost }], note);
    if (!killed) throw new Error('the burst ended before a replica was killed');
  } finally {
    api?.close();
    agent.destroy();
    await receiver.close();
    await processes.stopAll();
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * SIGKILLs the replica that holds the lease `events:webhooks` (read from the database; its owner
 * name carries the pid), or the first one when no replica holds it yet. Resolves with which.
 */
async function killLeaseHolder(databaseUrl: string, pids: readonly number[], kill: (index: number) => Promise<void>): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let owner = '';
  try {
    const result = await client.query<{ owner: string }>('SELECT owner FROM leases WHERE key = $1', ['events:webhooks']);
    owner = result.rows[0]?.owner ?? '';
  } finally {
    await client.end();
  }
  const held = pids.findIndex((pid) => owner.includes(`-${pid}-`));
  const index = held >= 0 ? held : 0;
  await kill(index);
  return `replica ${index + 1} (pid ${pids[index]}${held >= 0 ? ', the lease holder' : ', no lease holder found'})`;
}
