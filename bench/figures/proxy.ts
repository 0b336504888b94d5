// Issue 15's figures: the proxy cache against CNCF Distribution's proxy mode, both in front of the
// same upstream Distribution. Cached pulls of a multi-layer image (also against the same image
// pushed straight into Berth), the first pull of one large layer (against pulling it straight from
// the upstream), and how many requests a cached tag pull sends the upstream.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, imageConfig, MANIFEST_ACCEPT, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, RegistryClient, sha256 } from '../client.ts';
import { StreamedBlob } from '../content.ts';
import { fetchLarge, keepAliveAgent } from '../http.ts';
import { syncedWriteLimit } from '../machine.ts';
import { format, recordSamples, runEach, timed, type FigureContext, type FigureSpec, type Sample } from '../measure.ts';
import type { BenchServer, RegistryName } from '../servers.ts';
import {
  addEndpoint,
  addProject,
  AdminApi,
  CountingPassThrough,
  describeRequests,
  pullBenchImage,
  pushBenchImage,
  randomImage,
  type BenchImage,
  type SeenRequest,
  startDistributionProxy,
} from './proxy-setup.ts';

const MB = 1e6;
const MiB = 1 << 20;
/** The image of figures 1 and 3 in the upstream, and the tag it is pulled by. */
const IMAGE_REPO = 'bench/image';
const IMAGE_TAG = 'v1';
/** Figure 2's repository in the upstream (a new tag and layer per round). */
const BIG_REPO = 'bench/big';
/** Freshness of the `fresh` project of figure 3: the whole figure runs inside it. */
const LONG_FRESHNESS = 3600;
/** Freshness of the `stale` project of figure 3, and how long each pull waits to be past it. */
const SHORT_FRESHNESS = 1;
const STALE_WAIT_MS = 1_600;
/** A pause after each first pull: the proxies finish storing (and fsyncing) the layer before the next one is timed. */
const SETTLE_MS = 2_000;

/** The registries of the proxy figures. */
interface ProxySetup {
  readonly upstream: BenchServer;
  readonly distProxy: BenchServer;
  readonly berth: BenchServer;
  readonly api: AdminApi;
  readonly image: BenchImage;
}

/** One way of pulling: which registry process serves it and under which repository name. */
interface Source {
  readonly key: string;
  readonly registry: RegistryName;
  readonly name: string;
  readonly server: BenchServer;
  readonly repository: string;
}

/**
 * `proxy`: starts the upstream (a Distribution holding the image), Distribution's proxy mode and a
 * Berth whose project `cache` is a proxy cache of the upstream and whose project `direct` holds the
 * same image pushed into it; then figures 1–3. A failed figure does not stop the others.
 */
export async function proxyCache(ctx: FigureContext): Promise<void> {
  const upstream = await ctx.launch.distribution('proxy-upstream');
  const distProxy = await startDistributionProxy(ctx, 'proxy-distribution', upstream.base);
  const berth = await ctx.launch.berth('proxy-berth');
  const api = new AdminApi(berth);
  const { scale } = ctx;
  const image = randomImage(scale.proxyLayers, scale.proxyLayerBytes);
  ctx.log(`  upstream Distribution ${upstream.base} (pid ${upstream.pid}), Distribution proxy ${distProxy.base} (pid ${distProxy.pid}), Berth ${berth.base} (pid ${berth.pid})`);
  await addEndpoint(api, 'upstream', upstream.base);
  await addProject(api, 'cache', { registry: 'upstream' });
  await addProject(api, 'direct');
  await pushBenchImage(upstream, IMAGE_REPO, IMAGE_TAG, image);
  // Through the proxy first, so that its cache is filled from the upstream (then the push into
  // `direct` finds the blobs stored and links them, as pushing a layer Berth holds does).
  const filler = new RegistryClient(berth, keepAliveAgent(1));
  await pullBenchImage(filler, `cache/${IMAGE_REPO}`, IMAGE_TAG, image);
  filler.agent.destroy();
  await pushBenchImage(berth, `direct/${IMAGE_REPO}`, IMAGE_TAG, image);
  const setup: ProxySetup = { upstream, distProxy, berth, api, image };
  try {
    await runEach(ctx, setup, [
      ['cached pull', cachedPulls],
      ['first pull', firstPulls],
      ['upstream requests', upstreamRequests],
    ]);
  } finally {
    api.close();
  }
}

