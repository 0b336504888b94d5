import { z } from 'zod';
import { identityName, type Identity } from '../../auth/identity.ts';
import { nextRun } from '../../jobs/cron.ts';
import { REPLICATION_KIND, replicationKey, type ReplicationRuleValues, type StoredReplicationRule } from '../../metadata/replication.ts';
import type { JobItemRow, JobRow } from '../../metadata/schema.ts';
import { TASK_OUTCOMES } from '../../replication/execution.ts';
import { destinationSchema, filtersSchema, ruleFields, ruleText, settingProblems, DEFAULT_CONCURRENCY, type Direction, type RuleSettings, type Trigger } from '../../replication/rules.ts';
import { audit, conflict, iso, isoTime, jobLifecycle, JOB_STATES, lifecycleOf, notFound, pageOf, pageQuery, paged, requireAdmin, storedJSON, window, type ApiServices } from './common.ts';
import { invalid, operation, type Operation } from './route.ts';

/** A manual execution is not retried as a whole (its artifacts are): the person who started it sees how it went at once. */
const MANUAL_ATTEMPTS = 1;

const nameParam = z.object({ name: ruleFields.name });
const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, 'an execution id: a positive whole number')
    .transform(Number)
    .describe('the execution (job) id'),
});

const createBody = z.strictObject({
  name: ruleFields.name,
  description: ruleFields.description.optional(),
  registry: ruleFields.registry,
  direction: ruleFields.direction,
  filters: filtersSchema.prefault({}),
  destination: destinationSchema.prefault({}),
  trigger: ruleFields.trigger.default('manual'),
  cron: ruleFields.cron.optional(),
  replicateDeletes: ruleFields.replicateDeletes.default(false),
  override: ruleFields.override.default(true),
  bandwidth: ruleFields.bandwidth.optional(),
  concurrency: ruleFields.concurrency.default(DEFAULT_CONCURRENCY),
  enabled: ruleFields.enabled.default(true),
});

const updateBody = z.strictObject({
  description: ruleFields.description.optional(),
  registry: ruleFields.registry.optional(),
  direction: ruleFields.direction.optional(),
  filters: filtersSchema.optional(),
  destination: destinationSchema.optional(),
  trigger: ruleFields.trigger.optional(),
  cron: ruleFields.cron.optional(),
  replicateDeletes: ruleFields.replicateDeletes.optional(),
  override: ruleFields.override.optional(),
  bandwidth: ruleFields.bandwidth.optional(),
  concurrency: ruleFields.concurrency.optional(),
  enabled: ruleFields.enabled.optional(),
});

const ruleView = z.object({
  name: z.string(),
  description: z.string().nullable(),
  registry: z.string(),
  direction: ruleFields.direction,
  filters: filtersSchema,
  destination: destinationSchema,
  trigger: ruleFields.trigger,
  cron: z.string().nullable(),
  nextRunAt: isoTime.nullable().describe('the next scheduled execution; null without a schedule'),
  replicateDeletes: z.boolean(),
  override: z.boolean(),
  bandwidth: z.number().int().nullable(),
  concurrency: z.number().int(),
  enabled: z.boolean(),
  text: z.string().describe('the rule in words'),
  createdBy: z.string().nullable(),
  createdAt: isoTime,
  updatedBy: z.string().nullable(),
  updatedAt: isoTime,
});

const executionView = z.object({
  id: z.number().int(),
  rule: z.string().nullable().describe('the rule, null once deleted'),
  trigger: z.enum(['manual', 'schedule', 'event']),
  ...jobLifecycle,
  progress: z.unknown().nullable().describe('phase (listing, copying, done), total, copied, skipped, diverged, deleted, failed, bytes'),
});

const taskView = z.object({
  subject: z.string().describe('source repository with :tag or @digest'),
  outcome: z.enum(TASK_OUTCOMES as [string, ...string[]]),
  destination: z.string().nullable().describe('destination repository with :tag or @digest'),
  digest: z.string().nullable(),
  destinationDigest: z.string().optional().describe('diverged: what the destination tag points at'),
  bytes: z.number().int().optional(),
  manifests: z.number().int().optional(),
  blobsCopied: z.number().int().optional(),
  blobsMounted: z.number().int().optional(),
  blobsSkipped: z.number().int().optional(),
  referrers: z.number().int().optional(),
  durationMs: z.number().int().nullable(),
  attempts: z.number().int().nullable(),
  error: z.string().optional(),
  note: z.string().optional(),
});

