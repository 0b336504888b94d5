import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { RegistryError } from '../domain/errors.ts';
import type { ChangeFeed } from './changes.ts';
import { containing, oneOf, relaxed, type DB } from './dialect.ts';
import { sqlDialectOf, type SqlDialect } from './jobs.ts';
import { PreparedQuery } from './prepared.ts';
import type { ProjectRow } from './schema.ts';

/** Usage rows per project: concurrent pushes spread their additions over them (see ProjectUsageTable). */
export const USAGE_SHARDS = 16;

/** What a new project is made with. */
export interface NewProject {
  public?: boolean;
  quotaBytes?: number | null;
  createdBy?: string;
  /** Makes it a proxy-cache project of registry endpoint `registryId`; `freshness` in seconds (unset: `proxy.freshness`). */
  proxy?: { registryId: number; freshness?: number | null };
}

/** A page of projects, with the total count for pagination. */
export interface ProjectPage {
  items: ProjectRow[];
  total: number;
}

/** Orders of a project list: a field, descending when prefixed with "-"; ties by name. */
export const PROJECT_SORTS = ['name', '-name', '-createdAt', 'createdAt', '-usage', 'usage'] as const;
export type ProjectSort = (typeof PROJECT_SORTS)[number];

/** Projects and their deduplicated storage usage (members: members.ts). */
export class ProjectStore {
  /**
   * name → row; dropped on every change made through this store, on any replica (the `project`
   * topic of the change feed), and re-read after `CACHE_MS` anyway.
   */
  private readonly cache = new Map<string, { row: ProjectRow | undefined; at: number }>();
  private static readonly CACHE_MS = 5_000;

  private readonly byName;
  private readonly counted;
  private readonly usageSum;
  private readonly chargeBlob;
  private readonly addUsage;

  private readonly dialect: SqlDialect;

  /**
   * Told, within the charging transaction, when a charge takes a project's usage past
   * QUOTA_WARNING_SHARE of its quota (from at or below it to above it: once per crossing); the
   * metadata's assembly appends the `quota.warning` event there. Unset: not checked (no cost).
   */
  onQuotaWarning?: (on: DB, warning: { project: string; digest: string; quotaBytes: number; usageBytes: number }) => Promise<void>;

  constructor(private readonly db: DB, private readonly changes: ChangeFeed) {
    this.dialect = sqlDialectOf(db);
    changes.subscribe('project', (name) => (name === undefined ? this.cache.clear() : this.cache.delete(name)));
    this.byName = new PreparedQuery(db, (name: string) => db.selectFrom('projects').selectAll().where('name', '=', name));
    this.counted = new PreparedQuery(db, (projectId: number, digest: string) =>
      db.selectFrom('project_blobs').select('digest').where('project_id', '=', projectId).where('digest', '=', digest),
    );
    this.usageSum = new PreparedQuery(db, (projectId: number) =>
      db.selectFrom('project_usage').select((eb) => eb.fn.sum<number | string | null>('bytes').as('total')).where('project_id', '=', projectId),
    );
    // Inserts the row, or only locks it when it is there (an upsert that updates nothing: 0 rows
    // changed on both databases). The lock orders a charge against a concurrent `release` of the
    // same digest on PostgreSQL (see `release`); on SQLite transactions are serial anyway.
    this.chargeBlob = new PreparedQuery(db, (projectId: number, digest: string, size: number) =>
      db
        .insertInto('project_blobs')
        .values({ project_id: projectId, digest, size })
        .onConflict((oc) => oc.columns(['project_id', 'digest']).doUpdateSet({ size: (eb) => eb.ref('project_blobs.size') }).where(sql<boolean>`1 = 0`)),
    );
    this.addUsage = new PreparedQuery(db, (projectId: number, shard: number, size: number) =>
      db
        .insertInto('project_usage')
        .values({ project_id: projectId, shard, bytes: size })
        .onConflict((oc) => oc.columns(['project_id', 'shard']).doUpdateSet((eb) => ({ bytes: eb('project_usage.bytes', '+', size) }))),
    );
  }

  async find(name: string): Promise<ProjectRow | undefined> {
    const hit = this.cache.get(name);
    if (hit && this.changes.live && Date.now() - hit.at < ProjectStore.CACHE_MS) return hit.row;
    const since = this.changes.version('project');
    const row = await this.byName.first(name);
    if (this.changes.unchangedSince('project', since)) this.cache.set(name, { row, at: Date.now() });
    return row;
  }

  /**
   * Creates a project; false when the name is taken. `proxy`: a proxy-cache project pulling what it
   * lacks from registry endpoint `registryId` (which must exist: a foreign-key error otherwise).
   */
  async create(name: string, options: NewProject): Promise<boolean> {
    return this.insert(name, options, false);
  }

