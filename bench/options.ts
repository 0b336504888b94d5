// Command-line options of `npm run bench`: which figures, which storage and auth phases, what scale.
import { parseArgs } from 'node:util';
import type { StorageKind } from './measure.ts';

/** The figures of issue 5 (and 13, 14), by name. */
export const FIGURES = ['push', 'chunked', 'pull', 'manifest', 'small', 'skopeo', 'token', 'memory', 'catalog', 'projects', 'hash', 'gc-sweep', 'gc-mark', 'gc-push', 'retention-eval', 'proxy', 'replication', 'portal'] as const;
export type FigureId = (typeof FIGURES)[number];

/** The numbering (and the group `gc`), accepted by `--figures` as well as the names. */
const BY_NUMBER: Record<string, FigureId[]> = {
  '1': ['push'],
  '2': ['chunked'],
  '3': ['pull'],
  '4': ['manifest'],
  '5': ['small'],
  '6': ['skopeo'],
  '7': ['token'],
  '8': ['memory'],
  '9': ['catalog', 'projects'],
  '10': ['hash'],
  // Issue 14's storage lifecycle figures, as a group.
  gc: ['gc-sweep', 'gc-mark', 'gc-push', 'retention-eval'],
};

/**
 * Issue 14's figures: each starts registries of its own. They run with authentication off, once
 * per backend: on SQLite + filesystem in the disk phase (tmpfs when disk is not asked for).
 */
export const LIFECYCLE_FIGURES: readonly FigureId[] = BY_NUMBER['gc']!;

/**
 * Issue 15's proxy-cache figures: they start registries of their own (an upstream Distribution,
 * Distribution in proxy mode, a Berth with proxy-cache projects) and run once, authentication off,
 * Berth on SQLite + filesystem, on disk (tmpfs when disk is not asked for).
 */
export const PROXY_FIGURES: readonly FigureId[] = ['proxy'];

/**
 * Issue 16's figures: replication against `skopeo sync`, event-based replication lag and webhook
 * delivery. Like the proxy figures they start registries of their own and run once,
 * authentication off, Berth on SQLite + filesystem, on disk (tmpfs when disk is not asked for).
 */
export const REPLICATION_FIGURES: readonly FigureId[] = ['replication'];

/**
 * Issue 18's portal list figure: it starts a Berth of its own (seeded through the metadata layer)
 * and runs once per backend, authentication off, as the lifecycle figures do.
 */
export const PORTAL_FIGURES: readonly FigureId[] = ['portal'];

/** With authentication on, only these run (push, pull, manifest GET), so the matrix stays small. */
export const AUTH_SUBSET: readonly FigureId[] = ['push', 'pull', 'manifest'];

/** Where Berth keeps its metadata and blobs in a phase. */
export const BACKENDS = ['sqlite-fs', 'postgres-s3'] as const;
export type Backend = (typeof BACKENDS)[number];

/**
 * The figures of the replicas phase (1 vs 3 replicas behind nginx): the request paths a replica
 * serves. Memory is per process, tokens and the Berth-only figures are the backend phases' business.
 */
export const REPLICA_SUBSET: readonly FigureId[] = ['push', 'chunked', 'pull', 'small', 'manifest', 'skopeo'];

const MiB = 1 << 20;

