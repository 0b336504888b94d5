import { nextRun } from '../../jobs/cron.ts';
import { z } from 'zod';
import type { Identity } from '../../auth/identity.ts';
import type { Permission } from '../../auth/roles.ts';
import { policySchema, ruleSchema, ruleText, type RetentionRule } from '../../lifecycle/retention/rules.ts';
import { RETENTION_KIND, retentionKey, type StoredRetentionPolicy } from '../../metadata/retention.ts';
import type { JobItemRow, JobRow, ProjectRow } from '../../metadata/schema.ts';
import { audit, conflict, iso, isoTime, jobLifecycle, JOB_STATES, lifecycleOf, notFound, pageOf, pageQuery, paged, projectAccess, projectName, storedJSON, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** Changing the policy and starting runs: project administrators (and system administrators). */
const MANAGE: Permission = 'project.update';
/** Reading the policy and the runs: project members from guest up (and system administrators). */
const READ: Permission = 'member.list';

/** `pending`: a real run is deleting it now (or crashed while doing so: its next attempt settles it). */
const OUTCOMES = ['retained', 'deleted', 'would-delete', 'failed', 'pending'] as const;

const projectParam = z.object({ project: projectName });
const runParam = z.object({
  project: projectName,
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, 'a run id: a positive whole number')
    .transform(Number)
    .describe('the run (job) id'),
});

const policyView = z.object({
  project: z.string(),
  rules: z.array(ruleSchema),
  descriptions: z.array(z.string()).describe('each rule in words, by position'),
  cron: z.string().nullable(),
  nextRunAt: isoTime.nullable().describe('the next scheduled run; null without a schedule'),
  updatedBy: z.string().nullable(),
  updatedAt: isoTime,
});
const runView = z.object({
  id: z.number().int(),
  project: z.string(),
  dryRun: z.boolean(),
  trigger: z.enum(['manual', 'schedule']),
  ...jobLifecycle,
  progress: z.unknown().nullable().describe('phase, total, retained, deleted (would be deleted in a dry run), failed'),
});
const itemView = z.object({
  repository: z.string(),
  digest: z.string(),
  outcome: z.enum(OUTCOMES),
  tags: z.array(z.string()),
  basis: z.string().nullable().describe('rule, immutable, unselected (no rule selects the repository), unretained (no rule retains it) or changed (its tags changed between evaluation and deletion: kept)'),
  rule: z.number().int().nullable().describe('the deciding retention rule (from 1), or the immutability rule id'),
  reason: z.string(),
  error: z.string().optional(),
});

function viewPolicy(project: ProjectRow, policy: StoredRetentionPolicy) {
  const rules = z.array(ruleSchema).safeParse(policy.rules);
  const list: RetentionRule[] = rules.success ? rules.data : [];
  return {
    project: project.name,
    rules: list,
    descriptions: list.map(ruleText),
    cron: policy.cron,
    nextRunAt: nextRun(policy.cron),
    updatedBy: policy.updatedBy,
    updatedAt: iso(policy.updatedAt)!,
  };
}

function viewRun(project: string, row: JobRow) {
  const payload = storedJSON(row.payload) as { dryRun?: unknown } | null;
  return {
    id: row.id,
    project,
    dryRun: payload?.dryRun === true,
    trigger: row.dedupe_key ? ('schedule' as const) : ('manual' as const),
    ...lifecycleOf(row),
    progress: storedJSON(row.progress),
  };
}

function viewItem(row: JobItemRow) {
  const at = row.subject.lastIndexOf('@');
  const detail = (storedJSON(row.detail) ?? {}) as { tags?: unknown; basis?: unknown; rule?: unknown; reason?: unknown; error?: unknown; note?: unknown };
  return {
    repository: row.subject.slice(0, at),
    digest: row.subject.slice(at + 1),
    outcome: row.outcome,
    tags: Array.isArray(detail.tags) ? detail.tags.filter((t): t is string => typeof t === 'string') : [],
    basis: typeof detail.basis === 'string' ? detail.basis : null,
    rule: typeof detail.rule === 'number' ? detail.rule : null,
    reason: [detail.reason, detail.note].filter((s): s is string => typeof s === 'string').join('; '),
    ...(typeof detail.error === 'string' ? { error: detail.error } : {}),
  };
}

