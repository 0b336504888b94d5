// Figures 1, 2, 3, 5 and 8: large blob pushes (monolithic and chunked), pulls, many small pushes,
// and resident memory while a very large blob streams in.
import { randomBytes } from 'node:crypto';
import { RegistryClient, sha256 } from '../client.ts';
import { StreamedBlob, UniqueBlob } from '../content.ts';
import { keepAliveAgent } from '../http.ts';
import { alternate, format, recordSamples, runCount, timed, type FigureContext, type Sample } from '../measure.ts';
import { syncedWriteLimit } from '../machine.ts';
import { memory, RssSampler, type BenchServer } from '../servers.ts';

const MB = 1e6;
const MiB = 1 << 20;

/** The big in-memory blob, made once per run (256 MiB of random bytes take a while to generate). */
let bigBlob: UniqueBlob | undefined;
function big(size: number): UniqueBlob {
  if (bigBlob?.bytes.length !== size) bigBlob = new UniqueBlob(size);
  return bigBlob;
}

/** Digests pushed by figure 1, per registry, for the pull figure. */
function pushedDigests(ctx: FigureContext, server: BenchServer): string[] {
  const key = `pushed:${server.name}`;
  let list = ctx.state.get(key) as string[] | undefined;
  if (!list) ctx.state.set(key, (list = []));
  return list;
}

/**
 * The storage's synced write of `bytes` (8 MiB writes, then fsync) into the phase's storage
 * directory, run after each push round: on a shared virtual disk the rate drifts by a factor of
 * two within minutes, so a push is judged against the disk as it was in the same moments.
 */
function syncedWriteProbe(ctx: FigureContext, bytes: number): () => Promise<Sample> {
  return async () => ({ value: syncedWriteLimit(ctx.storageRoot, bytes, 1).mbps });
}

/** Figure 1: POST a session, PUT the whole blob; MB/s. */
export async function pushMonolithic(ctx: FigureContext): Promise<void> {
  const blob = big(ctx.scale.blobBytes);
  const mib = ctx.scale.blobBytes / MiB;
  await alternate(ctx, { key: 'push-monolithic', label: `monolithic push ${mib} MiB (POST+PUT)`, unit: 'MB/s', better: 'higher' }, ctx.scale.rounds, async (server) => {
    const client = new RegistryClient(server, keepAliveAgent(1));
    const digest = blob.next();
    await client.authorize('bench/push', true);
    const { usage } = await timed(server.pid, () => client.pushMonolithic('bench/push', blob.bytes, digest));
    pushedDigests(ctx, server).push(digest);
    client.agent.destroy();
    return { value: blob.bytes.length / MB / usage.seconds, usage };
  }, { machine: syncedWriteProbe(ctx, blob.bytes.length) });
}

/** Figure 2: POST, PATCH chunks of 8 MiB with Content-Range, PUT ?digest=; MB/s. */
export async function pushChunked(ctx: FigureContext): Promise<void> {
  const blob = big(ctx.scale.blobBytes);
  const label = `chunked push ${ctx.scale.blobBytes / MiB} MiB (${ctx.scale.chunkBytes / MiB} MiB PATCHes)`;
  await alternate(ctx, { key: 'push-chunked', label, unit: 'MB/s', better: 'higher' }, ctx.scale.rounds, async (server) => {
    const client = new RegistryClient(server, keepAliveAgent(1));
    const digest = blob.next();
    await client.authorize('bench/chunked', true);
    const { usage } = await timed(server.pid, () => client.pushChunked('bench/chunked', blob.bytes, ctx.scale.chunkBytes, digest));
    client.agent.destroy();
    return { value: blob.bytes.length / MB / usage.seconds, usage };
  }, { machine: syncedWriteProbe(ctx, blob.bytes.length) });
}

/** Figure 3: GET the blobs figure 1 pushed (pushing one first if it did not run); MB/s. */
export async function pull(ctx: FigureContext): Promise<void> {
  const blob = big(ctx.scale.blobBytes);
  for (const server of ctx.servers) {
    if (pushedDigests(ctx, server).length > 0) continue;
    const client = new RegistryClient(server, keepAliveAgent(1));
    const digest = blob.next();
    await client.pushMonolithic('bench/push', blob.bytes, digest);
    pushedDigests(ctx, server).push(digest);
    client.agent.destroy();
  }
  const label = `blob pull ${ctx.scale.blobBytes / MiB} MiB`;
  await alternate(ctx, { key: 'pull', label, unit: 'MB/s', better: 'higher' }, ctx.scale.rounds, async (server, round) => {
    const digests = pushedDigests(ctx, server);
    const digest = digests[round % digests.length]!;
    const client = new RegistryClient(server, keepAliveAgent(1));
    await client.authorize('bench/push', false);
    const { result: bytes, usage } = await timed(server.pid, () => client.pullBlob('bench/push', digest));
    client.agent.destroy();
    if (bytes !== blob.bytes.length) throw new Error(`${server.name}: pulled ${bytes} bytes of ${blob.bytes.length}`);
    return { value: bytes / MB / usage.seconds, usage };
  });
}

