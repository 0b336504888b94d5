// Tag immutability rules per project, cached for the push path, and the refusal that names the rule.
import type { Selectable } from 'kysely';
import { RegistryError } from '../domain/errors.ts';
import { projectOf } from '../domain/names.ts';
import type { Selector } from '../domain/patterns.ts';
import { immutableBy, type ImmutabilityRule } from '../lifecycle/immutability.ts';
import type { ChangeFeed } from './changes.ts';
import type { DB } from './dialect.ts';
import { sqlDialectOf, type SqlDialect } from './jobs.ts';
import type { ProjectStore } from './projects.ts';
import type { ImmutabilityRulesTable } from './schema.ts';

/** Rules a project may have (as Harbor allows). */
export const MAX_IMMUTABILITY_RULES = 15;

/** A rule as stored, with who made it and when. */
export interface StoredImmutabilityRule extends ImmutabilityRule {
  projectId: number;
  createdBy: string | null;
  createdAt: number;
}

/** A rule to add. Patterns are valid (`patternProblem` passed): the store does not check them again. */
export interface NewImmutabilityRule {
  repositories: Selector;
  tags: Selector;
  disabled?: boolean;
  createdBy?: string | null;
}

/** What `add` and `update` answer: the rule, or why nothing changed. */
export type RuleChange = { rule: StoredImmutabilityRule } | { refused: 'limit' | 'duplicate' };

/**
 * The rule that makes a tag of one repository immutable, if any (the caller decided which
 * repository). Passed into the transactions that move or delete tags (ManifestStore,
 * RepositoryStore), so that the decision is taken on the tags those transactions actually change.
 */
export type ImmutableCheck = (tag: string) => ImmutabilityRule | undefined;

/** What a refused change would have done to an immutable tag. */
export type ImmutableAction = 'move' | 'delete-tag' | 'delete-artifact' | 'delete-repository';

/** `rule 3 (repositories matching "**", tags matching "v*")`; patterns quoted as JSON strings. */
export function describeRule(rule: ImmutabilityRule): string {
  const part = (what: string, s: Selector) => `${what} ${s.exclude ? 'not matching' : 'matching'} ${JSON.stringify(s.pattern)}`;
  return `rule ${rule.id} (${part('repositories', rule.repositories)}, ${part('tags', rule.tags)})`;
}

/**
 * DENIED (403) for a change an immutability rule forbids, naming the rule (its id and patterns, set
 * by a project administrator), the repository and the tag — both validated names — and nothing else
 * the client sent.
 */
export class ImmutableTagError extends RegistryError {
  constructor(
    readonly rule: ImmutabilityRule,
    readonly repository: string,
    readonly tag: string,
    readonly action: ImmutableAction,
  ) {
    const named = describeRule(rule);
    const message = {
      move: `tag "${tag}" of repository "${repository}" is immutable by ${named}: it cannot be moved to another digest (pushing the digest it has again is allowed)`,
      'delete-tag': `tag "${tag}" of repository "${repository}" is immutable by ${named}: it cannot be deleted`,
      'delete-artifact': `the artifact carries tag "${tag}" of repository "${repository}", immutable by ${named}: it cannot be deleted`,
      'delete-repository': `repository "${repository}" holds tag "${tag}", immutable by ${named}: the repository cannot be deleted`,
    }[action];
    super('DENIED', message, {
      reason: 'immutable-tag',
      repository,
      tag,
      rule: { id: rule.id, repositories: { ...rule.repositories }, tags: { ...rule.tags } },
    });
  }
}

/** The first of `tags` that `check` makes immutable, with the rule that does; undefined when none is. */
export function firstImmutable(check: ImmutableCheck | undefined, tags: Iterable<string>): { tag: string; rule: ImmutabilityRule } | undefined {
  if (check === undefined) return undefined;
  for (const tag of tags) {
    const rule = check(tag);
    if (rule) return { tag, rule };
  }
  return undefined;
}

