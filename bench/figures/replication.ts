// Issue 16's figures: Berth's push replication against `skopeo sync` of the same images from the
// same Berth, each into a fresh CNCF Distribution, in the same rounds; the second run with nothing
// changed; the lag of event-based replication; then webhook delivery (webhooks.ts).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../../test/support/run.ts';
import { RegistryClient } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { syncedWriteLimit } from '../machine.ts';
import { format, recordSamples, runEach, type FigureContext, type Sample } from '../measure.ts';
import { cpuSeconds, type BenchServer } from '../servers.ts';
import {
  childCpuSeconds,
  imageSet,
  type ImageSet,
  manifestDigestAt,
  POLL_MS,
  pushSet,
  ReplicationApi,
  SET_PROJECT,
  SkopeoSync,
  smallImage,
  verifySet,
  waitForManifest,
} from './replication-setup.ts';
import { webhookFigures } from './webhooks.ts';
import { webhookBurstAcrossKill } from './webhooks-replicas.ts';

const MB = 1e6;
const MiB = 1 << 20;
/** Clients pushing the set into Berth before the figures, and straight into Distribution for the reference. */
const PUSH_CLIENTS = 4;
/** The event figure's project, and how long a push may take to appear at the destination before the sample fails. */
const EVENT_PROJECT = 'bench-event';
const EVENT_TIMEOUT_MS = 60_000;

/** The Berth and set of the figures. */
export interface ReplicationSetup {
  readonly berth: BenchServer;
  readonly api: ReplicationApi;
  readonly set: ImageSet;
}

/** One way of moving the set into a fresh Distribution in a round. */
interface Mover {
  readonly key: 'berth' | 'skopeo' | 'direct';
  readonly name: string;
  /** Copies the set into `dest` (fresh); returns the seconds taken and the CPU seconds of the processes doing it. */
  copy(dest: BenchServer, round: number): Promise<{ seconds: number; cpu: number; note?: string }>;
  /** The same copy again with nothing changed; seconds. */
  again(dest: BenchServer, round: number): Promise<number>;
}

/**
 * `replication`: starts a Berth, pushes the set into it, then the figures — replication against
 * skopeo sync (with the no-change run), event-based replication lag, webhook delivery, and the
 * webhook burst across a replica kill (two replicas on PostgreSQL + S3 of its own). A failed figure
 * does not stop the others.
 */
export async function replicationFigures(ctx: FigureContext): Promise<void> {
  const berth = await ctx.launch.berth('replication-berth');
  const api = new ReplicationApi(berth);
  const set = imageSet(ctx.scale);
  ctx.log(`  Berth ${berth.base} (pid ${berth.pid}); set: ${set.images.length} images in ${set.repositories.length} repositories, ${format(set.uniqueBytes / MiB)} MiB unique layers + ${set.base.length} shared base layers (${ctx.scale.replBaseLayers.map((b) => format(b / MiB)).join(' + ')} MiB): ${format(set.bytes / MB)} MB to copy`);
  await api.project(SET_PROJECT);
  await pushSet(berth, set, PUSH_CLIENTS);
  const setup: ReplicationSetup = { berth, api, set };
  const figures = [
    ['replication vs skopeo sync', syncRounds],
    ['event-based replication lag', eventLag],
    ['webhook delivery', webhookFigures],
    ['webhook burst across a replica kill', webhookBurstAcrossKill],
  ] as const;
  try {
    await runEach(ctx, setup, figures);
  } finally {
    api.close();
  }
}

/** CPU seconds of the processes by pid now (summed). */
function cpuOf(pids: readonly number[]): number {
  return pids.reduce((n, pid) => n + cpuSeconds(pid), 0);
}

/**
 * Figures 1 and 2. Each round starts three fresh Distributions; Berth replicates the set into one
 * (a manual push rule, followed to its end), skopeo syncs it from the same Berth into another, and
 * the bench's client pushes it from memory into the third (the destination's own limit); the first
 * mover changes each round. Each destination is then checked to hold every tag at its digest, and
 * Berth and skopeo copy again with nothing changed.
 */
