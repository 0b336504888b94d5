import { projectOf } from '../domain/names.ts';
import { relaxed, type DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { ProjectStore } from './projects.ts';

/** Repositories and which blobs each may serve. */
export class RepositoryStore {
  /** name → id; repositories are never renamed, and a delete removes its entry. */
  private readonly ids = new Map<string, number>();

  private readonly byName;
  private readonly sizeOf;
  private readonly link;

  constructor(private readonly db: DB, private readonly projects: ProjectStore) {
    this.byName = new PreparedQuery(db, (name: string) => db.selectFrom('repositories').select('id').where('name', '=', name));
    this.sizeOf = new PreparedQuery(db, (repositoryId: number, digest: string) =>
      db.selectFrom('repository_blobs').select('size').where('repository_id', '=', repositoryId).where('digest', '=', digest),
    );
    this.link = new PreparedQuery(db, (repositoryId: number, digest: string, size: number, createdAt: number) =>
      db
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, digest, size, created_at: createdAt })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()),
    );
  }

  /** The id of repository `name`, or undefined when it has never held anything. */
  async id(name: string): Promise<number | undefined> {
    const cached = this.ids.get(name);
    if (cached !== undefined) return cached;
    const row = await this.byName.first(name);
    if (row) this.ids.set(name, row.id);
    return row?.id;
  }

  /**
   * The id of repository `name`, creating it — and its project, when an administrator pushes into a
   * project that does not exist yet — when needed (safe under concurrency). The creation is a
   * relaxed commit: a repository is only ever created for a blob or manifest about to be recorded
   * durably, later in the log, which cannot then be kept without it.
   */
  async ensure(name: string): Promise<number> {
    const existing = await this.id(name);
    if (existing !== undefined) return existing;
    const projectId = await this.projects.ensure(projectOf(name), undefined);
    const insert = this.db
      .insertInto('repositories')
      .values({ name, project_id: projectId, created_at: Date.now() })
      .onConflict((oc) => oc.column('name').doNothing());
    await this.db.executeQuery(relaxed(insert.compile()));
    return (await this.id(name))!;
  }

  /** Links a blob into a repository (idempotent); with `on`, as part of that transaction. */
  async linkBlob(repositoryId: number, digest: string, size: number, on?: DB): Promise<void> {
    await this.link.run(on, repositoryId, digest, size, Date.now());
  }

  /** The size of a blob linked into the repository, or undefined when it is not linked there. */
  async blobSize(repositoryId: number, digest: string): Promise<number | undefined> {
    const row = await this.sizeOf.first(repositoryId, digest);
    return row === undefined ? undefined : Number(row.size);
  }

  /** Sizes of those of `digests` linked into the repository. */
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

  /** Removes a blob's link from a repository; false when it was not linked. */
  async unlinkBlob(repositoryId: number, digest: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('repository_blobs')
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
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
    if (nameLike) query = query.where('r.name', 'like', `%${nameLike.replace(/[%_\\]/g, '')}%`);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.select(['r.id', 'r.name', 'r.created_at']).orderBy('r.name').offset(offset).limit(limit).execute();
    return { items: items.map((r) => ({ ...r, created_at: Number(r.created_at) })), total };
  }

  /**
   * Repositories holding at least one manifest, by name: in `projectIds` (every project when
   * undefined), optionally only names containing `nameLike`.
   */
  async list(options: { projectIds?: readonly number[]; offset: number; limit: number; nameLike?: string }): Promise<{ items: { id: number; name: string; created_at: number }[]; total: number }> {
    if (options.projectIds && options.projectIds.length === 0) return { items: [], total: 0 };
    let query = this.db
      .selectFrom('repositories as r')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')));
    if (options.projectIds) query = query.where('r.project_id', 'in', options.projectIds);
    if (options.nameLike) query = query.where('r.name', 'like', `%${options.nameLike.replace(/[%_\\]/g, '')}%`);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.select(['r.id', 'r.name', 'r.created_at']).orderBy('r.name').offset(options.offset).limit(options.limit).execute();
    return { items: items.map((r) => ({ ...r, created_at: Number(r.created_at) })), total };
  }

  /** Deletes a repository with its manifests, tags and blob links; false when unknown. */
  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('repositories').where('name', '=', name).executeTakeFirst();
    this.ids.delete(name);
    return Number(result.numDeletedRows) > 0;
  }

  /** Gives repositories created before projects existed the project their name says (run at start). */
  async adoptOrphans(): Promise<void> {
    const orphans = await this.db.selectFrom('repositories').select(['id', 'name']).where('project_id', 'is', null).execute();
    for (const repo of orphans) {
      const projectId = await this.projects.ensure(projectOf(repo.name), undefined);
      await this.db.updateTable('repositories').set({ project_id: projectId }).where('id', '=', repo.id).execute();
    }
  }
}