type Row = Selectable<ImmutabilityRulesTable>;

function toRule(row: Row): StoredImmutabilityRule {
  return {
    id: Number(row.id),
    projectId: Number(row.project_id),
    repositories: { pattern: row.repository_pattern, exclude: Number(row.repository_exclude) === 1 },
    tags: { pattern: row.tag_pattern, exclude: Number(row.tag_exclude) === 1 },
    disabled: Number(row.disabled) === 1,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  };
}

function sameSelectors(a: ImmutabilityRule, b: { repositories: Selector; tags: Selector }): boolean {
  return a.repositories.pattern === b.repositories.pattern && a.repositories.exclude === b.repositories.exclude && a.tags.pattern === b.tags.pattern && a.tags.exclude === b.tags.exclude;
}

/**
 * The `immutability_rules` table. `rules(projectId)` — what every tagged push and every deletion
 * consults — is served from memory; every change made through this store drops the project's entry
 * on every replica (the `immutability` topic of the change feed), a project created or deleted drops
 * them all (SQLite may give a deleted project's id to the next one), and entries are re-read after
 * `CACHE_MS` anyway.
 */
export class ImmutabilityStore {
  private readonly cache = new Map<number, { rules: readonly ImmutabilityRule[]; at: number }>();
  private static readonly CACHE_MS = 5_000;
  private readonly dialect: SqlDialect;

  constructor(private readonly db: DB, private readonly changes: ChangeFeed, private readonly projects: ProjectStore) {
    this.dialect = sqlDialectOf(db);
    changes.subscribe('immutability', (key) => (key === undefined ? this.cache.clear() : this.cache.delete(Number(key))));
    changes.subscribe('project', () => this.cache.clear());
  }

  /**
   * The project's rules, enabled and disabled, oldest first (use `immutableBy` to apply them). Never
   * staler than a change feed notification's trip (or `CACHE_MS` when notifications are lost).
   */
  async rules(projectId: number): Promise<ImmutabilityRule[]> {
    const hit = this.cache.get(projectId);
    if (hit && this.changes.live && Date.now() - hit.at < ImmutabilityStore.CACHE_MS) return [...hit.rules];
    const since = this.changes.version('immutability');
    const projectsSince = this.changes.version('project');
    const rules = (await this.list(projectId)).map(({ id, repositories, tags, disabled }) => ({ id, repositories, tags, disabled }));
    if (this.changes.unchangedSince('immutability', since) && this.changes.unchangedSince('project', projectsSince)) {
      if (this.cache.size >= 10_000) this.cache.clear();
      // Frozen: every caller shares these objects.
      const shared = rules.map((r) => Object.freeze({ ...r, repositories: Object.freeze(r.repositories), tags: Object.freeze(r.tags) }));
      this.cache.set(projectId, { rules: Object.freeze(shared), at: Date.now() });
    }
    return rules;
  }

  /**
   * The check for tags of `repository` (a full name: its project is the first component), or
   * undefined when no enabled rule of its project could apply — the common case, which then costs
   * nothing more than the cached lookup.
   */
  async checkFor(repository: string): Promise<ImmutableCheck | undefined> {
    const project = await this.projects.find(projectOf(repository));
    if (!project) return undefined;
    const rules = await this.rules(project.id);
    if (!rules.some((r) => !r.disabled)) return undefined;
    return (tag) => immutableBy(rules, repository, tag);
  }

  /** Every rule of the project, oldest first, read from the database. */
  async list(projectId: number): Promise<StoredImmutabilityRule[]> {
    const rows = await this.db.selectFrom('immutability_rules').selectAll().where('project_id', '=', projectId).orderBy('id').execute();
    return rows.map(toRule);
  }