  /**
   * The project's id, creating it (private, no quota) when missing — for pushes by administrators.
   * The creation is a relaxed commit: such a project matters only through what is pushed into it,
   * and that push's durable commit comes later in the log, so it cannot be kept without the project.
   */
  async ensure(name: string, createdBy: string | undefined): Promise<number> {
    const existing = await this.find(name);
    if (existing) return existing.id;
    await this.insert(name, { createdBy }, true);
    return (await this.find(name))!.id;
  }

  private async insert(name: string, options: NewProject, relaxedCommit: boolean): Promise<boolean> {
    const compiled = this.db
      .insertInto('projects')
      .values({
        name,
        public: options.public ? 1 : 0,
        quota_bytes: options.quotaBytes ?? null,
        created_by: options.createdBy ?? null,
        created_at: Date.now(),
        proxy_registry_id: options.proxy?.registryId ?? null,
        proxy_freshness: options.proxy?.freshness ?? null,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .compile();
    const result = await this.db.executeQuery(relaxedCommit ? relaxed(compiled) : compiled);
    await this.changed(name);
    return Number(result.numAffectedRows ?? 0) > 0;
  }

  /** Changes a project's settings; `proxyFreshness` only means something on a proxy-cache project (null: the default). */
  async update(name: string, changes: { public?: boolean; quotaBytes?: number | null; proxyFreshness?: number | null }): Promise<boolean> {
    const set: { public?: number; quota_bytes?: number | null; proxy_freshness?: number | null } = {};
    if (changes.public !== undefined) set.public = changes.public ? 1 : 0;
    if (changes.quotaBytes !== undefined) set.quota_bytes = changes.quotaBytes;
    if (changes.proxyFreshness !== undefined) set.proxy_freshness = changes.proxyFreshness;
    if (Object.keys(set).length === 0) return (await this.find(name)) !== undefined;
    const result = await this.db.updateTable('projects').set(set).where('name', '=', name).executeTakeFirst();
    await this.changed(name);
    return Number(result.numUpdatedRows) > 0;
  }

  /** Deletes a project with its members and usage; its repositories go with it (cascade). */
  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('projects').where('name', '=', name).executeTakeFirst();
    await this.changed(name);
    return Number(result.numDeletedRows) > 0;
  }

  /** Drops project `name` from this cache and every replica's (a deleted project takes its repositories). */
  private async changed(name: string): Promise<void> {
    this.cache.delete(name);
    await this.changes.publish('project', name);
  }

  /** Number of repositories holding at least one manifest in the project. */
  async repositoryCount(projectId: number): Promise<number> {
    const row = await this.db
      .selectFrom('repositories as r')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('r.project_id', '=', projectId)
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Projects visible to a caller, by name: all for administrators; otherwise public ones and those
   * in `memberOf` (project ids). `nameLike` filters by substring.
   */
  async list(options: { all: boolean; memberOf: number[]; offset: number; limit: number; nameLike?: string; sort?: ProjectSort }): Promise<ProjectPage> {
    let query = this.db.selectFrom('projects');
    if (!options.all) {
      query = query.where((eb) => (options.memberOf.length > 0 ? eb.or([eb('public', '=', 1), eb('id', 'in', options.memberOf)]) : eb('public', '=', 1)));
    }
    if (options.nameLike) query = query.where('name', 'like', containing(options.nameLike));
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const sort = options.sort ?? 'name';
    const dir = sort.startsWith('-') ? 'desc' : 'asc';
    let ordered = query.selectAll('projects');
    if (sort.endsWith('createdAt')) ordered = ordered.orderBy('created_at', dir);
    else if (sort.endsWith('usage')) {
      const usage = sql<number>`coalesce((select sum(u.bytes) from project_usage u where u.project_id = projects.id), 0)`;
      ordered = ordered.orderBy(usage, dir);
    }
    const items = await ordered.orderBy('name', sort === '-name' ? 'desc' : 'asc').offset(options.offset).limit(options.limit).execute();
    return { items, total };
  }

  // ---- usage ----

  /** Bytes stored in the project, each blob and manifest counted once. */
  async usage(projectId: number): Promise<number> {
    const row = await this.usageSum.first(projectId);
    return Number(row?.total ?? 0);
  }

  /** Whether the project already counts `digest`. */
  async counts(projectId: number, digest: string): Promise<boolean> {
    return (await this.counted.first(projectId, digest)) !== undefined;
  }

  /**
   * Counts `digest` (of `size` bytes) in the project's usage unless it is already counted. The
   * addition goes to a random shard row, so concurrent pushes do not queue on one row. With `on`,
   * it is part of that transaction; otherwise it is a transaction of its own.
   */
  async charge(projectId: number, digest: string, size: number, on?: DB): Promise<void> {
    if (!on) return this.db.transaction().execute((tx) => this.charge(projectId, digest, size, tx));
    if ((await this.chargeBlob.run(on, projectId, digest, size)) === 0) return;
    await this.addUsage.run(on, projectId, randomInt(USAGE_SHARDS), size);
    await this.warnOnCrossing(on, projectId, digest, size);
  }

  /** Calls `onQuotaWarning` when the `added` bytes just counted took the project past the warning share. */
  private async warnOnCrossing(on: DB, projectId: number, digest: string, added: number): Promise<void> {
    if (!this.onQuotaWarning || added <= 0) return;
    const project = await on.selectFrom('projects').select(['name', 'quota_bytes']).where('id', '=', projectId).executeTakeFirst();
    if (!project || project.quota_bytes === null) return;
    const used = Number((await this.usageSum.firstOn(on, projectId))?.total ?? 0);
    const quotaBytes = Number(project.quota_bytes);
    const warnAt = quotaBytes * QUOTA_WARNING_SHARE;
    if (used - added <= warnAt && used > warnAt) await this.onQuotaWarning(on, { project: project.name, digest, quotaBytes, usageBytes: used });
  }

  /**
   * Counts each of `items` not yet counted in the project, within transaction `on`, and returns
   * the bytes this added. With `quotaDigest`, refuses with DENIED (rolling `on` back when the caller
   * lets the error through) if the added bytes bring the project over its quota — naming that digest.
   */
  async chargeAll(on: DB, projectId: number, items: readonly { digest: string; size: number }[], quotaDigest?: string): Promise<number> {
    let added = 0;
    const seen = new Set<string>();
    // Rows are locked in digest order, as every transaction charging or releasing them does (see
    // `release`): PostgreSQL would otherwise deadlock two pushes listing shared blobs in other orders.
    for (const item of [...items].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))) {
      if (seen.has(item.digest)) continue;
      seen.add(item.digest);
      if ((await this.chargeBlob.run(on, projectId, item.digest, item.size)) > 0) added += item.size;
    }
    if (added === 0) return 0;
    if (quotaDigest !== undefined) {
      const project = await on.selectFrom('projects').select(['name', 'quota_bytes']).where('id', '=', projectId).executeTakeFirst();
      if (project && project.quota_bytes !== null) {
        const used = Number((await this.usageSum.firstOn(on, projectId))?.total ?? 0);
        if (used + added > Number(project.quota_bytes)) throw new QuotaExceededError(project.name, Number(project.quota_bytes), used, added, quotaDigest);
      }
    }
    await this.addUsage.run(on, projectId, randomInt(USAGE_SHARDS), added);
    await this.warnOnCrossing(on, projectId, quotaDigest ?? items[0]!.digest, added);
    return added;
  }

