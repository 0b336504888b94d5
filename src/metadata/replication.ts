// Replication rules, their schedules and the marks event-triggered executions work from. The rule
// settings are validated by src/replication/rules.ts; this store keeps them as given.
import { sql } from 'kysely';
import type { DB } from './dialect.ts';
import { normalizeJob } from './jobs.ts';
import type { JobRow, ReplicationRuleRow } from './schema.ts';

/** The job kind of executions, and the schedule name and exclusive key of a rule's executions. */
export const REPLICATION_KIND = 'replication';
export function replicationKey(ruleId: number): string {
  return `${REPLICATION_KIND}:${ruleId}`;
}

/** What started an execution. */
export type ReplicationTrigger = 'manual' | 'schedule' | 'event';

/** The payload's JSON text: `rule` first, so that a rule's executions are found by their payload's start (see `executions`). */
export function replicationPayloadText(payload: { rule: number; trigger: ReplicationTrigger }): string {
  return JSON.stringify({ rule: payload.rule, trigger: payload.trigger });
}

/** A rule's settings as stored (`filters` and `destination` as JSON values). */
export interface ReplicationRuleValues {
  name: string;
  description: string | null;
  registryId: number;
  direction: string;
  filters: unknown;
  destination: unknown;
  trigger: string;
  cron: string | null;
  replicateDeletes: boolean;
  override: boolean;
  bandwidth: number | null;
  concurrency: number;
  enabled: boolean;
}

/** A stored rule with its endpoint's name. */
export interface StoredReplicationRule extends ReplicationRuleValues {
  id: number;
  /** The registry endpoint's name. */
  registry: string;
  createdBy: string | null;
  createdAt: number;
  updatedBy: string | null;
  updatedAt: number;
}

/** What an execution still has to do: `sync` a tag (or a digest), `delete` it at the destination, or a `full` pass. */
export type MarkAction = 'sync' | 'delete' | 'full';

/** A mark to add. */
export interface NewMark {
  ruleId: number;
  repository: string;
  tag: string | null;
  digest: string | null;
  action: MarkAction;
  eventId: number | null;
}

/** A stored mark. */
export interface ReplicationMark extends NewMark {
  id: number;
  createdAt: number;
}

/** Marks per insert: well inside both databases' limits on bound parameters. */
const BATCH = 500;

/**
 * `replication_rules` (each rule with its schedule — a row of `schedules` named
 * `replication:<id>`, kind `replication`, written in the same transaction), `replication_marks`
 * and the executions (jobs) of a rule. Errors: only the database's own.
 */
export class ReplicationStore {
  constructor(private readonly db: DB) {}

  private select() {
    return this.db.selectFrom('replication_rules as r').innerJoin('registries as g', 'g.id', 'r.registry_id').selectAll('r').select('g.name as registry');
  }

  /** The rule named `name`; undefined when there is none. */
  async find(name: string): Promise<StoredReplicationRule | undefined> {
    const row = await this.select().where('r.name', '=', name).executeTakeFirst();
    return row && view(row);
  }

  /** The rule with id `id`; undefined when there is none. */
  async findById(id: number): Promise<StoredReplicationRule | undefined> {
    const row = await this.select().where('r.id', '=', id).executeTakeFirst();
    return row && view(row);
  }

  /** Rules by name, with the total. */
  async list(query: { offset: number; limit: number }): Promise<{ items: StoredReplicationRule[]; total: number }> {
    const total = Number((await this.db.selectFrom('replication_rules').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await this.select().orderBy('r.name').offset(query.offset).limit(query.limit).execute();
    return { items: rows.map(view), total };
  }

  /** Enabled event-triggered rules (what the outbox consumer matches pushes against). */
  async eventRules(): Promise<StoredReplicationRule[]> {
    const rows = await this.select().where('r.trigger', '=', 'event').where('r.enabled', '=', 1).orderBy('r.id').execute();
    return rows.map(view);
  }

  /** Creates a rule (and its schedule); undefined when the name is taken. */
  async create(values: ReplicationRuleValues, createdBy: string | null, now = Date.now()): Promise<StoredReplicationRule | undefined> {
    const created = await this.db.transaction().execute(async (trx) => {
      const result = await trx
        .insertInto('replication_rules')
        .values({ ...columns(values), created_by: createdBy, created_at: now, updated_by: createdBy, updated_at: now })
        .onConflict((oc) => oc.column('name').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!result) return undefined;
      await schedule(trx, Number(result.id), values, now);
      return Number(result.id);
    });
    return created === undefined ? undefined : this.findById(created);
  }

  /** Replaces the settings of rule `id` (its name included) and its schedule; undefined when there is none. */
  async update(id: number, values: ReplicationRuleValues, updatedBy: string | null, now = Date.now()): Promise<StoredReplicationRule | undefined> {
    const updated = await this.db.transaction().execute(async (trx) => {
      const result = await trx
        .updateTable('replication_rules')
        .set({ ...columns(values), updated_by: updatedBy, updated_at: now })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      await schedule(trx, id, values, now);
      return true;
    });
    return updated ? this.findById(id) : undefined;
  }

  /** Deletes rule `id`, its schedule and marks (its executions stay in the job history); false when there is none. */
  async delete(id: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('schedules').where('name', '=', replicationKey(id)).execute();
      await trx.deleteFrom('replication_marks').where('rule_id', '=', id).execute();
      const result = await trx.deleteFrom('replication_rules').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
  }

  /** Adds `marks` (a few hundred per statement). */
  async addMarks(marks: readonly NewMark[], now = Date.now()): Promise<void> {
    for (let i = 0; i < marks.length; i += BATCH) {
      const rows = marks.slice(i, i + BATCH).map((m) => ({
        rule_id: m.ruleId,
        repository: m.repository.slice(0, 255),
        tag: m.tag?.slice(0, 128) ?? null,
        digest: m.digest?.slice(0, 150) ?? null,
        action: m.action,
        event_id: m.eventId,
        created_at: now,
      }));
      await this.db.insertInto('replication_marks').values(rows).execute();
    }
  }

  /** The oldest `limit` marks of rule `ruleId` after id `afterId`, in order (they stay until `deleteMarks`). */
  async takeMarks(ruleId: number, limit: number, afterId = 0): Promise<ReplicationMark[]> {
    const rows = await this.db.selectFrom('replication_marks').selectAll().where('rule_id', '=', ruleId).where('id', '>', afterId).orderBy('id').limit(limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      ruleId: Number(r.rule_id),
      repository: r.repository,
      tag: r.tag,
      digest: r.digest,
      action: r.action as MarkAction,
      eventId: r.event_id === null ? null : Number(r.event_id),
      createdAt: Number(r.created_at),
    }));
  }