  /** Rule `id` if it belongs to the project (a rule of another project is not found, as one that does not exist). */
  async find(projectId: number, id: number): Promise<StoredImmutabilityRule | undefined> {
    const row = await this.db.selectFrom('immutability_rules').selectAll().where('project_id', '=', projectId).where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toRule(row);
  }

  /**
   * Adds a rule, unless the project has `MAX_IMMUTABILITY_RULES` already (`limit`) or one with the
   * same selectors (`duplicate`). Concurrent additions to one project are serialised on its row, so
   * the limit holds under concurrency.
   */
  async add(projectId: number, rule: NewImmutabilityRule): Promise<RuleChange> {
    const change = await this.db.transaction().execute(async (tx): Promise<RuleChange> => {
      const existing = await this.lockedRules(tx, projectId);
      if (existing.length >= MAX_IMMUTABILITY_RULES) return { refused: 'limit' };
      if (existing.some((r) => sameSelectors(r, rule))) return { refused: 'duplicate' };
      const row = await tx
        .insertInto('immutability_rules')
        .values({
          project_id: projectId,
          repository_pattern: rule.repositories.pattern,
          repository_exclude: rule.repositories.exclude ? 1 : 0,
          tag_pattern: rule.tags.pattern,
          tag_exclude: rule.tags.exclude ? 1 : 0,
          disabled: rule.disabled ? 1 : 0,
          created_by: rule.createdBy ?? null,
          created_at: Date.now(),
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return { rule: toRule(row) };
    });
    if ('rule' in change) await this.changed(projectId);
    return change;
  }

  /**
   * Changes a rule's selectors or enables/disables it; undefined when the project has no rule `id`,
   * `duplicate` when another of its rules has the resulting selectors.
   */
  async update(projectId: number, id: number, changes: { repositories?: Selector; tags?: Selector; disabled?: boolean }): Promise<RuleChange | undefined> {
    const change = await this.db.transaction().execute(async (tx): Promise<RuleChange | undefined> => {
      const existing = await this.lockedRules(tx, projectId);
      const current = existing.find((r) => r.id === id);
      if (!current) return undefined;
      const next = { repositories: changes.repositories ?? current.repositories, tags: changes.tags ?? current.tags };
      if (existing.some((r) => r.id !== id && sameSelectors(r, next))) return { refused: 'duplicate' };
      const row = await tx
        .updateTable('immutability_rules')
        .set({
          repository_pattern: next.repositories.pattern,
          repository_exclude: next.repositories.exclude ? 1 : 0,
          tag_pattern: next.tags.pattern,
          tag_exclude: next.tags.exclude ? 1 : 0,
          disabled: (changes.disabled ?? current.disabled) ? 1 : 0,
        })
        .where('project_id', '=', projectId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { rule: toRule(row) };
    });
    if (change && 'rule' in change) await this.changed(projectId);
    return change;
  }

  /** Deletes rule `id` of the project; false when the project has no such rule. */
  async delete(projectId: number, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('immutability_rules').where('project_id', '=', projectId).where('id', '=', id).executeTakeFirst();
    const deleted = Number(result.numDeletedRows) > 0;
    if (deleted) await this.changed(projectId);
    return deleted;
  }

  /**
   * The project's rules within `tx`, after locking the project's row (on PostgreSQL; SQLite's
   * transactions are serial): two changes to one project's rules never decide on the same count.
   * `FOR NO KEY UPDATE` leaves pushes that create repositories in the project (a key-share lock) alone.
   */
  private async lockedRules(tx: DB, projectId: number): Promise<StoredImmutabilityRule[]> {
    if (this.dialect === 'postgres') await tx.selectFrom('projects').select('id').where('id', '=', projectId).forNoKeyUpdate().execute();
    return (await tx.selectFrom('immutability_rules').selectAll().where('project_id', '=', projectId).orderBy('id').execute()).map(toRule);
  }

  private async changed(projectId: number): Promise<void> {
    this.cache.delete(projectId);
    await this.changes.publish('immutability', String(projectId));
  }
}
