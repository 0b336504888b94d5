// Bulk metadata for issue 14's figures: a million manifest references for the mark figure and a
// hundred thousand artifacts for the retention figure, written straight into a fresh database
// (SQLite or PostgreSQL) through Berth's own metadata layer before Berth starts on it — no client
// could push that much in a benchmark's time. Digests are SHA-256 of labels, so runs repeat exactly.
import { createHash } from 'node:crypto';
import { sql, type Insertable } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import type { DB } from '../../src/metadata/dialect.ts';
import { openMetadataFor } from '../../src/metadata/index.ts';
import type { Database } from '../../src/metadata/schema.ts';
import type { BerthStorage } from '../servers.ts';

const DAY_MS = 86_400_000;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Bound parameters per INSERT: under SQLite's 32,766 and PostgreSQL's 65,535. */
const PARAMETERS = 30_000;

/** `sha256:` of a label: a well-formed digest, the same in every run. */
function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Rows per statement on PostgreSQL: one array per column, so the statement stays small. */
const POSTGRES_ROWS = 50_000;

/**
 * Inserts `rows` into `table` in one transaction: on SQLite in statements of at most PARAMETERS
 * bound values; on PostgreSQL with one array per column (`insert … select * from unnest(…)`),
 * which parses a hundred times fewer parameters. Columns null in every row are left to their default.
 */
