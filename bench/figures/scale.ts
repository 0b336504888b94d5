// Figure 9: scale. A `/_catalog` page of 10,000 repositories and a tags list of 10,000 tags on
// both registries (seeded through the API: one small manifest per repository, mounted config),
// and Berth's image pushes into one project versus spread over 100 (quotas set in quotas.ts).
import { randomBytes } from 'node:crypto';
import { imageConfig, imageManifest, RegistryClient, sha256 } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { alternate, format, recordSamples, runCount, timed, type FigureContext, type Sample } from '../measure.ts';
import type { BenchServer } from '../servers.ts';
import { chargedBytes, enableProjectQuotas } from './quotas.ts';

const BASE = 'scale/base';
const TAGS = 'scale/tags';

function pad(n: number, width = 5): string {
  return String(n).padStart(width, '0');
}

/**
 * Seeds `repos` repositories (mount the config from scale/base, PUT a config-only manifest as `v1`)
 * and `tags` tags on scale/tags, with `seedClients` concurrent clients; records both rates.
 */
async function seed(ctx: FigureContext, server: BenchServer): Promise<void> {
  const { catalogRepos: repos, tagCount: tags, seedClients: n } = ctx.scale;
  const agent = keepAliveAgent(n);
  const clients = Array.from({ length: n }, () => new RegistryClient(server, agent));
  const config = imageConfig(`scale-${randomBytes(4).toString('hex')}`);
  const digest = sha256(config);
  const manifest = imageManifest(config, []);
  await clients[0]!.pushMonolithic(BASE, config, digest);
  const seeded = await timed(server.pid, () =>
    runCount(n, repos, async (i, w) => {
      const repository = `scale/repo-${pad(i)}`;
      await clients[w]!.mount(repository, digest, BASE);
      await clients[w]!.putManifest(repository, 'v1', manifest);
    }),
  );
  await clients[0]!.mount(TAGS, digest, BASE);
  const tagged = await timed(server.pid, () => runCount(n, tags, (i, w) => clients[w]!.putManifest(TAGS, `t-${pad(i)}`, manifest)));
  agent.destroy();
  const repoRate = repos / seeded.usage.seconds;
  const tagRate = tags / tagged.usage.seconds;
  ctx.log(`  seeded ${server.name}: ${format(repoRate)} repositories/s (mount + manifest PUT), ${format(tagRate)} tags/s`);
  recordSamples(ctx, { key: 'seed-repos', label: `seed: new repository (mount + manifest PUT), ${n} clients`, unit: 'repos/s', better: 'higher' }, server.name, [
    { value: repoRate, usage: seeded.usage },
  ]);
  recordSamples(ctx, { key: 'seed-tags', label: `seed: tag PUT (same manifest), ${n} clients`, unit: 'tags/s', better: 'higher' }, server.name, [
    { value: tagRate, usage: tagged.usage },
  ]);
}

/** Requests timed back to back per round for a listing figure: one alone is a few milliseconds, near the timer's and client's noise. */
const LISTING_REQUESTS = 10;

/** Figure 9a: `/_catalog?n=10000` pages and `tags/list?n=10000`, one client; milliseconds per request (mean of LISTING_REQUESTS per round). */
export async function listings(ctx: FigureContext): Promise<void> {
  // Distribution on S3 walks the repository tree with one ListObjects per directory, and moto
  // scans every key of the bucket for each: a catalog of 1,000 repositories took 11 s and its time
  // grows with the square of the count. That is moto's cost, not the protocol's; it is left out.
  const servers = ctx.servers.filter((s) => s.name !== 'distribution' || ctx.backend === 'sqlite-fs');
  if (servers.length < ctx.servers.length) ctx.log('  Distribution on S3 (moto) left out: its catalog walk lists every directory, and moto scans the whole bucket per list');
  for (const server of servers) await seed(ctx, server);
  const { catalogRepos: repos, tagCount: tags, listingRounds: rounds } = ctx.scale;
  const listing = (path: string, field: string, expected: number, repository: string | undefined) => async (server: BenchServer): Promise<Sample> => {
    const client = new RegistryClient(server, keepAliveAgent(1));
    // Checked once, untimed; this also warms the connection (and any cache a registry keeps).
    const checked = await client.listing(path, repository);
    const count = (checked.json[field] as unknown[] | undefined)?.length ?? 0;
    if (count !== expected) throw new Error(`${server.name}: ${path} listed ${count} entries, expected ${expected}`);
    // Timed: the client only counts bytes, so parsing 10,000 entries in JSON is not part of the figure.
    const { result: bytes, usage } = await timed(server.pid, async () => {
      let total = 0;
      for (let i = 0; i < LISTING_REQUESTS; i++) total += await client.listingBytes(path, repository);
      return total;
    });
    client.agent.destroy();
    if (bytes !== checked.bytes * LISTING_REQUESTS) throw new Error(`${server.name}: ${path} answered ${bytes} bytes over ${LISTING_REQUESTS} requests, expected ${checked.bytes} each`);
    return { value: (usage.seconds * 1000) / LISTING_REQUESTS, usage };
  };
  await alternate(ctx, { key: 'catalog', label: `/_catalog page of ${repos.toLocaleString('en-US')} repositories`, unit: 'ms', better: 'lower' }, rounds, listing(`/v2/_catalog?n=${repos}`, 'repositories', repos, undefined), { servers });
  await alternate(ctx, { key: 'tags-list', label: `tags list of ${tags.toLocaleString('en-US')} tags`, unit: 'ms', better: 'lower' }, rounds, listing(`/v2/${TAGS}/tags/list?n=${tags}`, 'tags', tags, TAGS), { servers });
}