  /**
   * Takes out of the project's accounting those of `digests` that no artifact of the project
   * references any more — no manifest of its repositories has that digest or lists it as a blob —
   * and, with `keepLinked`, that no repository of the project links either. Their rows go and the
   * usage falls by exactly their sizes, within transaction `on` (the caller's deletion), and the
   * bytes released are returned. Digests not counted are ignored.
   *
   * Concurrency: the candidate rows are locked first (a no-op update), and only then — in a later
   * statement — is it decided whether anything still references them. A push that charges the same
   * digest in its own transaction (`charge`/`chargeAll`, which lock the row too) is therefore
   * ordered with this one: if it committed first, its manifest is seen here and the digest stays;
   * if this commits first, its charge finds no row and counts the digest again. On SQLite, whose
   * transactions are serial, this holds trivially.
   */
  async release(on: DB, projectId: number, digests: Iterable<string>, options: { keepLinked?: boolean } = {}): Promise<number> {
    const all = [...new Set(digests)];
    let released = 0;
    for (let i = 0; i < all.length; i += RELEASE_BATCH) {
      const batch = all.slice(i, i + RELEASE_BATCH);
      await on.updateTable('project_blobs').set((eb) => ({ size: eb.ref('size') })).where('project_id', '=', projectId).where('digest', 'in', batch).execute();
      let query = on
        .selectFrom('project_blobs as pb')
        .select(['pb.digest', 'pb.size'])
        .where('pb.project_id', '=', projectId)
        .where('pb.digest', 'in', batch)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb.selectFrom('manifests as m')
                .innerJoin('repositories as r', 'r.id', 'm.repository_id')
                .select('m.digest')
                .whereRef('m.digest', '=', 'pb.digest')
                .whereRef('r.project_id', '=', 'pb.project_id'),
            ),
          ),
        )
        .where((eb) =>
          eb.not(
            eb.exists(
              eb.selectFrom('manifest_references as mr')
                .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
                .select('mr.child_digest')
                .whereRef('mr.child_digest', '=', 'pb.digest')
                .where('mr.kind', '=', 'blob')
                .whereRef('r.project_id', '=', 'pb.project_id'),
            ),
          ),
        );
      if (options.keepLinked) {
        query = query.where((eb) =>
          eb.not(
            eb.exists(
              eb.selectFrom('repository_blobs as rb')
                .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
                .select('rb.digest')
                .whereRef('rb.digest', '=', 'pb.digest')
                .whereRef('r.project_id', '=', 'pb.project_id'),
            ),
          ),
        );
      }
      const unreferenced = await query.execute();
      if (unreferenced.length === 0) continue;
      await on.deleteFrom('project_blobs').where('project_id', '=', projectId).where('digest', 'in', unreferenced.map((r) => r.digest)).execute();
      for (const row of unreferenced) released += Number(row.size);
    }
    // Shards only ever need to add up: one of them may go below zero.
    if (released > 0) await this.addUsage.run(on, projectId, randomInt(USAGE_SHARDS), -released);
    return released;
  }

  /**
   * Stops counting `digests` in every project, within transaction `on` (garbage collection took
   * them: nothing references them), lowering each project's usage by exactly their sizes; returns
   * the bytes per project.
   */
  async forget(on: DB, digests: readonly string[], options: { dryRun?: boolean } = {}): Promise<Map<number, number>> {
    const released = new Map<number, number>();
    if (digests.length === 0) return released;
    const counted = await on.selectFrom('project_blobs').select(['project_id', 'size']).where(oneOf(this.dialect, 'digest', digests)).execute();
    for (const row of counted) released.set(row.project_id, (released.get(row.project_id) ?? 0) + Number(row.size));
    if (options.dryRun || counted.length === 0) return released;
    await on.deleteFrom('project_blobs').where(oneOf(this.dialect, 'digest', digests)).execute();
    for (const [projectId, bytes] of released) await this.addUsage.run(on, projectId, randomInt(USAGE_SHARDS), -bytes);
    return released;
  }

  /**
   * Recomputes the project's accounting from what its artifacts reference: every manifest of its
   * repositories and every blob one of them lists (as `release` keeps them), each once. Within `on`.
   */
  async recount(on: DB, projectId: number): Promise<void> {
    await on.deleteFrom('project_blobs').where('project_id', '=', projectId).execute();
    await on.deleteFrom('project_usage').where('project_id', '=', projectId).execute();
    const manifests = await on
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.digest', (eb) => eb.fn.max('m.size').as('size')])
      .where('r.project_id', '=', projectId)
      .groupBy('m.digest')
      .execute();
    const blobs = await on
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select(['rb.digest', (eb) => eb.fn.max('rb.size').as('size')])
      .where('r.project_id', '=', projectId)
      .where((eb) =>
        eb.exists(
          eb.selectFrom('manifest_references as mr')
            .select('mr.child_digest')
            .whereRef('mr.repository_id', '=', 'rb.repository_id')
            .whereRef('mr.child_digest', '=', 'rb.digest')
            .where('mr.kind', '=', 'blob'),
        ),
      )
      .groupBy('rb.digest')
      .execute();
    await this.chargeAll(on, projectId, [...manifests, ...blobs].map((r) => ({ digest: r.digest, size: Number(r.size) })));
  }
}

/** Candidate digests examined per statement by `release` (bound parameters stay far below every limit). */
const RELEASE_BATCH = 500;

/** The share of its quota past which a push makes a project's `quota.warning` event. */
export const QUOTA_WARNING_SHARE = 0.85;

/**
 * DENIED for a push that would bring `project` over its quota. The client reads the message (naming
 * quota, usage and size) and the detail; Berth's own log and audit read the typed figures, so a
 * quota refusal is never mistaken for a missing permission, which is DENIED too.
 */
export class QuotaExceededError extends RegistryError {
  constructor(
    readonly project: string,
    readonly quotaBytes: number,
    /** Bytes the project used when the push was refused. */
    readonly usageBytes: number,
    /** Bytes the refused push would have added. */
    readonly sizeBytes: number,
    /** What was refused. */
    readonly digest: string,
  ) {
    super(
      'DENIED',
      `quota exceeded: project "${project}" uses ${usageBytes} of ${quotaBytes} bytes; storing ${digest} (${sizeBytes} bytes) would bring it to ${usageBytes + sizeBytes}`,
      { project, quotaBytes, usedBytes: usageBytes, size: sizeBytes, digest },
    );
  }
}
