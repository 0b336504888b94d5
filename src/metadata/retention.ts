import { setImmediate as yieldToRequests } from 'node:timers/promises';
import { sql } from 'kysely';
import type { DB } from './dialect.ts';
import { normalizeJob } from './jobs.ts';
import type { JobRow } from './schema.ts';

/** A project's tag retention policy as stored (src/lifecycle/retention/rules.ts validates the rules). */
export interface StoredRetentionPolicy {
  projectId: number;
  /** The rules as they were set (JSON values; parse them with the lifecycle's schema). */
  rules: unknown[];
  /** Cron expression (UTC) of scheduled runs; null: manual runs only. */
  cron: string | null;
  updatedBy: string | null;
  updatedAt: number;
}

/** One artifact of a project as retention reads it: a top-level manifest with its tags and times. */
export interface RetentionArtifact {
  repository: string;
  digest: string;
  /** Its tags, by name. */
  tags: string[];
  /** When it was last pushed (ms): the manifest's creation, or the latest tag pushed onto it. */
  pushedAt: number;
  /** When it was last pulled (ms); null: never. */
  pulledAt: number | null;
}

/** The job kind of retention runs, and the schedule name and exclusive key of a project's runs. */
export const RETENTION_KIND = 'retention';
export function retentionKey(project: string): string {
  return `${RETENTION_KIND}:${project}`;
}

/** The payload of a retention job: which project, and whether it only reports. */
export interface RetentionPayload {
  project: string;
  dryRun: boolean;
}

/** The payload's JSON text: `project` first, so that a project's runs are found by their payload's start (see `runs`). */
export function retentionPayloadText(payload: RetentionPayload): string {
  return JSON.stringify({ project: payload.project, dryRun: payload.dryRun });
}

/** Repositories counted in one query, and manifests per read: a project of any size is read in bounded queries. */
const REPOSITORY_CHUNK = 200;
const PAGE = 2000;

/**
 * Consecutive repositories grouped so that a group holds at most PAGE manifests (and at most
 * REPOSITORY_CHUNK repositories); a repository holding more is a group of its own.
 */
function groups<R extends { size: number }>(repositories: readonly R[]): R[][] {
  const result: R[][] = [];
  let current: R[] = [];
  let size = 0;
  for (const repository of repositories) {
    if (current.length > 0 && (size + repository.size > PAGE || current.length >= REPOSITORY_CHUNK)) {
      result.push(current);
      current = [];
      size = 0;
    }
    current.push(repository);
    size += repository.size;
  }
  if (current.length > 0) result.push(current);
  return result;
}

/**
 * Tag retention: each project's policy (`retention_policies`) with its schedule (a row of
 * `schedules` named `retention:<project>`, kind `retention`, written in the same transaction), the
 * project's artifacts as retention evaluates them, and the project's runs. Errors: only the
 * database's own.
 */
export class RetentionStore {
  constructor(private readonly db: DB) {}

  /** The policy of project `projectId`; undefined when it has none. */
  async get(projectId: number): Promise<StoredRetentionPolicy | undefined> {
    const row = await this.db.selectFrom('retention_policies').selectAll().where('project_id', '=', projectId).executeTakeFirst();
    if (!row) return undefined;
    return { projectId: Number(row.project_id), rules: JSON.parse(row.rules) as unknown[], cron: row.cron, updatedBy: row.updated_by, updatedAt: Number(row.updated_at) };
  }

