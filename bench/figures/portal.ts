// Issue 18's list figures: the portal's pages over a repository of 100,000 tagged artifacts (plus
// one artifact carrying 10,000 tags) and a project of 10,000 repositories — page 1, a deep page,
// the last page, a filter, each order — p50 and p95 of single requests, against the issue's 300 ms.
// Berth is seeded through its own metadata layer before it starts (100,000 pushes would take most of
// the run on PostgreSQL + S3); Distribution gets the same 100,000 tags by real manifest PUTs, and its
// `tags/list?n=100&last=…` requests are timed the same way in the same run, on the filesystem phase
// (on S3, moto's listing of a 100,000-key prefix per page is moto's cost, not Distribution's).
// Distribution 2.8 ignores `n` and `last` on tags lists: each answer is the whole list, as its
// clients get it (checked and logged once).
import { createHash } from 'node:crypto';
import type { Insertable } from 'kysely';
import type { Database } from '../../src/metadata/schema.ts';
import { imageConfig, imageManifest, RegistryClient, sha256 } from '../client.ts';
import { basicAuth, keepAliveAgent, send } from '../http.ts';
import { format, recordSamples, runCount, type FigureContext } from '../measure.ts';
import type { BenchServer, BerthStorage } from '../servers.ts';
import { insertAll, withMetadata } from './lifecycle-data.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REPOSITORY = 'bench-portal/ci';
const MANY = 'bench-many';
/** Tags of the one artifact that carries many (the list shows 20 of them and the count). */
const ALIASES = 10_000;
/** Requests timed per kind, one after the other (after two untimed ones). */
const SAMPLES = 40;

function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

function pad(n: number): string {
  return String(n).padStart(6, '0');
}

/** What `populate` wrote. */
interface Population {
  readonly artifacts: number;
  readonly tags: number;
  readonly repositories: number;
  readonly seconds: number;
}

/**
 * Project `bench-portal` with repository `ci`: `artifacts` image manifests pushed a minute apart,
 * each tagged `build-NNNNNN`, every third pulled since, each referencing one shared config; one more
 * artifact tagged `alias-NNNNNN` ALIASES times. Project `bench-many` with `repositories`
 * repositories of one manifest each.
 */