/** Sizes and durations of one run. */
export interface Scale {
  readonly name: 'full' | 'quick';
  /** Rounds per figure (alternating registries); medians are reported. */
  readonly rounds: number;
  readonly blobBytes: number;
  readonly chunkBytes: number;
  /** Length of each timed window of the request-rate figures. */
  readonly windowMs: number;
  readonly manifestClients: number;
  readonly smallBlobs: number;
  readonly smallBytes: number;
  readonly smallClients: number;
  /** Rounds of the small-push figure: a round lasts about a second, so more of them steady the median. */
  readonly smallRounds: number;
  /** Layer sizes of the skopeo image (random, so gzip leaves them as large). */
  readonly skopeoLayers: readonly number[];
  readonly tokenClients: number;
  /** The blob streamed in while Berth's memory is sampled. */
  readonly streamBytes: number;
  readonly catalogRepos: number;
  readonly tagCount: number;
  readonly listingRounds: number;
  readonly seedClients: number;
  readonly projectImages: number;
  readonly projectClients: number;
  readonly projectNamespaces: number;
  /** Rounds of the projects figure (each round pushes `projectImages` twice: one and many namespaces). */
  readonly projectRounds: number;
  readonly diskProbeBytes: number;
  readonly diskProbeRuns: number;
  readonly shaSeconds: number;
  /** Unreferenced blobs the sweep figure collects on the filesystem; on S3 (moto, ~250 PUTs/s) a fifth. */
  readonly gcBlobs: number;
  readonly gcBlobBytes: number;
  /** Clients pushing the sweep's blobs, and pushing images in the push-during-GC and retention figures. */
  readonly gcClients: number;
  /** Berth's `gc.grace` in the sweep and push-during-GC figures: short, so garbage made in the run is collectable. */
  readonly gcGraceSeconds: number;
  /** Manifests of the mark figure, each with `markReferencesPerManifest` references (10 × 100,000 = the 1,000,000). */
  readonly markManifests: number;
  readonly markReferencesPerManifest: number;
  /** Artifacts (tagged manifests) in the project the retention figure evaluates. */
  readonly retentionArtifacts: number;
  /** Length of each window of the push-during-GC figure. */
  readonly gcWindowMs: number;
  /** Rounds of the mark, push-during-GC and retention figures. */
  readonly gcRounds: number;
  /** The proxy figures' multi-layer image: layer count and size of each layer (plus a small config). */
  readonly proxyLayers: number;
  readonly proxyLayerBytes: number;
  /** Concurrent cached pulls of that image, and how many times each client pulls it per round. */
  readonly proxyClients: number;
  readonly proxyRepeats: number;
  /** The layer of the first (uncached) pull figure, a new one per round, and its rounds. */
  readonly proxyFirstBytes: number;
  readonly proxyFirstRounds: number;
  /** Cached tag pulls counted at the upstream, inside and after the freshness window. */
  readonly proxyTagPulls: number;
  /** The replicated image set: repositories × tags per repository images (one project). */
  readonly replRepos: number;
  readonly replTagsPerRepo: number;
  /** Unique layer bytes over the whole set (each image's share split into `replUniqueLayers` layers). */
  readonly replUniqueBytes: number;
  readonly replUniqueLayers: number;
  /** Base layers every image of the set shares (sizes). */
  readonly replBaseLayers: readonly number[];
  /** Pushes timed from acknowledgement to the manifest at the destination (event-based replication). */
  readonly replEventSamples: number;
  /** Pushes timed from acknowledgement to the webhook's delivery, one at a time. */
  readonly webhookLagSamples: number;
  /** Tag pushes of the webhook burst, and how many clients push them. */
  readonly webhookBurst: number;
  readonly webhookBurstClients: number;
  /** Tagged artifacts of the portal figure's repository, and repositories of its big project. */
  readonly portalTags: number;
  readonly portalRepos: number;
}

const FULL: Scale = {
  name: 'full',
  // Five: on this shared virtual machine a single round can run at half speed (disk or memory).
  rounds: 5,
  blobBytes: 256 * MiB,
  chunkBytes: 8 * MiB,
  windowMs: 2_500,
  manifestClients: 16,
  smallBlobs: 200,
  smallBytes: 16 * 1024,
  smallClients: 16,
  smallRounds: 5,
  skopeoLayers: [48 * MiB, 24 * MiB, 12 * MiB, 4 * MiB, MiB],
  tokenClients: 16,
  streamBytes: 2048 * MiB,
  catalogRepos: 10_000,
  tagCount: 10_000,
  listingRounds: 5,
  seedClients: 32,
  projectImages: 1_000,
  projectClients: 32,
  projectNamespaces: 100,
  projectRounds: 2,
  diskProbeBytes: 512 * MiB,
  diskProbeRuns: 3,
  shaSeconds: 3,
  gcBlobs: 50_000,
  gcBlobBytes: 4096,
  gcClients: 32,
  gcGraceSeconds: 5,
  markManifests: 100_000,
  markReferencesPerManifest: 10,
  retentionArtifacts: 100_000,
  gcWindowMs: 15_000,
  gcRounds: 3,
  proxyLayers: 8,
  proxyLayerBytes: 4 * MiB,
  proxyClients: 8,
  // Four: a round then moves about 1 GiB, over a second on this machine.
  proxyRepeats: 4,
  proxyFirstBytes: 1024 * MiB,
  // Three: each round leaves the layer in three stores (upstream, Berth, Distribution's proxy).
  proxyFirstRounds: 3,
  proxyTagPulls: 5,
  // 50 images: 10 repositories of 5 tags; 200 MiB unique over them (4 MiB each, in 2 layers) and two shared base layers.
  replRepos: 10,
  replTagsPerRepo: 5,
  replUniqueBytes: 200 * MiB,
  replUniqueLayers: 2,
  replBaseLayers: [16 * MiB, 8 * MiB],
  replEventSamples: 20,
  webhookLagSamples: 50,
  webhookBurst: 10_000,
  webhookBurstClients: 16,
  portalTags: 100_000,
  portalRepos: 10_000,
};