/**
 * `/projects/{project}/retention`: a project's tag retention policy (rules and schedule), its runs
 * (manual or scheduled, dry or real) and each run's decisions, artifact by artifact.
 */
export function retentionOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function access(identity: Identity, name: string, needed: Permission): Promise<ProjectRow> {
    return (await projectAccess(services, identity, name, needed)).project;
  }

  /** Run `id` of the project; 404 for a run of another project or another kind, as for none. */
  async function findRun(project: ProjectRow, id: number): Promise<JobRow> {
    const row = await meta.jobs.get(id);
    const payload = row && row.kind === RETENTION_KIND ? (storedJSON(row.payload) as { project?: unknown } | null) : null;
    if (!row || payload?.project !== project.name) throw notFound(`retention run ${id} not found in project "${project.name}"`);
    return row;
  }

  return [
    operation({
      id: 'getRetention',
      method: 'GET',
      path: '/projects/{project}/retention',
      tag: 'retention',
      summary: "A project's tag retention policy: rules, each in words, and schedule (project members)",
      params: projectParam,
      response: policyView,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        const project = await access(identity, params.project, READ);
        const policy = await meta.retention.get(project.id);
        if (!policy) throw notFound(`project "${project.name}" has no retention policy`);
        return { body: viewPolicy(project, policy) };
      },
    }),
    operation({
      id: 'setRetention',
      method: 'PUT',
      path: '/projects/{project}/retention',
      tag: 'retention',
      summary: 'Set the tag retention policy: up to 15 rules and an optional cron schedule (project administrators)',
      description:
        'Rules are OR-combined. In a repository some rule selects, every artifact no rule retains is deleted by a run, all its tags with it; repositories no rule selects are left alone. Untagged artifacts are selected only by rules with `untagged: true`. Try a policy with a dry run first.',
      params: projectParam,
      body: policySchema,
      response: policyView,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const project = await access(identity, params.project, MANAGE);
        const cron = body.cron ?? null;
        const updatedBy = identity.kind === 'anonymous' ? null : identity.name;
        await meta.retention.set(project, { rules: body.rules, cron }, updatedBy);
        await audit(services, ctx, identity, { action: 'retention.set', resourceType: 'retention', resource: project.name, project: project.name, detail: { rules: body.rules.length, cron } });
        return { body: viewPolicy(project, (await meta.retention.get(project.id))!) };
      },
    }),
    operation({
      id: 'deleteRetention',
      method: 'DELETE',
      path: '/projects/{project}/retention',
      tag: 'retention',
      summary: 'Remove the tag retention policy and its schedule (project administrators)',
      params: projectParam,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const project = await access(identity, params.project, MANAGE);
        if (!(await meta.retention.delete(project))) throw notFound(`project "${project.name}" has no retention policy`);
        await audit(services, ctx, identity, { action: 'retention.delete', resourceType: 'retention', resource: project.name, project: project.name });
        return { status: 204 };
      },
    }),
    operation({
      id: 'startRetentionRun',
      method: 'POST',
      path: '/projects/{project}/retention/runs',
      tag: 'retention',
      summary: 'Run the policy now, or only report what it would delete with dryRun (project administrators)',
      description: 'Answers 201 with the run; follow it with GET …/runs/{id} and its decisions with GET …/runs/{id}/items. 409 CONFLICT while a run of the project is queued or running, or when it has no policy.',
      params: projectParam,
      body: z.strictObject({ dryRun: z.boolean().default(false).describe('only report: delete nothing') }),
      status: 201,
      response: runView,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const project = await access(identity, params.project, MANAGE);
        if (!(await meta.retention.get(project.id))) throw conflict(`project "${project.name}" has no retention policy: set one first (PUT /projects/${project.name}/retention)`);
        const { id, created } = await meta.jobs.enqueue({ kind: RETENTION_KIND, payload: { project: project.name, dryRun: body.dryRun }, exclusiveKey: retentionKey(project.name) });
        if (!created) throw conflict(`a retention run of project "${project.name}" is already queued or running (run ${id})`, { id });
        // Only a hint to idle workers: they poll anyway.
        await meta.jobs.notify().catch((err: unknown) => ctx.log.warn({ err }, 'could not wake the job workers'));
        await audit(services, ctx, identity, { action: 'retention.run', resourceType: 'retention', resource: project.name, project: project.name, detail: { run: id, dryRun: body.dryRun } });
        const row = (await meta.jobs.get(id))!;
        return { status: 201, headers: { Location: `/api/v1/projects/${project.name}/retention/runs/${id}` }, body: viewRun(project.name, row) };
      },
    }),
    operation({
      id: 'listRetentionRuns',
      method: 'GET',
      path: '/projects/{project}/retention/runs',
      tag: 'retention',
      summary: "The project's retention runs, newest first, with their figures (project members)",
      params: projectParam,
      query: z.object(pageQuery),
      response: pageOf(runView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const project = await access(identity, params.project, READ);
        const found = await meta.retention.runs(project.name, window(query));
        return paged(ctx, query, found.items.map((row) => viewRun(project.name, row)), found.total);
      },
    }),
    operation({
      id: 'getRetentionRun',
      method: 'GET',
      path: '/projects/{project}/retention/runs/{id}',
      tag: 'retention',
      summary: 'One retention run with its figures, the count of each outcome and its log (project members)',
      params: runParam,
      response: runView.extend({ outcomes: z.record(z.string(), z.number().int()), log: z.array(z.object({ time: isoTime, level: z.string(), message: z.string() })) }),
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        const project = await access(identity, params.project, READ);
        const row = await findRun(project, params.id);
        const [outcomes, log] = await Promise.all([meta.jobItems.counts(row.id), meta.jobs.logs(row.id)]);
        return { body: { ...viewRun(project.name, row), outcomes, log: log.map((l) => ({ time: iso(l.time)!, level: l.level, message: l.message })) } };
      },
    }),
    operation({
      id: 'listRetentionRunItems',
      method: 'GET',
      path: '/projects/{project}/retention/runs/{id}/items',
      tag: 'retention',
      summary: "A run's decisions: each artifact kept or deleted, with its tags and the rule that decided (project members)",
      params: runParam,
      query: z.object({ outcome: z.enum(OUTCOMES).optional().describe('only decisions with this outcome'), ...pageQuery }),
      response: pageOf(itemView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const project = await access(identity, params.project, READ);
        const row = await findRun(project, params.id);
        const found = await meta.jobItems.page(row.id, { ...(query.outcome ? { outcome: query.outcome } : {}), ...window(query) });
        return paged(ctx, query, found.items.map(viewItem), found.total);
      },
    }),
    operation({
      id: 'cancelRetentionRun',
      method: 'POST',
      path: '/projects/{project}/retention/runs/{id}/cancel',
      tag: 'retention',
      summary: 'Cancel a retention run: a queued one at once, a running one at its next heartbeat (project administrators)',
      description: 'What a cancelled real run deleted stays deleted (its items say what). 409 CONFLICT for a run already finished.',
      params: runParam,
      response: runView,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        const project = await access(identity, params.project, MANAGE);
        const before = await findRun(project, params.id);
        if (before.state !== 'queued' && before.state !== 'running') throw conflict(`retention run ${before.id} has already ${before.state === 'cancelled' ? 'been cancelled' : before.state}`, { state: before.state });
        const after = (await meta.jobs.cancel(before.id)) ?? before;
        await audit(services, ctx, identity, { action: 'retention.cancel', resourceType: 'retention', resource: project.name, project: project.name, detail: { run: before.id } });
        return { body: viewRun(project.name, after) };
      },
    }),
  ];
}