/** `round` for each source, `rounds` times, the first source changing each round; returns the samples by source. */
async function rotate(ctx: FigureContext, sources: readonly Source[], rounds: number, round: (source: Source) => Promise<Sample>, spec: FigureSpec): Promise<Map<Source, Sample[]>> {
  const samples = new Map<Source, Sample[]>(sources.map((s) => [s, []]));
  for (let i = 0; i < rounds; i++) {
    const order = sources.map((_, k) => sources[(k + i) % sources.length]!);
    for (const source of order) {
      const sample = await round(source);
      samples.get(source)!.push(sample);
      ctx.log(`  ${spec.label} · ${source.name} · round ${i + 1}: ${format(sample.value)} ${spec.unit}${sample.usage ? ` (server CPU ${Math.round(sample.usage.serverCpu * 100)}%, client CPU ${Math.round(sample.usage.clientCpu * 100)}%)` : ''}`);
    }
  }
  return samples;
}

/**
 * Figure 1: `proxyClients` clients each pull the image `proxyRepeats` times at once (manifest by
 * tag, then the blobs three at a time), after one pull that fills each proxy's cache and one untimed
 * round each; MB/s over the round. Berth's proxy cache and Distribution's proxy, then for reference
 * the same image pushed into Berth (`direct/…`) and pulled straight from the upstream.
 */
async function cachedPulls(ctx: FigureContext, setup: ProxySetup): Promise<void> {
  const { scale } = ctx;
  const { upstream, distProxy, berth, image } = setup;
  const sources: Source[] = [
    { key: 'proxy-cached-pull', registry: 'berth', name: 'Berth proxy cache', server: berth, repository: `cache/${IMAGE_REPO}` },
    { key: 'proxy-cached-pull', registry: 'distribution', name: 'Distribution proxy', server: distProxy, repository: IMAGE_REPO },
    { key: 'proxy-direct-pull', registry: 'berth', name: 'Berth, pushed into it', server: berth, repository: `direct/${IMAGE_REPO}` },
    { key: 'proxy-direct-pull', registry: 'distribution', name: 'upstream Distribution', server: upstream, repository: IMAGE_REPO },
  ];
  const mib = format((scale.proxyLayers * scale.proxyLayerBytes) / MiB);
  const spec = (key: string): FigureSpec => ({
    key,
    label: `${key === 'proxy-cached-pull' ? 'cached pull through the proxy' : 'pull of the image stored in the registry'}, ${scale.proxyLayers} × ${format(scale.proxyLayerBytes / MiB)} MiB layers (${mib} MiB), ${scale.proxyClients} clients × ${scale.proxyRepeats}`,
    unit: 'MB/s',
    better: 'higher',
  });
  const round = async (source: Source): Promise<Sample> => {
    const agent = keepAliveAgent(scale.proxyClients);
    const clients = Array.from({ length: scale.proxyClients }, () => new RegistryClient(source.server, agent));
    const { result: bytes, usage } = await timed(source.server.pid, async () => {
      const counts = await Promise.all(
        clients.map(async (client) => {
          let n = 0;
          for (let r = 0; r < scale.proxyRepeats; r++) n += await pullBenchImage(client, source.repository, IMAGE_TAG, image);
          return n;
        }),
      );
      return counts.reduce((a, b) => a + b, 0);
    });
    agent.destroy();
    return { value: bytes / MB / usage.seconds, usage };
  };
  // The first pull through each proxy fills its cache; then one untimed round each (a fresh Node process compiles its hot paths).
  for (const source of sources) {
    const client = new RegistryClient(source.server, keepAliveAgent(1));
    await pullBenchImage(client, source.repository, IMAGE_TAG, image);
    client.agent.destroy();
  }
  for (const source of sources) ctx.log(`  cached pull · ${source.name} · warm-up (not counted): ${format((await round(source)).value)} MB/s`);
  const samples = await rotate(ctx, sources, scale.rounds, round, spec('proxy-cached-pull'));
  for (const source of sources) recordSamples(ctx, spec(source.key), source.registry, samples.get(source)!, source.name);
  // Paired by round (the sources of a round ran back to back): this machine's speed drifts over a
  // run by more than the differences measured, the ratio of neighbours much less.
  const [berthProxy, distributionProxy, berthDirect] = sources.map((s) => samples.get(s)!);
  const paired = (a: Sample[], b: Sample[]) => a.map((x, i) => ({ value: x.value / b[i]!.value }));
  const pairedSpec = (key: string, against: string): FigureSpec => ({ key, label: `cached pull through Berth's proxy ÷ ${against}, paired by round`, unit: '×', better: 'higher' });
  recordSamples(ctx, pairedSpec('proxy-cached-ratio-distribution', "Distribution's proxy"), 'berth', paired(berthProxy!, distributionProxy!));
  recordSamples(ctx, pairedSpec('proxy-cached-ratio-direct', 'Berth direct'), 'berth', paired(berthProxy!, berthDirect!));
}