const logView = z.object({ items: z.array(z.object({ time: isoTime, level: z.string(), message: z.string() })) });

function settingsOf(rule: StoredReplicationRule): RuleSettings {
  return {
    name: rule.name,
    description: rule.description,
    registry: rule.registry,
    direction: rule.direction as Direction,
    filters: filtersSchema.safeParse(rule.filters).data ?? { repositories: [], tags: [] },
    destination: destinationSchema.safeParse(rule.destination).data ?? { mode: 'keep' },
    trigger: rule.trigger as Trigger,
    cron: rule.cron,
    replicateDeletes: rule.replicateDeletes,
    override: rule.override,
    bandwidth: rule.bandwidth,
    concurrency: rule.concurrency,
    enabled: rule.enabled,
  };
}

function viewRule(rule: StoredReplicationRule) {
  const settings = settingsOf(rule);
  return {
    ...settings,
    nextRunAt: rule.trigger === 'schedule' && rule.enabled ? nextRun(rule.cron) : null,
    text: ruleText(settings),
    createdBy: rule.createdBy,
    createdAt: iso(rule.createdAt)!,
    updatedBy: rule.updatedBy,
    updatedAt: iso(rule.updatedAt)!,
  };
}

function viewExecution(row: JobRow, rule: string | null) {
  const payload = storedJSON(row.payload) as { trigger?: unknown } | null;
  const trigger = payload?.trigger === 'schedule' || payload?.trigger === 'event' ? payload.trigger : 'manual';
  return { id: row.id, rule, trigger, ...lifecycleOf(row), progress: storedJSON(row.progress) };
}

