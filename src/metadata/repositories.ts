import { projectOf } from '../domain/names.ts';
import type { ChangeFeed } from './changes.ts';
import { containing, relaxed, type DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { BlobRecords } from './blobs.ts';
import { retryingConflicts } from './conflicts.ts';
import { ImmutableTagError, firstImmutable, type ImmutableCheck } from './immutability.ts';
import { sqlDialectOf } from './jobs.ts';
import type { ProjectStore } from './projects.ts';

/** Orders of a repository list: a field, descending when prefixed with "-". */
export const REPOSITORY_SORTS = ['name', '-name', '-createdAt', 'createdAt'] as const;
export type RepositorySort = (typeof REPOSITORY_SORTS)[number];

/**
 * Repositories and which blobs each may serve.
 *
 * Repository ids are cached by name: repositories are never renamed, and a delete drops the entry
 * here and, through the change feed, on every replica (a project delete, which takes its
 * repositories, drops them all). Until a replica hears of a delete, its entry names a repository
 * that is gone — never another one: PostgreSQL never reuses an id, and on SQLite the one process
 * drops it at once. So a cached id can make a lookup miss, never find the wrong thing; `lookup`
 * checks such a miss against the database where other replicas write, and writes use `currentId`.
 */
export class RepositoryStore {
  /** name → id (see the class comment). */
  private readonly ids = new Map<string, number>();

  private readonly byName;
  private readonly sizeOf;
  private readonly link;

  constructor(private readonly db: DB, private readonly projects: ProjectStore, private readonly changes: ChangeFeed, private readonly blobs: BlobRecords) {
    changes.subscribe('repository', (name) => (name === undefined ? this.ids.clear() : this.ids.delete(name)));
    changes.subscribe('project', () => this.ids.clear());
    this.byName = new PreparedQuery(db, (name: string) => db.selectFrom('repositories').select('id').where('name', '=', name));
    // A link serves the blob only while the repository's project accounts for it (see `blobSize`).
    this.sizeOf = new PreparedQuery(db, (repositoryId: number, digest: string) =>
      db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('project_blobs as pb', (join) => join.onRef('pb.project_id', '=', 'r.project_id').onRef('pb.digest', '=', 'rb.digest'))
        .select('rb.size')
        .where('rb.repository_id', '=', repositoryId)
        .where('rb.digest', '=', digest),
    );
    this.link = new PreparedQuery(db, (repositoryId: number, digest: string, size: number, createdAt: number) =>
      db
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, digest, size, created_at: createdAt })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()),
    );
  }

  /**
   * The id of repository `name`, or undefined when it has never held anything. From the cache: on
   * PostgreSQL, for a moment after another replica deleted the repository, the deleted one's id
   * (see the class comment); reads go through `lookup`, writes through `currentId`.
   */
  async id(name: string): Promise<number | undefined> {
    const cached = this.changes.live ? this.ids.get(name) : undefined;
    return cached ?? this.read(name);
  }

  /** The id of repository `name` as the database has it now (and cached). */
  async currentId(name: string): Promise<number | undefined> {
    return this.changes.shared ? this.read(name) : this.id(name);
  }

  /**
   * `read(id)` for repository `name`'s id: undefined when the repository does not exist or `read`
   * finds nothing. A miss with a cached id is checked against the database when other replicas
   * share it (the id may be of a repository deleted there, and the name taken again), and `read`
   * runs once more with the current id — so a hit costs no more than the lookup it makes.
   */
  async lookup<T>(name: string, read: (id: number) => Promise<T | undefined>): Promise<T | undefined> {
    const cached = this.changes.live ? this.ids.get(name) : undefined;
    if (cached !== undefined) {
      const found = await read(cached);
      if (found !== undefined || !this.changes.shared) return found;
    }
    const id = await this.read(name);
    return id === undefined || id === cached ? undefined : read(id);
  }

  /** Reads the id of `name` from the database, caching it unless a change was heard meanwhile. */
  private async read(name: string): Promise<number | undefined> {
    const repositories = this.changes.version('repository');
    const projects = this.changes.version('project');
    const row = await this.byName.first(name);
    if (!row) this.ids.delete(name);
    else if (this.changes.unchangedSince('repository', repositories) && this.changes.unchangedSince('project', projects)) this.ids.set(name, row.id);
    return row?.id;
  }

  /**
   * The id of repository `name`, creating it — and its project (`library` for a name of one
   * segment), when an administrator pushes into a project that does not exist yet — when needed (safe under concurrency). The creation is a
   * relaxed commit: a repository is only ever created for a blob or manifest about to be recorded
   * durably, later in the log, which cannot then be kept without it.
   */
  async ensure(name: string): Promise<number> {
    const existing = await this.currentId(name);
    if (existing !== undefined) return existing;
    const projectId = await this.projects.ensure(projectOf(name), undefined);
    const insert = this.db
      .insertInto('repositories')
      .values({ name, project_id: projectId, created_at: Date.now() })
      .onConflict((oc) => oc.column('name').doNothing());
    await this.db.executeQuery(relaxed(insert.compile()));
    return (await this.read(name))!;
  }

  /** Links a blob into a repository (idempotent); with `on`, as part of that transaction. */
  async linkBlob(repositoryId: number, digest: string, size: number, on?: DB): Promise<void> {
    await this.link.run(on, repositoryId, digest, size, Date.now());
  }

  /**
   * The size of a blob the repository serves, or undefined when it serves none of that digest. It
   * serves the blobs linked into it that its project accounts for: those uploaded or mounted into
   * the project and not yet referenced by a manifest (a push in progress), and those some artifact
   * of the project references. A blob whose last referencing artifact was deleted keeps its link
   * (see `blobSizes`) but is no longer served, just as it is no longer counted.
   */
  async blobSize(repositoryId: number, digest: string): Promise<number | undefined> {
    const row = await this.sizeOf.first(repositoryId, digest);
    return row === undefined ? undefined : Number(row.size);
  }

  /**
   * Sizes of those of `digests` linked into the repository, served or not: a manifest pushed again
   * after its deletion may reference the blobs it had (as in Distribution before garbage collection);
   * its push counts them again, within the project's quota (`ManifestStore.put`).
   */
  async blobSizes(repositoryId: number, digests: string[]): Promise<Map<string, number>> {
    if (digests.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('repository_blobs')
      .select(['digest', 'size'])
      .where('repository_id', '=', repositoryId)
      .where('digest', 'in', digests)
      .execute();
    return new Map(rows.map((r) => [r.digest, Number(r.size)]));
  }

  /**
   * Removes a blob's link from a repository; false when it was not linked. In the same transaction
   * the project stops counting the blob if no artifact of the project references it and no other
   * repository of the project links it, and the blob's grace period before collection starts again.
   */
  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      // Its row before the link, as garbage collection locks them (see BlobRecords).
      await this.blobs.touch(tx, [digest]);
      const result = await tx.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      const projectId = await this.projectIdOf(tx, repositoryId);
      if (projectId !== null) await this.projects.release(tx, projectId, [digest], { keepLinked: true });
      return true;
    });
  }

  /**
   * Repository names holding at least one manifest, sorted, after `last`, at most `limit`; with
   * `projectIds`, only those in these projects.
   */
  async catalog(limit: number, last?: string, projectIds?: readonly number[]): Promise<string[]> {
    if (projectIds && projectIds.length === 0) return [];
    let query = this.db
      .selectFrom('repositories as r')
      .select('r.name')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .orderBy('r.name')
      .limit(limit);
    if (last !== undefined) query = query.where('r.name', '>', last);
    if (projectIds) query = query.where('r.project_id', 'in', projectIds);
    return (await query.execute()).map((r) => r.name);
  }

  /** Repositories (with at least one manifest) of a project, by name. */
  async inProject(projectId: number, offset: number, limit: number, nameLike?: string): Promise<{ items: { id: number; name: string; created_at: number }[]; total: number }> {
    let query = this.db
      .selectFrom('repositories as r')
      .where('r.project_id', '=', projectId)
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')));
    if (nameLike) query = query.where('r.name', 'like', containing(nameLike));
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.select(['r.id', 'r.name', 'r.created_at']).orderBy('r.name').offset(offset).limit(limit).execute();
    return { items: items.map((r) => ({ ...r, created_at: Number(r.created_at) })), total };
  }

  /**
   * Repositories holding at least one manifest, by name: in `projectIds` (every project when
   * undefined), optionally only names containing `nameLike`.
   */
  async list(options: { projectIds?: readonly number[]; offset: number; limit: number; nameLike?: string; sort?: RepositorySort }): Promise<{ items: { id: number; name: string; created_at: number }[]; total: number }> {
    if (options.projectIds && options.projectIds.length === 0) return { items: [], total: 0 };
    let query = this.db
      .selectFrom('repositories as r')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')));
    if (options.projectIds) query = query.where('r.project_id', 'in', options.projectIds);
    if (options.nameLike) query = query.where('r.name', 'like', containing(options.nameLike));
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const sort = options.sort ?? 'name';
    const dir = sort.startsWith('-') ? 'desc' : 'asc';
    const ordered = sort.endsWith('createdAt') ? query.orderBy('r.created_at', dir).orderBy('r.name', dir) : query.orderBy('r.name', dir);
    const items = await ordered.select(['r.id', 'r.name', 'r.created_at']).offset(options.offset).limit(options.limit).execute();
    return { items: items.map((r) => ({ ...r, created_at: Number(r.created_at) })), total };
  }

  /**
   * Deletes a repository with its manifests, tags and blob links; false when unknown. In the same
   * transaction, what it held — its manifests, the blobs they list, the blobs linked into it — leaves
   * its project's accounting unless another artifact of the project still references it.
   * With `immutable`, a repository holding a tag it covers is not deleted (ImmutableTagError,
   * DENIED — as in Harbor, where deleting it fails on that tag's artifact), and nothing of it is.
   */
  async delete(name: string, immutable?: ImmutableCheck): Promise<boolean> {
    try {
      // A deadlock victim on PostgreSQL (a push or GC locking the same rows) was rolled back whole: try again.
      return await retryingConflicts(() => this.db.transaction().execute(async (tx) => {
        const repo = await tx.selectFrom('repositories').select(['id', 'project_id']).where('name', '=', name).executeTakeFirst();
        if (!repo) return false;
        if (immutable) {
          // Every push key-share locks the repository's row (ManifestStore.put): with it locked here
          // (PostgreSQL; SQLite is serial), pushes in flight have committed — their tags are read
          // next — and later ones wait, then find the repository gone or kept.
          if (sqlDialectOf(tx) === 'postgres') await tx.selectFrom('repositories').select('id').where('id', '=', repo.id).forUpdate().execute();
          const tags = await tx.selectFrom('tags').select('name').where('repository_id', '=', repo.id).orderBy('name').execute();
          const refused = firstImmutable(immutable, tags.map((t) => t.name));
          if (refused) throw new ImmutableTagError(refused.rule, name, refused.tag, 'delete-repository');
        }
        const held = new Set<string>();
        for (const r of await tx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', repo.id).execute()) held.add(r.digest);
        for (const r of await tx.selectFrom('manifests').select('digest').where('repository_id', '=', repo.id).execute()) held.add(r.digest);
        for (const r of await tx.selectFrom('manifest_references').select('child_digest').where('repository_id', '=', repo.id).where('kind', '=', 'blob').execute()) held.add(r.child_digest);
        await tx.deleteFrom('repositories').where('id', '=', repo.id).execute();
        // What it held may become garbage: its grace period starts now (see BlobRecords).
        await this.blobs.touch(tx, held);
        if (repo.project_id !== null) await this.projects.release(tx, repo.project_id, held);
        return true;
      }));
    } finally {
      this.ids.delete(name);
      await this.changes.publish('repository', name);
    }
  }

  /**
   * Gives repositories created before projects existed the project their name says, and counts
   * what they hold there (run at start; migration 0005 already did it for databases it upgraded).
   */
  async adoptOrphans(): Promise<void> {
    const orphans = await this.db.selectFrom('repositories').select(['id', 'name']).where('project_id', 'is', null).execute();
    const adopted = new Set<number>();
    for (const repo of orphans) {
      const projectId = await this.projects.ensure(projectOf(repo.name), undefined);
      await this.db.updateTable('repositories').set({ project_id: projectId }).where('id', '=', repo.id).execute();
      adopted.add(projectId);
    }
    for (const projectId of adopted) await this.db.transaction().execute((tx) => this.projects.recount(tx, projectId));
  }

  /** The project of a repository (null for one not adopted yet), read within `on`. */
  private async projectIdOf(on: DB, repositoryId: number): Promise<number | null> {
    return (await on.selectFrom('repositories').select('project_id').where('id', '=', repositoryId).executeTakeFirst())?.project_id ?? null;
  }
}