/**
 * Figure 2: each round pushes a new layer of `proxyFirstBytes` (an 8 MiB random block repeated,
 * with a unique tail) and a manifest into the upstream; then, in turn, Berth's proxy cache,
 * Distribution's proxy and the upstream itself serve it for the first time: the manifest by tag,
 * then the layer, whose GET is timed (MB/s) with its time to the first body byte. After each round
 * the same bytes are written and fsynced into the storage directory (the proxies must store them).
 */
async function firstPulls(ctx: FigureContext, setup: ProxySetup): Promise<void> {
  const { scale } = ctx;
  const { upstream, distProxy, berth } = setup;
  const sources: Source[] = [
    { key: 'proxy-first-pull', registry: 'berth', name: 'Berth proxy cache', server: berth, repository: `cache/${BIG_REPO}` },
    { key: 'proxy-first-pull', registry: 'distribution', name: 'Distribution proxy', server: distProxy, repository: BIG_REPO },
    { key: 'proxy-first-pull-upstream', registry: 'distribution', name: 'upstream Distribution', server: upstream, repository: BIG_REPO },
  ];
  const size = scale.proxyFirstBytes;
  const what = size >= 1 << 30 ? `${format(size / (1 << 30))} GiB` : `${format(size / MiB)} MiB`;
  const throughput = (key: string): FigureSpec => ({ key, label: `first (uncached) pull of a ${what} layer`, unit: 'MB/s', better: 'higher' });
  const ttfbSpec = (key: string): FigureSpec => ({ key: `${key}-ttfb`, label: `time to the first byte of that layer`, unit: 's', better: 'lower' });
  const blob = new StreamedBlob(size);
  const ttfb = new Map<Source, Sample[]>(sources.map((s) => [s, []]));
  const machine: Sample[] = [];
  let tag = '';
  const round = async (source: Source): Promise<Sample> => {
    const client = new RegistryClient(source.server, keepAliveAgent(1));
    const manifest = await client.call(source.repository, false, `/v2/${source.repository}/manifests/${tag}`, { method: 'GET', headers: { Accept: MANIFEST_ACCEPT }, keepBody: true });
    expect(manifest, 200, `GET manifest ${source.repository}:${tag}`);
    const layer = (JSON.parse(manifest.body!.toString('utf8')) as { layers: { digest: string }[] }).layers[0]!.digest;
    client.agent.destroy();
    const { result: reply, usage } = await timed(source.server.pid, () => fetchLarge(new URL(`/v2/${source.repository}/blobs/${layer}`, source.server.base), {}));
    expect(reply, 200, `GET layer of ${source.repository}:${tag}`);
    if (reply.bytes !== size) throw new Error(`${source.name}: ${reply.bytes} of ${size} bytes`);
    ttfb.get(source)!.push({ value: reply.firstByteSeconds ?? NaN });
    await sleep(SETTLE_MS);
    return { value: size / MB / usage.seconds, usage };
  };
  const pushRound = async (): Promise<void> => {
    const { body, digest } = blob.next();
    const config = imageConfig(randomBytes(8).toString('hex'));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: OCI_LAYER, digest, size }],
      }),
    );
    tag = `first-${randomBytes(4).toString('hex')}`;
    const client = new RegistryClient(upstream, keepAliveAgent(1));
    await client.pushMonolithic(BIG_REPO, config, sha256(config));
    await client.pushMonolithic(BIG_REPO, body, digest);
    await client.putManifest(BIG_REPO, tag, manifest);
    client.agent.destroy();
  };
  const spec = throughput('proxy-first-pull');
  const samples = new Map<Source, Sample[]>(sources.map((s) => [s, []]));
  for (let i = 0; i < scale.proxyFirstRounds; i++) {
    await pushRound();
    const one = await rotate(ctx, sources.map((_, k) => sources[(k + i) % sources.length]!), 1, round, spec);
    for (const [source, list] of one) {
      samples.get(source)!.push(...list);
      ctx.log(`    time to first byte · ${source.name}: ${format(ttfb.get(source)!.at(-1)!.value * 1000)} ms`);
    }
    machine.push({ value: syncedWriteLimit(ctx.storageRoot, size, 1).mbps });
    ctx.log(`  ${spec.label} · same bytes written + fsync · round ${i + 1}: ${format(machine.at(-1)!.value)} MB/s`);
  }
  for (const source of sources) {
    recordSamples(ctx, throughput(source.key), source.registry, samples.get(source)!, source.name);
    recordSamples(ctx, ttfbSpec(source.key), source.registry, ttfb.get(source)!, source.name);
  }
  const [viaBerth, , straight] = sources.map((s) => samples.get(s)!);
  recordSamples(ctx, { key: 'proxy-first-ratio-upstream', label: "first pull through Berth's proxy ÷ straight from the upstream, paired by round", unit: '×', better: 'higher' }, 'berth', viaBerth!.map((x, i) => ({ value: x.value / straight![i]!.value })));
  recordSamples(ctx, throughput('proxy-first-pull'), 'machine', machine, `the layer's bytes written + fsync into the storage directory after each round (${ctx.storage})`);
}