const QUICK: Scale = {
  ...FULL,
  name: 'quick',
  rounds: 2,
  smallRounds: 2,
  blobBytes: 32 * MiB,
  windowMs: 800,
  skopeoLayers: [8 * MiB, 2 * MiB, MiB],
  streamBytes: 256 * MiB,
  catalogRepos: 1_000,
  tagCount: 1_000,
  listingRounds: 3,
  projectImages: 200,
  diskProbeBytes: 128 * MiB,
  diskProbeRuns: 1,
  shaSeconds: 1,
  gcBlobs: 5_000,
  markManifests: 10_000,
  retentionArtifacts: 10_000,
  gcWindowMs: 5_000,
  gcRounds: 2,
  proxyRepeats: 2,
  proxyFirstBytes: 64 * MiB,
  proxyFirstRounds: 2,
  proxyTagPulls: 3,
  replRepos: 5,
  replTagsPerRepo: 2,
  replUniqueBytes: 40 * MiB,
  replEventSamples: 20,
  webhookLagSamples: 20,
  webhookBurst: 2_000,
  portalTags: 10_000,
  portalRepos: 1_000,
};

/** Everything the run was asked to do. */
export interface BenchOptions {
  readonly scale: Scale;
  readonly figures: readonly FigureId[];
  readonly storages: readonly StorageKind[];
  /** `false` = without authentication, `true` = with. */
  readonly auths: readonly boolean[];
  /** Berth's backends; PostgreSQL + S3 runs on tmpfs only (its data is in RAM: see bench/README.md). */
  readonly backends: readonly Backend[];
  /** Replica counts behind nginx on PostgreSQL + S3; [1] alone adds no phase (the backend phases are one replica). */
  readonly replicas: readonly (1 | 3)[];
  /** Write Berth's V8 CPU profiles (one per phase) next to the results. */
  readonly profile: boolean;
  readonly berthLogLevel: string;
  /** Keep data directories and logs after the run. */
  readonly keep: boolean;
}

export const USAGE = `usage: npm run bench -- [options]

  --quick                 small sizes (32 MiB blobs, 1,000 repos, 256 MiB stream, a tenth of the GC figures' data)
  --figures LIST          comma-separated names or numbers (default all):
                          ${FIGURES.join(', ')}  (9 = catalog,projects; 10 = hash,
                          the chunked-upload hash alone: OpenSSL's vs the resumable one, no registry;
                          gc = ${LIFECYCLE_FIGURES.join(',')}: issue 14, auth off, disk (else tmpfs) per backend;
                          proxy: issue 15's proxy cache vs Distribution's proxy mode, auth off, SQLite + filesystem,
                          disk (else tmpfs); replication: issue 16's replication vs skopeo sync, event-based
                          replication lag and webhook delivery, auth off, SQLite + filesystem, disk (else tmpfs);
                          portal: issue 18's API list pages over 100,000 tags and 10,000 repositories (quick: a tenth)
                          vs Distribution's tags/list pages, auth off, once per backend, disk (else tmpfs))
  --storage LIST          disk, tmpfs (default both)
  --auth LIST             off, on (default both; "on" runs only ${AUTH_SUBSET.join(', ')})
  --backend B             sqlite-fs, postgres-s3 or both (default both): Berth's metadata and blobs;
                          postgres-s3 runs on tmpfs with PostgreSQL and S3 (moto) in RAM, Distribution on the same S3
  --replicas R            1, 3 or both (default 1): with 3 or both, a phase of Berth on PostgreSQL + S3 behind
                          nginx, 1 and/or 3 replicas, beside Distribution on S3 (figures ${REPLICA_SUBSET.join(', ')})
  --rounds N              rounds per figure (default 5, quick 2)
  --blob-mib N            size of the push/pull blobs (default 256)
  --stream-mib N          size of the blob streamed in for the memory figure (default 2048)
  --repos N               repositories and tags for the listing figure (default 10000)
  --images N              image pushes of the projects figure (default 1000)
  --window-ms N           length of each request-rate window (default 2500)
  --proxy-layer-mib N     the layer of the first (uncached) proxy pull figure (default 1024, quick 64)
  --repl-images N         images of the replication figures (default 50, quick 10; 5 tags per repository, quick 2)
  --webhook-burst N       tag pushes of the webhook burst figure (default 10000, quick 2000)
  --gc-blobs N            unreferenced blobs the gc-sweep figure collects on the filesystem (default 50000; S3 a fifth)
  --profile               write V8 CPU profiles of Berth (bench/results/profiles-…; see bench/README.md)
  --berth-log-level L     Berth's log level (default info: one access-log line per request)
  --keep                  keep the registries' data directories and logs
`;