  /**
   * Sets (creates or replaces) the policy of `project`. With a cron expression its schedule is
   * created or changed, without one removed, in the same transaction. The caller validated
   * `rules` and `cron` (an invalid cron expression is skipped and logged by the scheduler).
   */
  async set(project: { id: number; name: string }, policy: { rules: readonly unknown[]; cron: string | null }, updatedBy: string | null, now = Date.now()): Promise<void> {
    const values = { project_id: project.id, rules: JSON.stringify(policy.rules), cron: policy.cron, updated_by: updatedBy, updated_at: now };
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('retention_policies')
        .values(values)
        .onConflict((oc) => oc.column('project_id').doUpdateSet({ rules: values.rules, cron: values.cron, updated_by: values.updated_by, updated_at: values.updated_at }))
        .execute();
      const name = retentionKey(project.name);
      if (policy.cron === null) {
        await trx.deleteFrom('schedules').where('name', '=', name).execute();
        return;
      }
      const payload = retentionPayloadText({ project: project.name, dryRun: false });
      await trx
        .insertInto('schedules')
        .values({ name, kind: RETENTION_KIND, cron: policy.cron, payload, enabled: 1, next_run_at: null, last_run_at: null, created_at: now })
        .onConflict((oc) => oc.column('name').doUpdateSet({ kind: RETENTION_KIND, cron: policy.cron!, payload, enabled: 1, next_run_at: null }))
        .execute();
    });
  }

  /** Removes the policy of `project` and its schedule; false when it had none. */
  async delete(project: { id: number; name: string }): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('schedules').where('name', '=', retentionKey(project.name)).execute();
      const result = await trx.deleteFrom('retention_policies').where('project_id', '=', project.id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  /**
   * Forgets the schedule of project `name`, which is being deleted (its policy row goes with the
   * project: foreign key, cascading). Call it before deleting the project.
   */
  async projectDeleted(name: string): Promise<void> {
    await this.db.deleteFrom('schedules').where('name', '=', retentionKey(name)).execute();
  }

  /**
   * Every artifact of project `projectId`: the manifests of its repositories except children of an
   * index in the same repository (they live and go with their index) and referrers whose subject
   * is in the repository (signatures, SBOMs: they belong to their subject, as Harbor's accessories
   * do), each with its tags. Read in bounded plain reads — never a transaction, so no snapshot or
   * lock is held across the read and concurrent pushes never wait for it (on SQLite each read also
   * holds the event loop only briefly): repositories are read a group at a time, a group holding
   * about PAGE manifests; a larger repository alone, in pages along its primary key. `onPage` is
   * told how many artifacts were read so far; `signal` stops the read between reads.
   */
  async artifacts(projectId: number, options: { onPage?: (read: number) => void; signal?: AbortSignal } = {}): Promise<RetentionArtifact[]> {
    const repositories = await this.db.selectFrom('repositories').select(['id', 'name']).where('project_id', '=', projectId).orderBy('id').execute();
    const sizes = new Map<number, number>();
    for (let i = 0; i < repositories.length; i += REPOSITORY_CHUNK) {
      const ids = repositories.slice(i, i + REPOSITORY_CHUNK).map((r) => Number(r.id));
      const rows = await this.db.selectFrom('manifests').select(['repository_id', (eb) => eb.fn.countAll<number>().as('n')]).where('repository_id', 'in', ids).groupBy('repository_id').execute();
      for (const row of rows) sizes.set(Number(row.repository_id), Number(row.n));
    }
    const result: RetentionArtifact[] = [];
    for (const group of groups(repositories.map((r) => ({ id: Number(r.id), name: r.name, size: sizes.get(Number(r.id)) ?? 0 })))) {
      options.signal?.throwIfAborted();
      const names = new Map(group.map((r) => [r.id, r.name]));
      const tags = await this.tagsOf([...names.keys()], options.signal);
      const add = (rows: { repository_id: number; digest: string; created_at: number; last_pulled_at: number | null }[]) => {
        for (const row of rows) {
          const repositoryId = Number(row.repository_id);
          const tagged = tags.get(repositoryId)?.get(row.digest);
          const created = Number(row.created_at);
          result.push({
            repository: names.get(repositoryId)!,
            digest: row.digest,
            tags: tagged?.names ?? [],
            pushedAt: tagged && tagged.latest > created ? tagged.latest : created,
            pulledAt: row.last_pulled_at === null ? null : Number(row.last_pulled_at),
          });
        }
        options.onPage?.(result.length);
      };
      // Between groups: SQLite's reads run on the event loop, and requests must get their turn.
      await yieldToRequests();
      if (group.length > 1) {
        add(await this.topLevel([...names.keys()]).execute());
        continue;
      }
      // One large repository: keyset pages along (repository_id, digest), its primary key.
      for (let after: string | undefined; ; ) {
        options.signal?.throwIfAborted();
        let query = this.topLevel([group[0]!.id]).limit(PAGE);
        if (after !== undefined) query = query.where('m.digest', '>', after);
        const rows = await query.execute();
        add(rows);
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.digest;
        await yieldToRequests();
      }
    }
    return result;
  }

  /** The top-level manifests of `repositoryIds` (see `artifacts`), in primary key order. */
  private topLevel(repositoryIds: number[]) {
    return this.db
      .selectFrom('manifests as m')
      .select(['m.repository_id', 'm.digest', 'm.created_at', 'm.last_pulled_at'])
      .where('m.repository_id', 'in', repositoryIds)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.repository_id', '=', 'm.repository_id').whereRef('r.child_digest', '=', 'm.digest').where('r.kind', '=', 'manifest'),
          ),
        ),
      )
      .where((eb) =>
        eb.or([
          eb('m.subject_digest', 'is', null),
          eb.not(eb.exists(eb.selectFrom('manifests as s').select('s.digest').whereRef('s.repository_id', '=', 'm.repository_id').whereRef('s.digest', '=', 'm.subject_digest'))),
        ]),
      )
      .orderBy('m.repository_id')
      .orderBy('m.digest');
  }

  /**
   * The tags of `repositoryIds`: repository → digest → tag names (sorted) and the latest tag push.
   * One repository's are read in keyset pages along its primary key (repository_id, name); a
   * group's, whose repositories hold few manifests, at once.
   */
  private async tagsOf(repositoryIds: number[], signal?: AbortSignal): Promise<Map<number, Map<string, { names: string[]; latest: number }>>> {
    const result = new Map<number, Map<string, { names: string[]; latest: number }>>();
    const add = (rows: { repository_id: number; name: string; manifest_digest: string; updated_at: number }[]) => {
      for (const row of rows) {
        const repositoryId = Number(row.repository_id);
        let digests = result.get(repositoryId);
        if (!digests) result.set(repositoryId, (digests = new Map()));
        const updated = Number(row.updated_at);
        const known = digests.get(row.manifest_digest);
        if (known) {
          known.names.push(row.name);
          if (updated > known.latest) known.latest = updated;
        } else digests.set(row.manifest_digest, { names: [row.name], latest: updated });
      }
    };
    const query = () => this.db.selectFrom('tags').select(['repository_id', 'name', 'manifest_digest', 'updated_at']).where('repository_id', 'in', repositoryIds).orderBy('repository_id').orderBy('name');
    if (repositoryIds.length > 1) {
      add(await query().execute());
      return result;
    }
    for (let after: string | undefined; ; ) {
      signal?.throwIfAborted();
      let page = query().limit(PAGE);
      if (after !== undefined) page = page.where('name', '>', after);
      const rows = await page.execute();
      add(rows);
      if (rows.length < PAGE) return result;
      after = rows[rows.length - 1]!.name;
    }
  }

  /**
   * The retention runs of project `project`, newest first, with the total: jobs of kind
   * `retention` whose payload names the project (written by `retentionPayloadText`).
   */
  async runs(project: string, query: { offset: number; limit: number }): Promise<{ items: JobRow[]; total: number }> {
    // Project names hold only [a-z0-9._-]: `_` is the one LIKE wildcard among them, escaped here.
    const prefix = `{"project":${JSON.stringify(project)},`.replace(/[\\%_]/g, '\\$&');
    const select = this.db.selectFrom('jobs').where('kind', '=', RETENTION_KIND).where(sql<boolean>`payload like ${`${prefix}%`} escape '\\'`);
    const total = Number((await select.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await select.selectAll().orderBy('id', 'desc').offset(query.offset).limit(query.limit).execute();
    return { items: rows.map(normalizeJob), total };
  }
}