/** A small image as the projects figure pushes it: a unique 16 KiB layer and config, and their manifest. */
export interface SmallImage {
  readonly layer: Buffer;
  readonly config: Buffer;
  readonly layerDigest: string;
  readonly configDigest: string;
  readonly manifest: Buffer;
  /** Layers other images list too (a base image's), with their digests: usually in the registry already. */
  readonly shared: readonly { readonly bytes: Buffer; readonly digest: string }[];
}

/** A new small image listing `shared` layers (a base image's) below its own. */
export function smallImage(shared: readonly { bytes: Buffer; digest: string }[] = []): SmallImage {
  const layer = randomBytes(16 * 1024);
  const config = imageConfig(randomBytes(8).toString('hex'));
  return { layer, config, layerDigest: sha256(layer), configDigest: sha256(config), manifest: imageManifest(config, [...shared.map((s) => s.bytes), layer]), shared };
}

/** Pushes `image` as docker does: HEAD each blob, POST + PUT the missing ones, then the manifest under `tag`. */
export async function pushImage(client: RegistryClient, repository: string, image: SmallImage, tag = 'latest'): Promise<void> {
  const blobs = [...image.shared.map((s) => [s.bytes, s.digest] as const), [image.layer, image.layerDigest] as const, [image.config, image.configDigest] as const];
  for (const [bytes, digest] of blobs) {
    if (!(await client.hasBlob(repository, digest))) await client.pushMonolithic(repository, bytes, digest);
  }
  await client.putManifest(repository, tag, image.manifest);
}

/**
 * Figure 9b (Berth): `projectImages` small-image pushes (HEAD + POST + PUT per blob for a 16 KiB
 * layer and a config, then the manifest — what docker does) by `projectClients` concurrent clients,
 * all into one namespace versus spread over `projectNamespaces`; images per second, alternating.
 */
export async function projectPushes(ctx: FigureContext): Promise<void> {
  const berth = ctx.servers.find((s) => s.name === 'berth');
  if (!berth) return;
  const { projectImages: count, projectClients: n, projectNamespaces: spread } = ctx.scale;
  const manyNames = Array.from({ length: spread }, (_, i) => `bench-p${pad(i, 2)}`);
  const quotas = await enableProjectQuotas(berth, ['bench-one', ...manyNames]);
  ctx.log(`  projects: ${quotas.note}`);
  const variants = [
    { key: 'project-one', label: `${count} image pushes, ${n} clients, one project`, repo: (i: number, r: number) => `bench-one/img-${r}-${i}` },
    { key: 'project-many', label: `… spread over ${spread} projects`, repo: (i: number, r: number) => `${manyNames[i % spread]}/img-${r}-${i}` },
  ];
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.key, []]));
  for (let round = 0; round < ctx.scale.projectRounds; round++) {
    for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
      const images = Array.from({ length: count }, () => smallImage());
      const agent = keepAliveAgent(n);
      const clients = Array.from({ length: n }, () => new RegistryClient(berth, agent));
      const { usage } = await timed(berth.pid, () =>
        runCount(n, count, (i, w) => pushImage(clients[w]!, variant.repo(i, round), images[i]!)),
      );
      agent.destroy();
      const value = count / usage.seconds;
      samples.get(variant.key)!.push({ value, usage });
      ctx.log(`  ${variant.label} · round ${round + 1}: ${format(value)} images/s`);
    }
  }
  const charged = await chargedBytes(berth, ['bench-one', ...manyNames]);
  const note = `${quotas.note}; ${(charged / (1 << 20)).toFixed(1)} MiB charged to them`;
  if (charged === 0) throw new Error('quotas were set but Berth charged nothing to the projects');
  ctx.log(`  projects: ${note}`);
  for (const variant of variants) {
    recordSamples(ctx, { key: variant.key, label: variant.label, unit: 'images/s', better: 'higher' }, 'berth', samples.get(variant.key)!, note);
  }
}