  /** Removes marks `ids` (done with). */
  async deleteMarks(ids: readonly number[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) await this.db.deleteFrom('replication_marks').where('id', 'in', ids.slice(i, i + BATCH)).execute();
  }

  /** Removes every mark of rule `ruleId` (a disabled rule has nothing left to do). */
  async clearMarks(ruleId: number): Promise<void> {
    await this.db.deleteFrom('replication_marks').where('rule_id', '=', ruleId).execute();
  }

  /** Ids of the rules having marks made before `before` (ms): executions that never came, or a race lost. */
  async rulesWithMarksBefore(before: number): Promise<number[]> {
    const rows = await this.db.selectFrom('replication_marks').select('rule_id').where('created_at', '<', before).groupBy('rule_id').execute();
    return rows.map((r) => Number(r.rule_id));
  }

  /** The executions of rule `ruleId`, newest first, with the total (jobs whose payload names it, see `replicationPayloadText`). */
  async executions(ruleId: number, query: { offset: number; limit: number }): Promise<{ items: JobRow[]; total: number }> {
    const prefix = `{"rule":${ruleId},%`;
    const select = this.db.selectFrom('jobs').where('kind', '=', REPLICATION_KIND).where(sql<boolean>`payload like ${prefix}`);
    const total = Number((await select.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const rows = await select.selectAll().orderBy('id', 'desc').offset(query.offset).limit(query.limit).execute();
    return { items: rows.map(normalizeJob), total };
  }
}

function columns(values: ReplicationRuleValues) {
  return {
    name: values.name,
    description: values.description,
    registry_id: values.registryId,
    direction: values.direction,
    filters: JSON.stringify(values.filters),
    destination: JSON.stringify(values.destination),
    trigger: values.trigger,
    cron: values.cron,
    replicate_deletes: values.replicateDeletes ? 1 : 0,
    override: values.override ? 1 : 0,
    bandwidth: values.bandwidth,
    concurrency: values.concurrency,
    enabled: values.enabled ? 1 : 0,
  };
}

/** Writes (trigger schedule with a cron expression) or removes the schedule of rule `id` within `trx`. */
async function schedule(trx: DB, id: number, values: ReplicationRuleValues, now: number): Promise<void> {
  const name = replicationKey(id);
  if (values.trigger !== 'schedule' || values.cron === null) {
    await trx.deleteFrom('schedules').where('name', '=', name).execute();
    return;
  }
  const payload = replicationPayloadText({ rule: id, trigger: 'schedule' });
  const enabled = values.enabled ? 1 : 0;
  await trx
    .insertInto('schedules')
    .values({ name, kind: REPLICATION_KIND, cron: values.cron, payload, enabled, next_run_at: null, last_run_at: null, created_at: now })
    .onConflict((oc) => oc.column('name').doUpdateSet({ kind: REPLICATION_KIND, cron: values.cron!, payload, enabled, next_run_at: null }))
    .execute();
}

function view(row: ReplicationRuleRow & { registry: string }): StoredReplicationRule {
  return {
    id: Number(row.id),
    name: row.name,
    description: row.description,
    registryId: Number(row.registry_id),
    registry: row.registry,
    direction: row.direction,
    filters: JSON.parse(row.filters) as unknown,
    destination: JSON.parse(row.destination) as unknown,
    trigger: row.trigger,
    cron: row.cron,
    replicateDeletes: Number(row.replicate_deletes) === 1,
    override: Number(row.override) === 1,
    bandwidth: row.bandwidth === null ? null : Number(row.bandwidth),
    concurrency: Number(row.concurrency),
    enabled: Number(row.enabled) === 1,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
    updatedBy: row.updated_by,
    updatedAt: Number(row.updated_at),
  };
}