async function syncRounds(ctx: FigureContext, setup: ReplicationSetup): Promise<void> {
  const { berth, api, set } = setup;
  const secondNotes: string[] = [];
  const skopeo = await SkopeoSync.prepare(path.join(ctx.scratch, 'replication-skopeo'), [berth.password]);
  const movers: Mover[] = [
    {
      key: 'berth',
      name: 'Berth push replication',
      copy: async (dest, round) => {
        await api.endpoint(`dest-${round}`, dest.base);
        await api.pushRule(`sync-${round}`, `dest-${round}`, SET_PROJECT, 'manual');
        const before = cpuOf([berth.pid, dest.pid]);
        const result = await api.execute(`sync-${round}`);
        return { seconds: result.clientSeconds, cpu: cpuOf([berth.pid, dest.pid]) - before, note: `execution ${result.id}: its own ${format(result.seconds)} s; progress ${JSON.stringify(result.body['progress'] ?? {}).slice(0, 300)}` };
      },
      again: async (_dest, round) => {
        const result = await api.execute(`sync-${round}`);
        if (round === 0) secondNotes.push(`Berth's second run: its own ${format(result.seconds)} s; progress ${JSON.stringify(result.body['progress'] ?? {}).slice(0, 300)}`);
        return result.clientSeconds;
      },
    },
    {
      key: 'skopeo',
      name: 'skopeo sync',
      copy: async (dest) => {
        const before = cpuOf([berth.pid, dest.pid]) + childCpuSeconds();
        const started = performance.now();
        const calls = await skopeo.sync(berth, dest, set.repositories);
        const seconds = (performance.now() - started) / 1000;
        return { seconds, cpu: cpuOf([berth.pid, dest.pid]) + childCpuSeconds() - before, note: `${calls} invocations` };
      },
      again: async (dest) => {
        const started = performance.now();
        await skopeo.sync(berth, dest, set.repositories);
        return (performance.now() - started) / 1000;
      },
    },
    {
      key: 'direct',
      name: "the bench's client pushing the set from memory",
      copy: async (dest) => {
        const before = cpuOf([dest.pid]);
        const clientBefore = process.cpuUsage();
        const started = performance.now();
        await pushSet(dest, set, PUSH_CLIENTS);
        const seconds = (performance.now() - started) / 1000;
        const client = process.cpuUsage(clientBefore);
        return { seconds, cpu: cpuOf([dest.pid]) - before + (client.user + client.system) / 1e6 };
      },
      again: () => Promise.resolve(NaN),
    },
  ];
  const rate = new Map<string, Sample[]>(movers.map((m) => [m.key, []]));
  const cpu = new Map<string, Sample[]>(movers.map((m) => [m.key, []]));
  const second = new Map<string, Sample[]>(movers.map((m) => [m.key, []]));
  const share: Sample[] = [];
  const ratio: Sample[] = [];
  const machine: Sample[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  for (let round = 0; round < ctx.scale.rounds; round++) {
    const order = movers.map((_, k) => movers[(k + round) % movers.length]!);
    const dests = new Map<string, BenchServer>();
    const first = new Map<string, number>();
    try {
      for (const mover of order) dests.set(mover.key, await ctx.launch.distribution(`repl-${mover.key}-${round}`));
      for (const mover of order) {
        try {
          const dest = dests.get(mover.key)!;
          // The previous copy's dirty pages written back first, so no mover pays for the one before it.
          await run('sync', []);
          const result = await mover.copy(dest, round);
          await verifySet(dest, set, mover.name);
          first.set(mover.key, result.seconds);
          rate.get(mover.key)!.push({ value: set.bytes / MB / result.seconds });
          cpu.get(mover.key)!.push({ value: result.cpu / (set.bytes / 1e9) });
          ctx.log(`  replication of the set · ${mover.name} · round ${round + 1}: ${format(set.bytes / MB / result.seconds)} MB/s (${format(result.seconds)} s; ${format(result.cpu)} CPU-s of the processes involved${result.note ? `; ${result.note}` : ''})`);
          if (result.note && round === 0) notes.push(`${mover.name}: ${result.note}`);
        } catch (error) {
          failures.push(`${mover.name}, round ${round + 1}: ${(error as Error).message.split('\n')[0]}`);
          ctx.log(`  replication of the set · ${mover.name} · round ${round + 1} FAILED: ${(error as Error).message}`);
        }
      }
      for (const mover of movers.filter((m) => m.key !== 'direct' && first.has(m.key))) {
        try {
          const seconds = await mover.again(dests.get(mover.key)!, round);
          second.get(mover.key)!.push({ value: seconds });
          ctx.log(`  second run, nothing changed · ${mover.name} · round ${round + 1}: ${format(seconds)} s (${format((seconds / first.get(mover.key)!) * 100)} % of the first)`);
          if (mover.key === 'berth') share.push({ value: (seconds / first.get(mover.key)!) * 100 });
        } catch (error) {
          failures.push(`${mover.name} second run, round ${round + 1}: ${(error as Error).message.split('\n')[0]}`);
        }
      }
      if (first.has('berth') && first.has('skopeo')) ratio.push({ value: first.get('skopeo')! / first.get('berth')! });
      machine.push({ value: syncedWriteLimit(ctx.storageRoot, set.bytes, 1).mbps });
      ctx.log(`  the set's bytes written + fsync into the storage directory · round ${round + 1}: ${format(machine.at(-1)!.value)} MB/s`);
    } finally {
      // Three copies of the set per round: give the space back before the next.
      for (const dest of dests.values()) {
        await dest.stop();
        await rm(path.dirname(dest.dataDir), { recursive: true, force: true });
      }
    }
  }
  const what = `${set.images.length} images (${format(set.uniqueBytes / MiB)} MiB unique + ${set.base.length} shared base layers, ${format(set.bytes / MB)} MB) into a fresh Distribution`;
  const registry = { berth: 'berth', skopeo: 'skopeo', direct: 'distribution' } as const;
  for (const mover of movers) {
    if (rate.get(mover.key)!.length === 0) continue;
    const key = mover.key === 'direct' ? 'replication-sync-direct' : 'replication-sync';
    recordSamples(ctx, { key, label: `replicating ${what}`, unit: 'MB/s', better: 'higher' }, registry[mover.key], rate.get(mover.key)!, mover.name);
    recordSamples(ctx, { key: `${key}-cpu`, label: 'CPU-seconds per GB copied, every process involved (source Berth, mover, destination)', unit: 'CPU-s/GB', better: 'lower' }, registry[mover.key], cpu.get(mover.key)!, mover.name);
    if (second.get(mover.key)!.length) recordSamples(ctx, { key: 'replication-nochange', label: 'second run with nothing changed', unit: 's', better: 'lower' }, registry[mover.key], second.get(mover.key)!, mover.name);
  }
  if (ratio.length) recordSamples(ctx, { key: 'replication-sync-ratio', label: 'Berth replication ÷ skopeo sync throughput, paired by round', unit: '×', better: 'higher' }, 'berth', ratio, notes.join(' | '));
  if (share.length) recordSamples(ctx, { key: 'replication-nochange-share', label: "Berth's second run with nothing changed, share of its first run's time", unit: '%', better: 'lower' }, 'berth', share, secondNotes.join(' | '));
  recordSamples(ctx, { key: 'replication-sync', label: `replicating ${what}`, unit: 'MB/s', better: 'higher' }, 'machine', machine, `the set's bytes written + fsync into the storage directory (${ctx.storage})`);
  if (failures.length) throw new Error(failures.join('; '));
}

/**
 * Figure 3: a push rule triggered by events into a fresh Distribution; small images pushed to
 * Berth one at a time, each timed from the manifest PUT's acknowledgement to the destination
 * answering its HEAD (polled every {@link POLL_MS} ms). The destination's HEAD round trip is
 * measured beside it (the floor of what polling can see).
 */
async function eventLag(ctx: FigureContext, setup: ReplicationSetup): Promise<void> {
  const { berth, api } = setup;
  const dest = await ctx.launch.distribution('repl-event');
  await api.project(EVENT_PROJECT);
  await api.endpoint('event-dest', dest.base);
  await api.pushRule('on-push', 'event-dest', EVENT_PROJECT, 'event');
  const agent = keepAliveAgent(2);
  const source = new RegistryClient(berth, agent);
  const target = new RegistryClient(dest, agent);
  const repository = `${EVENT_PROJECT}/app`;
  const push = async (tag: string): Promise<number> => {
    const image = smallImage();
    for (const blob of image.blobs) await source.pushMonolithic(repository, blob.bytes, blob.digest);
    await source.putManifest(repository, tag, image.manifest);
    return performance.now();
  };
  try {
    // Untimed: the first replication creates the repository at the destination.
    const warm = await push('warm-up');
    ctx.log(`  event-based replication · warm-up (not counted): ${format((await waitForManifest(target, repository, 'warm-up', EVENT_TIMEOUT_MS)) - warm)} ms`);
    const lags: Sample[] = [];
    const heads: number[] = [];
    for (let i = 0; i < ctx.scale.replEventSamples; i++) {
      // Apart by a varying pause, so pushes meet the outbox consumer at any point of its poll.
      await sleep(300 + Math.random() * 400);
      const tag = `e${i}`;
      const acked = await push(tag);
      const seen = await waitForManifest(target, repository, tag, EVENT_TIMEOUT_MS);
      lags.push({ value: (seen - acked) / 1000 });
      const headStarted = performance.now();
      await manifestDigestAt(target, repository, tag);
      heads.push(performance.now() - headStarted);
      ctx.log(`  event-based replication lag · push ${i + 1}: ${format(seen - acked)} ms`);
    }
    const sortedHeads = [...heads].sort((a, b) => a - b);
    recordSamples(ctx, { key: 'replication-event-lag', label: 'event-based replication: push acknowledged → manifest at the destination', unit: 's', better: 'lower' }, 'berth', lags, `${lags.length} pushes, destination polled every ${POLL_MS} ms; its HEAD round trip ${format(sortedHeads[Math.floor(sortedHeads.length / 2)]!)} ms (median)`);
  } finally {
    agent.destroy();
  }
}