function list(value: string | undefined, allowed: readonly string[], what: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item)) throw new Error(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`);
  return items;
}

function positive(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive whole number`);
  return n;
}

/**
 * The replication set for `images` images: as many repositories of the scale's tags each (at least
 * one), and the unique bytes pro rata (4 MiB an image), so the per-image share stays the issue's.
 */
function replicationImages(base: Scale, images: number | undefined): Partial<Scale> {
  if (images === undefined) return {};
  const repos = Math.max(1, Math.round(images / base.replTagsPerRepo));
  const perImage = base.replUniqueBytes / (base.replRepos * base.replTagsPerRepo);
  return { replRepos: repos, replUniqueBytes: Math.round((repos * base.replTagsPerRepo * perImage) / MiB) * MiB };
}

/** Parses argv (after `--`); throws an Error with a message for the user on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      figures: { type: 'string' },
      storage: { type: 'string' },
      auth: { type: 'string' },
      backend: { type: 'string' },
      replicas: { type: 'string' },
      rounds: { type: 'string' },
      'blob-mib': { type: 'string' },
      'stream-mib': { type: 'string' },
      repos: { type: 'string' },
      images: { type: 'string' },
      'window-ms': { type: 'string' },
      'gc-blobs': { type: 'string' },
      'proxy-layer-mib': { type: 'string' },
      'repl-images': { type: 'string' },
      'webhook-burst': { type: 'string' },
      profile: { type: 'boolean' },
      'berth-log-level': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const base = values.quick ? QUICK : FULL;
  const repos = positive(values.repos, '--repos');
  const scale: Scale = {
    ...base,
    rounds: positive(values.rounds, '--rounds') ?? base.rounds,
    blobBytes: (positive(values['blob-mib'], '--blob-mib') ?? base.blobBytes / MiB) * MiB,
    streamBytes: (positive(values['stream-mib'], '--stream-mib') ?? base.streamBytes / MiB) * MiB,
    catalogRepos: repos ?? base.catalogRepos,
    tagCount: repos ?? base.tagCount,
    projectImages: positive(values.images, '--images') ?? base.projectImages,
    windowMs: positive(values['window-ms'], '--window-ms') ?? base.windowMs,
    gcBlobs: positive(values['gc-blobs'], '--gc-blobs') ?? base.gcBlobs,
    proxyFirstBytes: (positive(values['proxy-layer-mib'], '--proxy-layer-mib') ?? base.proxyFirstBytes / MiB) * MiB,
    webhookBurst: positive(values['webhook-burst'], '--webhook-burst') ?? base.webhookBurst,
    ...replicationImages(base, positive(values['repl-images'], '--repl-images')),
  };
  const figureItems = list(values.figures, [...FIGURES, ...Object.keys(BY_NUMBER)], 'figure');
  const figures = figureItems ? FIGURES.filter((f) => figureItems.some((i) => i === f || BY_NUMBER[i]?.includes(f))) : [...FIGURES];
  const storages = (list(values.storage, ['disk', 'tmpfs'], 'storage') ?? ['disk', 'tmpfs']) as StorageKind[];
  const auths = (list(values.auth, ['off', 'on'], 'auth') ?? ['off', 'on']).map((a) => a === 'on');
  const backend = list(values.backend, [...BACKENDS, 'both'], 'backend') ?? ['both'];
  const backends = BACKENDS.filter((b) => backend.includes(b) || backend.includes('both'));
  const replica = list(values.replicas, ['1', '3', 'both'], 'replicas') ?? ['1'];
  const replicas = ([1, 3] as const).filter((n) => replica.includes(String(n)) || replica.includes('both'));
  return {
    scale,
    figures,
    storages,
    auths,
    backends,
    replicas,
    profile: values.profile ?? false,
    berthLogLevel: values['berth-log-level'] ?? 'info',
    keep: values.keep ?? false,
  };
}