export async function populate(where: BerthStorage, artifacts: number, repositories: number): Promise<Population> {
  const started = Date.now();
  return withMetadata(where, async (db, postgres) => {
    const now = Date.now();
    for (const name of ['bench-portal', MANY]) await db.insertInto('projects').values({ name, public: 0, quota_bytes: null, created_by: 'admin', created_at: now }).execute();
    const projectId = async (name: string) => Number((await db.selectFrom('projects').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id);
    const portal = await projectId('bench-portal');
    const many = await projectId(MANY);
    await insertAll(db, postgres, 'repositories', [{ name: REPOSITORY, project_id: portal, created_at: now }]);
    await insertAll(db, postgres, 'repositories', Array.from({ length: repositories }, (_, i) => ({ name: `${MANY}/app-${pad(i)}`, project_id: many, created_at: now - (repositories - i) * 1000 })));
    const ids = await db.selectFrom('repositories').select(['id', 'name']).execute();
    const repoId = new Map(ids.map((r) => [r.name, Number(r.id)]));
    const ci = repoId.get(REPOSITORY)!;
    const config = digestOf('portal-config');
    const manifests: Insertable<Database['manifests']>[] = [];
    const references: Insertable<Database['manifest_references']>[] = [];
    const tags: Insertable<Database['tags']>[] = [];
    const blobLinks: Insertable<Database['repository_blobs']>[] = [];
    const image = (repositoryId: number, digest: string, created: number, pulled: number | null) => {
      manifests.push({ repository_id: repositoryId, digest, media_type: OCI_MANIFEST, size: 500, artifact_type: null, subject_digest: null, annotations: null, pushed_by: 'ci', last_pulled_at: pulled, created_at: created });
      references.push({ repository_id: repositoryId, manifest_digest: digest, child_digest: config, kind: 'blob' });
    };
    blobLinks.push({ repository_id: ci, digest: config, size: 1_500, created_at: now });
    for (let i = 0; i < artifacts; i++) {
      const digest = digestOf(`portal-${i}`);
      const created = now - (artifacts - i) * 60_000;
      image(ci, digest, created, i % 3 === 0 ? created + 3_600_000 : null);
      tags.push({ repository_id: ci, name: `build-${pad(i)}`, manifest_digest: digest, updated_at: created });
    }
    const aliased = digestOf('portal-aliased');
    image(ci, aliased, now, null);
    for (let i = 0; i < ALIASES; i++) tags.push({ repository_id: ci, name: `alias-${pad(i)}`, manifest_digest: aliased, updated_at: now });
    for (let i = 0; i < repositories; i++) {
      const id = repoId.get(`${MANY}/app-${pad(i)}`)!;
      image(id, digestOf(`many-${i}`), now, null);
      blobLinks.push({ repository_id: id, digest: config, size: 1_500, created_at: now });
    }
    await insertAll(db, postgres, 'manifests', manifests);
    await insertAll(db, postgres, 'manifest_references', references);
    await insertAll(db, postgres, 'tags', tags);
    await insertAll(db, postgres, 'repository_blobs', blobLinks);
    return { artifacts: artifacts + 1, tags: tags.length, repositories, seconds: (Date.now() - started) / 1000 };
  });
}

/** p50 and p95 (nearest rank) of `values`, in the values' unit. */
function percentiles(values: readonly number[]): { p50: number; p95: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return { p50: at(0.5), p95: at(0.95) };
}

/** Times `SAMPLES` GETs of `paths(i)` one after another (two untimed first); milliseconds each. Throws on a status other than 200. */
async function latencies(server: BenchServer, paths: (i: number) => string, headers: Record<string, string>): Promise<number[]> {
  const agent = keepAliveAgent(1);
  const times: number[] = [];
  try {
    for (let i = -2; i < SAMPLES; i++) {
      const path = paths(Math.max(0, i));
      const started = process.hrtime.bigint();
      const reply = await send(agent, `${server.base}${path}`, { method: 'GET', headers });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (reply.status !== 200) throw new Error(`${server.name}: GET ${path} answered ${reply.status}`);
      if (i >= 0) times.push(ms);
    }
  } finally {
    agent.destroy();
  }
  return times;
}

/** Pushes the tags `build-000000`… of one config-only manifest to Distribution, 32 clients; tags per second. */
async function seedDistribution(ctx: FigureContext, server: BenchServer, count: number): Promise<number> {
  const n = ctx.scale.seedClients;
  const agent = keepAliveAgent(n);
  const clients = Array.from({ length: n }, () => new RegistryClient(server, agent));
  const config = imageConfig('portal');
  await clients[0]!.pushMonolithic(REPOSITORY, config, sha256(config));
  const manifest = imageManifest(config, []);
  const started = Date.now();
  await runCount(n, count, (i, w) => clients[w]!.putManifest(REPOSITORY, `build-${pad(i)}`, manifest));
  agent.destroy();
  return count / ((Date.now() - started) / 1000);
}

/**
 * The portal figure: Berth's list requests (p50, p95 of SAMPLES each) over the seeded repository and
 * project, and Distribution's tags-list pages of the same 100,000 tags; each Berth row carries
 * Distribution's page figure beside it, so the table's B/D column is the ratio.
 */
export async function portalLists(ctx: FigureContext): Promise<void> {
  const artifacts = ctx.scale.portalTags;
  const repositories = ctx.scale.portalRepos;
  let population: Population | undefined;
  const berth = await ctx.launch.berth('portal', { prepare: async (where) => void (population = await populate(where, artifacts, repositories)) });
  const p = population!;
  ctx.log(`  portal: wrote ${p.artifacts.toLocaleString('en-US')} artifacts (${p.tags.toLocaleString('en-US')} tags) and ${p.repositories.toLocaleString('en-US')} repositories in ${format(p.seconds)} s`);
  const admin = { Authorization: basicAuth(berth.username, berth.password) };
  const pageSize = 50;
  const pages = Math.ceil(p.artifacts / pageSize);
  const spread = (i: number, count: number) => 1 + Math.floor(((i * 7919) % SAMPLES) * (count / SAMPLES));
  const artifactsOf = `/api/v1/repositories/${REPOSITORY}/artifacts`;
  const repoPages = Math.ceil(repositories / pageSize);
  const kinds: { key: string; label: string; path: (i: number) => string }[] = [
    { key: 'page1', label: 'artifacts, page 1 (newest first)', path: () => `${artifactsOf}?pageSize=${pageSize}` },
    { key: 'deep', label: 'artifacts, pages spread over all (newest first)', path: (i) => `${artifactsOf}?pageSize=${pageSize}&page=${spread(i, pages)}` },
    { key: 'last', label: 'artifacts, last page', path: () => `${artifactsOf}?pageSize=${pageSize}&page=${pages}` },
    { key: 'filter', label: 'artifacts, filter q=<tag substring>', path: (i) => `${artifactsOf}?pageSize=${pageSize}&q=build-0${String(10 + i).padStart(2, '0')}` },
    { key: 'digest', label: 'artifacts, filter q=<digest prefix>', path: (i) => `${artifactsOf}?pageSize=${pageSize}&q=${digestOf(`portal-${i * 97}`).slice(7, 19)}` },
    { key: 'tag', label: 'artifacts, sort=tag, pages spread', path: (i) => `${artifactsOf}?pageSize=${pageSize}&sort=tag&page=${spread(i, pages)}` },
    { key: 'pulled', label: 'artifacts, sort=-lastPulledAt, page 1', path: () => `${artifactsOf}?pageSize=${pageSize}&sort=-lastPulledAt` },
    { key: 'oldest', label: 'artifacts, sort=pushedAt, page 2', path: () => `${artifactsOf}?pageSize=${pageSize}&sort=pushedAt&page=2` },
    { key: 'repos', label: `repositories of a ${repositories.toLocaleString('en-US')}-repository project, pages spread`, path: (i) => `/api/v1/repositories?project=${MANY}&pageSize=${pageSize}&page=${spread(i, repoPages)}` },
    { key: 'repos-new', label: 'repositories, sort=-createdAt, page 1', path: () => `/api/v1/repositories?project=${MANY}&pageSize=${pageSize}&sort=-createdAt` },
    { key: 'v2-tags', label: '/v2 tags/list?n=100&last=… (Berth, same tags)', path: (i) => `/v2/${REPOSITORY}/tags/list?n=100&last=build-${pad(spread(i, artifacts))}` },
  ];
  // Checked once: the pages hold what was written.
  const first = (await send(keepAliveAgent(1), `${berth.base}${artifactsOf}?pageSize=1&q=alias`, { method: 'GET', headers: admin, keepBody: true })).body?.toString('utf8') ?? '';
  const aliased = JSON.parse(first) as { total: number; items: { tags: string[]; tagCount: number }[] };
  if (aliased.total !== 1 || aliased.items[0]?.tagCount !== ALIASES || aliased.items[0].tags.length !== 20) throw new Error(`the aliased artifact lists ${first.slice(0, 200)}`);

  let distribution: { p50: number; p95: number } | undefined;
  const dist = ctx.servers.find((s) => s.name === 'distribution');
  if (dist && ctx.backend === 'sqlite-fs') {
    const rate = await seedDistribution(ctx, dist, artifacts);
    ctx.log(`  portal: pushed ${artifacts.toLocaleString('en-US')} tags to Distribution at ${format(rate)} tags/s`);
    // Checked once: a page, not the whole list (a registry that ignored `n` would answer 100,000 tags).
    const sample = await send(keepAliveAgent(1), `${dist.base}/v2/${REPOSITORY}/tags/list?n=100&last=build-${pad(1000)}`, { method: 'GET', keepBody: true });
    const listed = (JSON.parse(sample.body?.toString('utf8') ?? '{}') as { tags?: unknown[] }).tags?.length;
    if (listed !== 100) ctx.log(`  portal: Distribution's tags/list?n=100&last=… listed ${listed} tags, not a page of 100`);
    distribution = percentiles(await latencies(dist, (i) => `/v2/${REPOSITORY}/tags/list?n=100&last=build-${pad(spread(i, artifacts))}`, {}));
    ctx.log(`  Distribution tags/list?n=100&last=…: p50 ${format(distribution.p50)} ms, p95 ${format(distribution.p95)} ms`);
  } else ctx.log('  portal: Distribution left out on S3 (moto lists the whole 100,000-key prefix per page): compare with the SQLite + filesystem phase');

  for (const kind of kinds) {
    const { p50, p95 } = percentiles(await latencies(berth, kind.path, admin));
    ctx.log(`  ${kind.label}: p50 ${format(p50)} ms, p95 ${format(p95)} ms${p95 >= 300 ? '  (over 300 ms)' : ''}`);
    for (const [q, value] of [['p95', p95], ['p50', p50]] as const) {
      const spec = { key: `portal-${kind.key}-${q}`, label: `${kind.label} ${q}`, unit: 'ms', better: 'lower' as const };
      recordSamples(ctx, spec, 'berth', [{ value }], `${p.artifacts} artifacts, ${p.tags} tags; ${SAMPLES} requests`);
      if (distribution) recordSamples(ctx, spec, 'distribution', [{ value: distribution[q] }], `tags/list?n=100&last=… over ${artifacts} tags`);
    }
  }
}