function viewTask(row: JobItemRow) {
  const d = (storedJSON(row.detail) ?? {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const optional = { destinationDigest: str(d.destinationDigest), bytes: num(d.bytes), manifests: num(d.manifests), blobsCopied: num(d.blobsCopied), blobsMounted: num(d.blobsMounted), blobsSkipped: num(d.blobsSkipped), referrers: num(d.referrers), error: str(d.error), note: str(d.note) };
  return {
    subject: row.subject,
    outcome: row.outcome,
    destination: str(d.destination) ?? null,
    digest: str(d.digest) ?? null,
    durationMs: num(d.durationMs) ?? null,
    attempts: num(d.attempts) ?? null,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
  };
}

/** Checks the combination of `settings` and resolves its endpoint; INVALID naming each field otherwise. */
async function resolve(services: ApiServices, settings: RuleSettings): Promise<ReplicationRuleValues> {
  const problems = settingProblems(settings);
  const endpoint = await services.meta.registries.find(settings.registry);
  if (!endpoint) problems.push({ path: 'registry', message: 'no registry endpoint of that name (see GET /registries)' });
  if (problems.length > 0) throw invalid(problems);
  const { registry: _registry, ...rest } = settings;
  return { ...rest, registryId: endpoint!.id };
}

/**
 * `/replication`: replication rules (push to or pull from a registry endpoint, by filters, on
 * demand, on a schedule or on each push), their executions with progress, per-artifact tasks and
 * log — for system administrators only.
 */
export function replicationOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function find(name: string): Promise<StoredReplicationRule> {
    const rule = await meta.replication.find(name);
    if (!rule) throw notFound(`replication rule "${name}" not found`);
    return rule;
  }

  /** Execution `id`; 404 for a job of another kind, as for none. */
  async function findExecution(id: number): Promise<{ row: JobRow; rule: string | null }> {
    const row = await meta.jobs.get(id);
    if (!row || row.kind !== REPLICATION_KIND) throw notFound(`replication execution ${id} not found`);
    const ruleId = (storedJSON(row.payload) as { rule?: unknown } | null)?.rule;
    const rule = typeof ruleId === 'number' ? await meta.replication.findById(ruleId) : undefined;
    return { row, rule: rule?.name ?? null };
  }

  const actor = (identity: Identity) => identityName(identity) ?? null;

  return [
    operation({
      id: 'listReplicationRules',
      method: 'GET',
      path: '/replication/rules',
      tag: 'replication',
      summary: 'Replication rules, by name (system administrators)',
      query: z.object(pageQuery),
      response: pageOf(ruleView),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        await requireAdmin(services, identity);
        const found = await meta.replication.list(window(query));
        return paged(ctx, query, found.items.map(viewRule), found.total);
      },
    }),
    operation({
      id: 'createReplicationRule',
      method: 'POST',
      path: '/replication/rules',
      tag: 'replication',
      summary: 'Create a replication rule (system administrators)',
      description:
        'push copies from Berth to the registry endpoint, pull from it into Berth (into existing projects). Filters: every pattern of a list must agree (exclude inverts one). Executions compare tags and digests first and copy only what differs.',
      body: createBody,
      status: 201,
      response: ruleView,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const values = await resolve(services, { ...body, description: body.description ?? null, cron: body.cron ?? null, bandwidth: body.bandwidth ?? null });
        const rule = await meta.replication.create(values, actor(identity));
        if (!rule) throw conflict(`replication rule "${body.name}" already exists`);
        await audit(services, ctx, identity, { action: 'replication.create', resourceType: 'replication', resource: rule.name, detail: { registry: rule.registry, direction: rule.direction, trigger: rule.trigger } });
        return { status: 201, headers: { Location: `/api/v1/replication/rules/${rule.name}` }, body: viewRule(rule) };
      },
    }),
    operation({
      id: 'getReplicationRule',
      method: 'GET',
      path: '/replication/rules/{name}',
      tag: 'replication',
      summary: 'A replication rule, with its description in words (system administrators)',
      params: nameParam,
      response: ruleView,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        return { body: viewRule(await find(params.name)) };
      },
    }),
    operation({
      id: 'updateReplicationRule',
      method: 'PATCH',
      path: '/replication/rules/{name}',
      tag: 'replication',
      summary: 'Change a replication rule (system administrators); absent fields are unchanged, the name cannot change',
      params: nameParam,
      body: updateBody,
      response: ruleView,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        await requireAdmin(services, identity);
        const rule = await find(params.name);
        const merged: RuleSettings = { ...settingsOf(rule) };
        for (const [key, value] of Object.entries(body)) if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
        // Leaving a schedule drops its cron expression unless one is given.
        if (body.trigger !== undefined && body.trigger !== 'schedule' && body.cron === undefined) merged.cron = null;
        if (body.trigger !== undefined && body.trigger !== 'event' && body.replicateDeletes === undefined) merged.replicateDeletes = false;
        const values = await resolve(services, merged);
        const updated = await meta.replication.update(rule.id, values, actor(identity));
        if (!updated) throw notFound(`replication rule "${params.name}" not found`);
        const changed = Object.keys(body).filter((k) => body[k as keyof typeof body] !== undefined);
        if (changed.length > 0) await audit(services, ctx, identity, { action: 'replication.update', resourceType: 'replication', resource: rule.name, detail: { changed } });
        return { body: viewRule(updated) };
      },
    }),
    operation({
      id: 'deleteReplicationRule',
      method: 'DELETE',
      path: '/replication/rules/{name}',
      tag: 'replication',
      summary: 'Delete a replication rule and its schedule (system administrators); its executions stay in the history',
      params: nameParam,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        const rule = await find(params.name);
        if (!(await meta.replication.delete(rule.id))) throw notFound(`replication rule "${params.name}" not found`);
        await audit(services, ctx, identity, { action: 'replication.delete', resourceType: 'replication', resource: rule.name });
        return { status: 204 };
      },
    }),
    operation({
      id: 'startReplicationExecution',
      method: 'POST',
      path: '/replication/rules/{name}/executions',
      tag: 'replication',
      summary: 'Run the rule now: a full pass (system administrators)',
      description:
        'Answers 202 with the execution. While an execution of the rule is queued or running, that one is answered (`coalesced: true`) and a full pass is added to it. Follow it with GET /replication/executions/{id}.',
      params: nameParam,
      status: 202,
      response: executionView.extend({ coalesced: z.boolean() }),
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        const rule = await find(params.name);
        const { id, created } = await meta.jobs.enqueue({ kind: REPLICATION_KIND, payload: { rule: rule.id, trigger: 'manual' }, exclusiveKey: replicationKey(rule.id), maxAttempts: MANUAL_ATTEMPTS });
        // The active execution drains its marks before it ends: this one makes it pass again in full.
        if (!created) await meta.replication.addMarks([{ ruleId: rule.id, repository: '*', tag: null, digest: null, action: 'full', eventId: null }]);
        else await meta.jobs.notify().catch((err: unknown) => ctx.log.warn({ err }, 'could not wake the job workers'));
        await audit(services, ctx, identity, { action: 'replication.run', resourceType: 'replication', resource: rule.name, detail: { execution: id, coalesced: !created } });
        const row = (await meta.jobs.get(id))!;
        return { status: 202, headers: { Location: `/api/v1/replication/executions/${id}` }, body: { ...viewExecution(row, rule.name), coalesced: !created } };
      },
    }),
    operation({
      id: 'listReplicationExecutions',
      method: 'GET',
      path: '/replication/rules/{name}/executions',
      tag: 'replication',
      summary: "The rule's executions, newest first, with their figures (system administrators)",
      params: nameParam,
      query: z.object(pageQuery),
      response: pageOf(executionView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        await requireAdmin(services, identity);
        const rule = await find(params.name);
        const found = await meta.replication.executions(rule.id, window(query));
        return paged(ctx, query, found.items.map((row) => viewExecution(row, rule.name)), found.total);
      },
    }),
    operation({
      id: 'getReplicationExecution',
      method: 'GET',
      path: '/replication/executions/{id}',
      tag: 'replication',
      summary: 'One execution with its figures and the count of each task outcome (system administrators)',
      params: idParam,
      response: executionView.extend({ outcomes: z.record(z.string(), z.number().int()) }),
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        const { row, rule } = await findExecution(params.id);
        return { body: { ...viewExecution(row, rule), outcomes: await meta.jobItems.counts(row.id) } };
      },
    }),
    operation({
      id: 'cancelReplicationExecution',
      method: 'POST',
      path: '/replication/executions/{id}/cancel',
      tag: 'replication',
      summary: 'Cancel an execution: a queued one at once, a running one at its next heartbeat (system administrators)',
      description: 'What was copied stays copied. 409 CONFLICT for an execution already finished.',
      params: idParam,
      response: executionView,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        const { row, rule } = await findExecution(params.id);
        if (row.state !== 'queued' && row.state !== 'running') throw conflict(`replication execution ${row.id} has already ${row.state === 'cancelled' ? 'been cancelled' : row.state}`, { state: row.state });
        const after = (await meta.jobs.cancel(row.id)) ?? row;
        await audit(services, ctx, identity, { action: 'replication.cancel', resourceType: 'replication', resource: rule ?? String(row.id), detail: { execution: row.id } });
        return { body: viewExecution(after, rule) };
      },
    }),
    operation({
      id: 'listReplicationTasks',
      method: 'GET',
      path: '/replication/executions/{id}/tasks',
      tag: 'replication',
      summary: "An execution's tasks: each artifact copied, up to date, diverged, deleted or failed, with bytes, blobs, duration and attempts (system administrators)",
      params: idParam,
      query: z.object({ outcome: z.enum(TASK_OUTCOMES as [string, ...string[]]).optional().describe('only tasks with this outcome'), ...pageQuery }),
      response: pageOf(taskView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        await requireAdmin(services, identity);
        const { row } = await findExecution(params.id);
        const found = await meta.jobItems.page(row.id, { ...(query.outcome ? { outcome: query.outcome } : {}), ...window(query) });
        return paged(ctx, query, found.items.map(viewTask), found.total);
      },
    }),
    operation({
      id: 'getReplicationLog',
      method: 'GET',
      path: '/replication/executions/{id}/log',
      tag: 'replication',
      summary: "An execution's log, oldest line first (the newest few hundred lines are kept) (system administrators)",
      params: idParam,
      response: logView,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        const { row } = await findExecution(params.id);
        const lines = await meta.jobs.logs(row.id);
        return { body: { items: lines.map((l) => ({ time: iso(l.time)!, level: l.level, message: l.message })) } };
      },
    }),
  ];
}