/**
 * Figure 3: requests reaching the upstream per pull of a cached tag (manifest by tag, then every
 * blob), counted by a pass-through in front of it. Berth: project `fresh` (freshness
 * {@link LONG_FRESHNESS} s: inside the window) and `stale` (freshness {@link SHORT_FRESHNESS} s, each
 * pull {@link STALE_WAIT_MS} ms after the last); Distribution's proxy (a second instance, in front
 * of the pass-through) in both conditions, though it has no such window.
 */
async function upstreamRequests(ctx: FigureContext, setup: ProxySetup): Promise<void> {
  const { scale } = ctx;
  const { upstream, berth, api, image } = setup;
  const counter = await CountingPassThrough.start(upstream.base);
  try {
    const distProxy = await startDistributionProxy(ctx, 'proxy-distribution-counted', counter.base);
    await addEndpoint(api, 'counted', counter.base);
    await addProject(api, 'fresh', { registry: 'counted', freshness: LONG_FRESHNESS });
    await addProject(api, 'stale', { registry: 'counted', freshness: SHORT_FRESHNESS });
    const pull = async (server: BenchServer, repository: string): Promise<SeenRequest[]> => {
      const client = new RegistryClient(server, keepAliveAgent(1));
      counter.take();
      await pullBenchImage(client, repository, IMAGE_TAG, image);
      client.agent.destroy();
      return counter.take();
    };
    const cases = [
      { key: 'proxy-upstream-fresh', registry: 'berth' as const, server: berth, repository: `fresh/${IMAGE_REPO}`, waitMs: 0, label: 'inside the freshness window' },
      { key: 'proxy-upstream-stale', registry: 'berth' as const, server: berth, repository: `stale/${IMAGE_REPO}`, waitMs: STALE_WAIT_MS, label: `past it (freshness ${SHORT_FRESHNESS} s)` },
      { key: 'proxy-upstream-fresh', registry: 'distribution' as const, server: distProxy, repository: IMAGE_REPO, waitMs: 0, label: 'inside the freshness window' },
      { key: 'proxy-upstream-stale', registry: 'distribution' as const, server: distProxy, repository: IMAGE_REPO, waitMs: STALE_WAIT_MS, label: `past it (freshness ${SHORT_FRESHNESS} s)` },
    ];
    // Fill each cache (what the first pull sends the upstream is logged, not counted).
    for (const c of cases) ctx.log(`  upstream requests · ${c.registry} ${c.repository} · first pull (fills the cache): ${describeRequests(await pull(c.server, c.repository))}`);
    for (const c of cases) {
      const samples: Sample[] = [];
      const seen: SeenRequest[] = [];
      for (let i = 0; i < scale.proxyTagPulls; i++) {
        if (c.waitMs) await sleep(c.waitMs);
        const requests = await pull(c.server, c.repository);
        samples.push({ value: requests.length });
        seen.push(...requests);
      }
      const note = `${scale.proxyTagPulls} pulls; at the upstream: ${describeRequests(seen)}`;
      ctx.log(`  upstream requests per cached tag pull, ${c.label} · ${c.registry}: ${samples.map((s) => s.value).join(', ')} (${note})`);
      recordSamples(ctx, { key: c.key, label: `upstream requests per cached tag pull, ${c.label}`, unit: 'requests', better: 'lower' }, c.registry, samples, note);
    }
  } finally {
    await counter.close();
  }
}