/** Untimed rounds first: Berth's rate kept rising over the first ~1,500 pushes of a fresh process (JIT). */
const SMALL_WARMUP_ROUNDS = 5;
/**
 * On S3 (moto) one: moto bounds the rate there (each registry used under half a core), and moto
 * slows as its buckets fill (it scans a whole bucket for each list): over five warm-up rounds and
 * two timed ones both registries' rates fell by a quarter to a third, so the warm-up cost minutes
 * and slowed the rounds it preceded.
 */
const SMALL_WARMUP_ROUNDS_S3 = 1;

/** Figure 5: many small blobs (POST+PUT each) from concurrent clients, each a fresh client with its own credentials; blobs/s. */
export async function smallPushes(ctx: FigureContext): Promise<void> {
  const { smallBlobs: count, smallBytes: size, smallClients: clients } = ctx.scale;
  const label = `${count} × ${size / 1024} KiB blob pushes, ${clients} clients`;
  await alternate(ctx, { key: 'small-pushes', label, unit: 'blobs/s', better: 'higher' }, ctx.scale.smallRounds, async (server, round) => {
    const blobs = Array.from({ length: count }, () => randomBytes(size));
    const digests = blobs.map(sha256);
    const agent = keepAliveAgent(clients);
    const workers = Array.from({ length: clients }, () => new RegistryClient(server, agent));
    const repository = `bench/small-${round < 0 ? `warm${-round}` : round}`;
    const { usage } = await timed(server.pid, () => runCount(clients, count, (i, w) => workers[w]!.pushMonolithic(repository, blobs[i]!, digests[i]!)));
    agent.destroy();
    return { value: count / usage.seconds, usage };
  }, { warmup: ctx.backend === 'postgres-s3' ? SMALL_WARMUP_ROUNDS_S3 : SMALL_WARMUP_ROUNDS });
}

/**
 * Figure 8: VmRSS sampled every 100 ms while one very large blob streams in (monolithic PUT from
 * a generator, so the client holds 8 MiB). Peak, and whether it stayed flat: the highest sample of
 * the last quarter of the upload within 32 MiB of the highest of the first quarter.
 */
export async function streamMemory(ctx: FigureContext): Promise<void> {
  const blob = new StreamedBlob(ctx.scale.streamBytes);
  const gib = format(ctx.scale.streamBytes / (1 << 30));
  for (const server of ctx.servers) {
    const { body, digest } = blob.next();
    const client = new RegistryClient(server, keepAliveAgent(1));
    await client.authorize('bench/stream', true);
    const before = memory(server.pid).rssMiB;
    const sampler = new RssSampler(server.pid, 100);
    const { usage } = await timed(server.pid, () => client.pushMonolithic('bench/stream', body, digest));
    const samples = sampler.stop();
    client.agent.destroy();
    const rss = samples.map((s) => s.rssMiB);
    const quarter = Math.max(1, Math.floor(rss.length / 4));
    const first = Math.max(...rss.slice(0, quarter));
    const last = Math.max(...rss.slice(-quarter));
    const peak = Math.max(...rss);
    const flat = last - first < 32;
    const note = `${flat ? 'flat' : 'GROWS'}: ${Math.round(before)} MiB before, ${Math.round(first)} MiB first quarter, ${Math.round(last)} MiB last quarter, ${rss.length} samples`;
    ctx.log(`  stream ${gib} GiB · ${server.name}: peak ${Math.round(peak)} MiB (${note}), ${format(ctx.scale.streamBytes / MB / usage.seconds)} MB/s`);
    recordSamples(ctx, { key: 'stream-rss', label: `peak RSS while a ${gib} GiB blob streams in`, unit: 'MiB', better: 'lower' }, server.name, [{ value: peak, usage }], note);
    recordSamples(ctx, { key: 'stream-push', label: `monolithic push ${gib} GiB (streamed)`, unit: 'MB/s', better: 'higher' }, server.name, [
      { value: ctx.scale.streamBytes / MB / usage.seconds, usage },
    ]);
  }
}

/** Each server's resident memory right after start, before any figure (the baseline of figure 8). */
export function startMemory(ctx: FigureContext): void {
  for (const server of ctx.servers) {
    recordSamples(ctx, { key: 'rss-start', label: 'RSS after start, idle', unit: 'MiB', better: 'lower' }, server.name, [{ value: memory(server.pid).rssMiB }]);
  }
}

/** Figure 8 (first half): each server's peak resident memory so far (VmHWM), read before the stream figure. */
export function peakMemory(ctx: FigureContext): void {
  for (const server of ctx.servers) {
    const { peakMiB } = memory(server.pid);
    recordSamples(ctx, { key: 'peak-rss', label: 'peak RSS over the figures above (VmHWM)', unit: 'MiB', better: 'lower' }, server.name, [{ value: peakMiB }]);
    ctx.log(`  peak RSS · ${server.name}: ${Math.round(peakMiB)} MiB`);
  }
}