export async function insertAll<T extends keyof Database>(db: DB, postgres: boolean, table: T, rows: readonly Insertable<Database[T]>[]): Promise<void> {
  if (rows.length === 0) return;
  const all = rows as readonly Record<string, unknown>[];
  const columns = Object.keys(all[0]!).filter((c) => all.some((r) => r[c] !== null && r[c] !== undefined));
  await db.transaction().execute(async (tx) => {
    if (!postgres) {
      const per = Math.max(1, Math.floor(PARAMETERS / Object.keys(all[0]!).length));
      // Kysely cannot check rows against a table chosen by a type parameter; the callers' row types do.
      for (let i = 0; i < rows.length; i += per) await tx.insertInto(table).values(rows.slice(i, i + per) as never).execute();
      return;
    }
    const types = columns.map((c) => (typeof all.find((r) => r[c] !== null)![c] === 'number' ? sql.raw('bigint[]') : sql.raw('text[]')));
    for (let i = 0; i < all.length; i += POSTGRES_ROWS) {
      const batch = all.slice(i, i + POSTGRES_ROWS);
      const arrays = columns.map((c, k) => sql`${batch.map((r) => r[c] ?? null)}::${types[k]!}`);
      await sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) select * from unnest(${sql.join(arrays)})`.execute(tx);
    }
  });
}

/**
 * Opens Berth's metadata where it is about to start (creating and migrating it), runs `fill`,
 * closes it. On PostgreSQL the tables are then analyzed, as autovacuum would within a minute of
 * such an insert: a registry that grew to this size over months has its statistics, and a planner
 * without them misjudges every query on these tables. SQLite keeps none unless asked; Berth never asks.
 */
export async function withMetadata<T>(where: BerthStorage, fill: (db: DB, postgres: boolean) => Promise<T>): Promise<T> {
  const config = configSchema.parse({ dataDir: where.dataDir, ...(where.databaseUrl ? { database: { url: where.databaseUrl } } : {}) });
  const meta = await openMetadataFor(config);
  try {
    const result = await fill(meta.db, meta.dialect === 'postgres');
    if (meta.dialect === 'postgres') await sql`analyze`.execute(meta.db);
    return result;
  } finally {
    await meta.close();
  }
}

/** A project row and its repositories; returns their ids in order. */
async function projectWithRepositories(db: DB, postgres: boolean, project: string, paths: readonly string[], now: number): Promise<{ projectId: number; repositoryIds: number[] }> {
  await db.insertInto('projects').values({ name: project, public: 0, quota_bytes: null, created_by: 'admin', created_at: now }).execute();
  const { id: projectId } = await db.selectFrom('projects').select('id').where('name', '=', project).executeTakeFirstOrThrow();
  const names = paths.map((p) => `${project}/${p}`);
  await insertAll(db, postgres, 'repositories', names.map((name) => ({ name, project_id: Number(projectId), created_at: now })));
  const rows = await db.selectFrom('repositories').select(['id', 'name']).where('project_id', '=', Number(projectId)).execute();
  const ids = new Map(rows.map((r) => [r.name, Number(r.id)]));
  return { projectId: Number(projectId), repositoryIds: names.map((n) => ids.get(n)!) };
}

/** What the mark figure's database holds. */
export interface MarkPopulation {
  readonly manifests: number;
  readonly references: number;
  /** Rows of `blobs`: every manifest's own bytes, configs, layers, and the garbage. */
  readonly blobs: number;
  /** Unreferenced blobs, untouched for 30 days: exactly what a GC run must find. */
  readonly garbage: number;
  readonly garbageBytes: number;
  readonly seconds: number;
}

/** Repositories of the mark figure's project. */
const MARK_REPOSITORIES = 100;
/** Base layers shared by every image (a few distributions' bases). */
const BASE_POOL = 1_000;
/** Images sharing each application layer (builds of one app that differ in their top layers). */
const LAYER_SHARING = 4;

/**
 * `manifests` image manifests in 100 repositories of project `bench-mark`, each tagged, each listing
 * a config of its own, up to 3 of 1,000 shared base layers and application layers each shared by 4
 * images — `manifests × referencesPerManifest` rows of `manifest_references` — plus a tenth as many
 * unreferenced blobs (an aborted push's layers: linked to a repository and counted by the project,
 * untouched for 30 days). Every content object has its `blobs` row, as pushes leave them.
 */
export async function populateMark(where: BerthStorage, manifests: number, referencesPerManifest: number): Promise<MarkPopulation> {
  const started = Date.now();
  return withMetadata(where, async (db, postgres) => {
    const now = Date.now();
    const old = now - 30 * DAY_MS;
    const paths = Array.from({ length: MARK_REPOSITORIES }, (_, i) => `app-${pad(i, 3)}`);
    const { projectId, repositoryIds } = await projectWithRepositories(db, postgres, 'bench-mark', paths, now);
    const base = Math.min(3, referencesPerManifest - 1);
    const app = referencesPerManifest - 1 - base;
    const appPool = Math.ceil(manifests / LAYER_SHARING) * app;
    const blobRows: Insertable<Database['blobs']>[] = [];
    const blob = (digest: string, size: number) => blobRows.push({ digest, size, touched_at: old, deleting: 0 });
    const baseDigests = Array.from({ length: Math.min(BASE_POOL, manifests * base) }, (_, i) => digestOf(`base-${i}`));
    const appDigests = Array.from({ length: appPool }, (_, i) => digestOf(`app-${i}`));
    baseDigests.forEach((d, i) => blob(d, 30_000_000 + i));
    appDigests.forEach((d, i) => blob(d, 2_000_000 + i));
    const manifestRows: Insertable<Database['manifests']>[] = [];
    const referenceRows: Insertable<Database['manifest_references']>[] = [];
    const tagRows: Insertable<Database['tags']>[] = [];
    for (let m = 0; m < manifests; m++) {
      const repositoryId = repositoryIds[m % MARK_REPOSITORIES]!;
      const digest = digestOf(`manifest-${m}`);
      const config = digestOf(`config-${m}`);
      const created = old + m;
      manifestRows.push({ repository_id: repositoryId, digest, media_type: OCI_MANIFEST, size: 1_200, artifact_type: null, subject_digest: null, annotations: null, pushed_by: 'admin', last_pulled_at: null, created_at: created });
      tagRows.push({ repository_id: repositoryId, name: `v${m}`, manifest_digest: digest, updated_at: created });
      blob(digest, 1_200);
      blob(config, 2_500);
      const children = [config];
      for (let k = 0; k < base; k++) children.push(baseDigests[(m * base + k) % baseDigests.length]!);
      const group = Math.floor(m / LAYER_SHARING) * app;
      for (let k = 0; k < app; k++) children.push(appDigests[group + k]!);
      for (const child of children) referenceRows.push({ repository_id: repositoryId, manifest_digest: digest, child_digest: child, kind: 'blob' });
    }
    const garbage = Math.max(1, Math.round(manifests / 10));
    const garbageRows = Array.from({ length: garbage }, (_, g) => ({ digest: digestOf(`garbage-${g}`), size: 4_096, repositoryId: repositoryIds[g % MARK_REPOSITORIES]! }));
    for (const g of garbageRows) blob(g.digest, g.size);
    const garbageBytes = garbageRows.reduce((sum, g) => sum + g.size, 0);
    await insertAll(db, postgres, 'manifests', manifestRows);
    await insertAll(db, postgres, 'manifest_references', referenceRows);
    await insertAll(db, postgres, 'tags', tagRows);
    await insertAll(db, postgres, 'blobs', blobRows);
    await insertAll(db, postgres, 'repository_blobs', garbageRows.map((g) => ({ repository_id: g.repositoryId, digest: g.digest, size: g.size, created_at: old })));
    await insertAll(db, postgres, 'project_blobs', garbageRows.map((g) => ({ project_id: projectId, digest: g.digest, size: g.size })));
    await insertAll(db, postgres, 'project_usage', [{ project_id: projectId, shard: 0, bytes: garbageBytes }]);
    return { manifests, references: referenceRows.length, blobs: blobRows.length, garbage, garbageBytes, seconds: (Date.now() - started) / 1000 };
  });
}

/** What the retention figure's project holds. */
export interface RetentionPopulation {
  readonly project: string;
  readonly repositories: number;
  readonly artifacts: number;
  readonly tags: number;
  readonly untagged: number;
  readonly seconds: number;
}

/** Repositories of the retention figure's project: half under `team-a/`, half under `tools/`. */
const RETENTION_REPOSITORIES = 100;
/** Layers shared by the retention figure's images. */
const RETENTION_LAYERS = 500;

/**
 * `artifacts` image manifests in 100 repositories of project `bench-retain` (`team-a/app-NN`,
 * `tools/tool-NN`), pushed over the last 180 days, half of them pulled since: nine in ten tagged
 * `build-N`, every tenth of those also `release-N`, one in ten untagged. Each lists a config of
 * its own and one of 500 shared layers, with their `blobs` rows.
 */
export async function populateRetention(where: BerthStorage, artifacts: number): Promise<RetentionPopulation> {
  const started = Date.now();
  return withMetadata(where, async (db, postgres) => {
    const now = Date.now();
    const project = 'bench-retain';
    const paths = Array.from({ length: RETENTION_REPOSITORIES }, (_, i) => (i % 2 === 0 ? `team-a/app-${pad(i, 2)}` : `tools/tool-${pad(i, 2)}`));
    const { repositoryIds } = await projectWithRepositories(db, postgres, project, paths, now);
    const layers = Array.from({ length: RETENTION_LAYERS }, (_, i) => digestOf(`retain-layer-${i}`));
    const blobRows: Insertable<Database['blobs']>[] = layers.map((digest, i) => ({ digest, size: 5_000_000 + i, touched_at: now, deleting: 0 }));
    const manifestRows: Insertable<Database['manifests']>[] = [];
    const referenceRows: Insertable<Database['manifest_references']>[] = [];
    const tagRows: Insertable<Database['tags']>[] = [];
    let untagged = 0;
    for (let a = 0; a < artifacts; a++) {
      const repositoryId = repositoryIds[a % RETENTION_REPOSITORIES]!;
      const n = Math.floor(a / RETENTION_REPOSITORIES);
      const digest = digestOf(`retain-manifest-${a}`);
      const config = digestOf(`retain-config-${a}`);
      // Newer builds have higher numbers; a hash spreads the pulls.
      const pushed = now - 180 * DAY_MS + Math.floor((a / artifacts) * 180 * DAY_MS);
      const pulled = a % 2 === 0 ? null : pushed + ((a * 7919) % (now - pushed + 1));
      manifestRows.push({ repository_id: repositoryId, digest, media_type: OCI_MANIFEST, size: 900, artifact_type: null, subject_digest: null, annotations: null, pushed_by: 'admin', last_pulled_at: pulled, created_at: pushed });
      referenceRows.push({ repository_id: repositoryId, manifest_digest: digest, child_digest: config, kind: 'blob' });
      referenceRows.push({ repository_id: repositoryId, manifest_digest: digest, child_digest: layers[a % RETENTION_LAYERS]!, kind: 'blob' });
      blobRows.push({ digest, size: 900, touched_at: pushed, deleting: 0 }, { digest: config, size: 1_500, touched_at: pushed, deleting: 0 });
      if (a % 10 === 9) {
        untagged++;
        continue;
      }
      tagRows.push({ repository_id: repositoryId, name: `build-${n}`, manifest_digest: digest, updated_at: pushed });
      if (n % 10 === 0) tagRows.push({ repository_id: repositoryId, name: `release-${n}`, manifest_digest: digest, updated_at: pushed });
    }
    await insertAll(db, postgres, 'manifests', manifestRows);
    await insertAll(db, postgres, 'manifest_references', referenceRows);
    await insertAll(db, postgres, 'tags', tagRows);
    await insertAll(db, postgres, 'blobs', blobRows);
    return { project, repositories: RETENTION_REPOSITORIES, artifacts, tags: tagRows.length, untagged, seconds: (Date.now() - started) / 1000 };
  });
}

/**
 * The retention figure's policy, four rules as a team would write them: releases always, the 20
 * newest builds of every repository, team-a's last 30 days (untagged ones too), and the tools'
 * 10 most recently pulled. Whatever no rule retains, a real run would delete.
 */
export const RETENTION_POLICY = {
  rules: [
    { repositories: { pattern: '**' }, tags: { pattern: 'release-*' }, retain: { kind: 'always' } },
    { repositories: { pattern: '**' }, tags: { pattern: '**' }, retain: { kind: 'latestPushed', count: 20 } },
    { repositories: { pattern: 'team-a/**' }, tags: { pattern: '**' }, untagged: true, retain: { kind: 'pushedWithinDays', days: 30 } },
    { repositories: { pattern: 'tools/**' }, tags: { pattern: '**' }, retain: { kind: 'latestPulled', count: 10 } },
  ],
} as const;
