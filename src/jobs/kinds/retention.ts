// A tag retention run of one project (manual, or its policy's schedule): reads the project's
// artifacts, evaluates the policy (src/lifecycle/retention/evaluate.ts), records every decision as
// a job item, and — unless it is a dry run — deletes exactly the artifacts the evaluation marked,
// through the same deletion as the API's (quota, events and the immutability guard apply). A dry
// run and a real run of the same moment run the same code up to the deletion itself.
import { setImmediate as yieldToRequests } from 'node:timers/promises';
import { z } from 'zod';
import { RegistryError } from '../../domain/errors.ts';
import { immutableBy } from '../../lifecycle/immutability.ts';
import { decisionText, evaluateRetention, type RetentionDecision } from '../../lifecycle/retention/evaluate.ts';
import { ruleSchema, ruleText, MAX_RULES, type RetentionRule } from '../../lifecycle/retention/rules.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { NewJobItem } from '../../metadata/job-items.ts';
import { RETENTION_KIND, retentionKey, type RetentionArtifact } from '../../metadata/retention.ts';
import type { JobContext, JobKind } from '../kind.ts';

/** What a retention job is enqueued with. */
export const retentionPayload = z.strictObject({
  project: z.string().min(1).max(128).regex(/^[a-z0-9._-]+$/),
  dryRun: z.boolean().default(false),
});

/** What the kind needs from the composition root. */
export interface RetentionServices {
  retention: {
    meta: Pick<Metadata, 'projects' | 'retention' | 'jobItems' | 'immutability' | 'repositories' | 'manifests' | 'artifacts' | 'events'>;
    /**
     * Deletes an artifact by digest as the API's artifact deletion does, by `actor`. Rejects with
     * MANIFEST_UNKNOWN when it is gone already, DENIED when an immutability rule protects it.
     */
    deleteArtifact(repository: string, digest: string, actor: string): Promise<void>;
  };
}

/** The outcome of one artifact, as job items record it (`pending`: being deleted by the run now). */
export type RetentionOutcome = 'retained' | 'deleted' | 'would-delete' | 'failed' | 'pending';

/** Who deletions are made by (events, audit). */
export const RETENTION_ACTOR = 'retention';

/** Artifacts recorded (and deleted) per round: bounds memory of the report and the progress' staleness. */
const BATCH = 500;
/** Deletions in flight at once: they share the database's commits (SQLite's group commit, PostgreSQL's pool). */
const PARALLEL_DELETES = 8;

/** A project's policy applied to its artifacts at one moment: what both dry and real runs act on. */
export interface RetentionPlan {
  artifacts: RetentionArtifact[];
  decisions: RetentionDecision[];
  rules: RetentionRule[];
  /** Each rule in words, by position. */
  ruleTexts: string[];
  /** The moment the "within N days" rules counted back from. */
  now: number;
}

/**
 * Reads the project's artifacts and immutability rules and evaluates `rules` on them at `now`.
 * The one evaluation every run uses: a dry run shows exactly what a real run of the same moment
 * deletes.
 */
export async function planRetention(
  meta: RetentionServices['retention']['meta'],
  projectId: number,
  rules: RetentionRule[],
  options: { now?: number; signal?: AbortSignal; onRead?: (read: number) => void } = {},
): Promise<RetentionPlan> {
  const artifacts = await meta.retention.artifacts(projectId, { ...(options.signal ? { signal: options.signal } : {}), ...(options.onRead ? { onPage: options.onRead } : {}) });
  const immutability = await meta.immutability.rules(projectId);
  const now = options.now ?? Date.now();
  const immutable = immutability.some((r) => !r.disabled) ? (repository: string, tag: string) => immutableBy(immutability, repository, tag) : undefined;
  const decisions = evaluateRetention(artifacts, rules, { now, ...(immutable ? { immutable } : {}) });
  return { artifacts, decisions, rules, ruleTexts: rules.map(ruleText), now };
}

/** The job item of one decision. */
function item(artifact: RetentionArtifact, decision: RetentionDecision, outcome: RetentionOutcome, reason: string, extra: Record<string, unknown> = {}): NewJobItem {
  return {
    subject: `${artifact.repository}@${artifact.digest}`,
    outcome,
    detail: { tags: artifact.tags, basis: decision.basis, rule: decision.rule, reason, ...extra },
  };
}

/** Figures of a run, as its progress reports them and the runs API shows them. */
interface Figures {
  /** reading (and evaluating), then deleting (real run) or reporting (dry run), then done. */
  phase: 'reading' | 'deleting' | 'reporting' | 'done';
  dryRun: boolean;
  read: number;
  total: number;
  evaluated: number;
  retained: number;
  /** Deleted (real run) or to be deleted (dry run). */
  deleted: number;
  failed: number;
}

/**
 * Runs the project's policy. A project or policy that is gone by now ends the run quietly (a
 * schedule's tick may outlive them). Cancellable between rounds. Idempotent: an attempt after a
 * crash keeps what the earlier attempts deleted in the report (`recover`), evaluates again (those
 * artifacts are gone, the rankings of the rest unchanged) and records the rest anew.
 */
export const retention: JobKind<RetentionServices> = {
  kind: RETENTION_KIND,
  exclusiveKey(payload) {
    const parsed = retentionPayload.safeParse(payload);
    return parsed.success ? retentionKey(parsed.data.project) : undefined;
  },
  async run(job, ctx) {
    const { meta } = ctx.services.retention;
    const parsed = retentionPayload.safeParse(job.payload ?? {});
    if (!parsed.success) throw new Error('retention: the payload is not valid (project: a project name; dryRun: a boolean)');
    const { project: name, dryRun } = parsed.data;
    const project = await meta.projects.find(name);
    const policy = project && (await meta.retention.get(project.id));
    if (!project || !policy) {
      await ctx.log('info', `project "${name}" ${project ? 'has no retention policy' : 'no longer exists'}: nothing to do`);
      await ctx.progress({ phase: 'done', dryRun, read: 0, total: 0, evaluated: 0, retained: 0, deleted: 0, failed: 0 });
      return;
    }
    const rules = z.array(ruleSchema).max(MAX_RULES).safeParse(policy.rules);
    if (!rules.success) throw new Error(`retention: the stored policy of project "${name}" is not valid`);
    // A run stopped before (a crash, a lease taken over, a shutdown — which does not count as an
    // attempt) keeps its deletions in the report; the rest is decided again.
    const earlier = await recover(meta, job.id);
    if (earlier > 0) await ctx.log('info', `${earlier} artifact(s) deleted by an earlier attempt of this run; evaluating the rest again`);
    const figures: Figures = { phase: 'reading', dryRun, read: 0, total: earlier, evaluated: 0, retained: 0, deleted: earlier, failed: 0 };
    await ctx.progress({ ...figures });
    const started = performance.now();
    const plan = await planRetention(meta, project.id, rules.data, {
      signal: ctx.signal,
      // Only a report: a failed write is retried with the next one.
      onRead: (read) => void ctx.progress({ ...figures, read }).catch(() => undefined),
    });
    const readMs = Math.round(performance.now() - started);
    figures.read = figures.evaluated = plan.artifacts.length;
    figures.total += plan.artifacts.length;
    figures.phase = dryRun ? 'reporting' : 'deleting';
    await ctx.progress({ ...figures });
    const marked = plan.decisions.filter((d) => !d.retained).length;
    await ctx.log(
      'info',
      `${dryRun ? 'dry run: ' : ''}evaluated ${plan.artifacts.length} artifact(s) under ${plan.rules.length} rule(s) in ${readMs} ms: ${marked} ${dryRun ? 'would be' : 'to be'} deleted`,
    );
    for (let start = 0; start < plan.artifacts.length; start += BATCH) {
      ctx.signal.throwIfAborted();
      // Requests get their turn between batches (SQLite's writes run on the event loop).
      await yieldToRequests();
      const end = Math.min(start + BATCH, plan.artifacts.length);
      let outcomes: RetentionOutcome[];
      if (dryRun) {
        const items = report(plan, start, end);
        await meta.jobItems.append(job.id, items);
        outcomes = items.map((it) => it.outcome as RetentionOutcome);
      } else outcomes = await enforce(plan, start, end, job.id, ctx);
      for (const outcome of outcomes) {
        if (outcome === 'retained') figures.retained++;
        else if (outcome === 'failed') figures.failed++;
        else figures.deleted++;
      }
      await ctx.progress({ ...figures });
    }
    figures.phase = 'done';
    await ctx.progress({ ...figures });
    await ctx.log(
      figures.failed > 0 ? 'warn' : 'info',
      dryRun
        ? `dry run of project "${name}": ${figures.retained} artifact(s) kept, ${figures.deleted} would be deleted`
        : `retention of project "${name}": ${figures.retained} artifact(s) kept, ${figures.deleted} deleted${figures.failed > 0 ? `, ${figures.failed} could not be deleted (see the run's items)` : ''}`,
    );
    // For webhooks (retention.finished): the run's figures, written once the run has done its work.
    await meta.events.record({
      type: 'retention.finished',
      project: name,
      actor: RETENTION_ACTOR,
      detail: { job: job.id, state: figures.failed > 0 ? 'partial' : 'succeeded', dryRun, total: figures.total, retained: figures.retained, deleted: figures.deleted, failed: figures.failed },
    });
  },
};

/** A dry run's items for artifacts `start` to `end` of the plan. */
function report(plan: RetentionPlan, start: number, end: number): NewJobItem[] {
  const items: NewJobItem[] = [];
  for (let i = start; i < end; i++) {
    const decision = plan.decisions[i]!;
    items.push(item(plan.artifacts[i]!, decision, decision.retained ? 'retained' : 'would-delete', decisionText(decision, plan.ruleTexts)));
  }
  return items;
}

/**
 * A real run over artifacts `start` to `end`: records the batch first — kept artifacts as
 * `retained`, those to delete as `pending` (so that a crash leaves a record of what may have gone,
 * see `recover`) — then deletes, a few at a time, and settles each pending item. An artifact whose
 * tags changed since the evaluation (a tag pushed onto it meanwhile) is kept until the next run.
 * Returns the outcomes.
 */
async function enforce(plan: RetentionPlan, start: number, end: number, jobId: number, ctx: JobContext<RetentionServices>): Promise<RetentionOutcome[]> {
  const { meta, deleteArtifact } = ctx.services.retention;
  const outcomes = new Array<RetentionOutcome>(end - start);
  const items: NewJobItem[] = [];
  const doomed: number[] = [];
  for (let i = start; i < end; i++) {
    const decision = plan.decisions[i]!;
    const reason = decisionText(decision, plan.ruleTexts);
    if (decision.retained) outcomes[i - start] = 'retained';
    else doomed.push(i);
    items.push(item(plan.artifacts[i]!, decision, decision.retained ? 'retained' : 'pending', reason));
  }
  const ids = await meta.jobItems.append(jobId, items);
  const changed = await changedSince(meta, plan.artifacts, doomed);
  const deleted: number[] = [];
  const settle = async (i: number, outcome: RetentionOutcome, reason: string, extra: Record<string, unknown> = {}) => {
    outcomes[i - start] = outcome;
    const artifact = plan.artifacts[i]!;
    const id = ids.get(`${artifact.repository}@${artifact.digest}`);
    if (id === undefined) return;
    if (outcome === 'deleted' && Object.keys(extra).length === 0) deleted.push(id);
    else await meta.jobItems.settle(jobId, [id], outcome, item(artifact, plan.decisions[i]!, outcome, reason, extra).detail);
  };
  let next = 0;
  const worker = async () => {
    while (next < doomed.length) {
      const i = doomed[next++]!;
      const artifact = plan.artifacts[i]!;
      const reason = decisionText(plan.decisions[i]!, plan.ruleTexts);
      const now = changed.get(i);
      if (now !== undefined) {
        await settle(i, 'retained', `its tags changed since the evaluation (now: ${now.join(', ') || 'none'}): left for the next run`, { basis: 'changed', rule: null });
        continue;
      }
      try {
        await deleteArtifact(artifact.repository, artifact.digest, RETENTION_ACTOR);
        await settle(i, 'deleted', reason);
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') await settle(i, 'deleted', reason, { note: 'already gone' });
        // An immutability rule added since the evaluation: the guard keeps the artifact.
        else if (err instanceof RegistryError && err.code === 'DENIED') {
          const rule = (err.detail as { rule?: { id?: unknown } } | undefined)?.rule?.id;
          await settle(i, 'retained', err.message, { basis: 'immutable', rule: typeof rule === 'number' ? rule : null });
        }
        else {
          const message = err instanceof Error ? err.message : String(err);
          await settle(i, 'failed', reason, { error: message.slice(0, 500) });
          await ctx.log('error', `could not delete ${artifact.repository}@${artifact.digest}: ${message}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_DELETES, doomed.length) }, worker));
  await meta.jobItems.settle(jobId, deleted, 'deleted');
  return outcomes;
}

/**
 * Before each attempt: each `pending` item an earlier attempt left (it stopped while deleting) whose
 * artifact is gone was deleted by it (settled `deleted`); the others, and every other item but the
 * deletions, are dropped to be decided again. Returns how many artifacts earlier attempts deleted
 * (0, after three quick reads, for a run's first attempt).
 */
async function recover(meta: RetentionServices['retention']['meta'], jobId: number): Promise<number> {
  for (;;) {
    const { items } = await meta.jobItems.page(jobId, { outcome: 'pending', offset: 0, limit: BATCH });
    if (items.length === 0) break;
    const gone: number[] = [];
    const present: number[] = [];
    for (const row of items) {
      const at = row.subject.lastIndexOf('@');
      const repository = row.subject.slice(0, at);
      const id = await meta.repositories.currentId(repository);
      const there = id !== undefined && (await meta.manifests.existing(id, [row.subject.slice(at + 1)])).size > 0;
      (there ? present : gone).push(row.id);
    }
    await meta.jobItems.settle(jobId, gone, 'deleted');
    await meta.jobItems.remove(jobId, present);
  }
  await meta.jobItems.clear(jobId, ['deleted']);
  return (await meta.jobItems.counts(jobId)).deleted ?? 0;
}

/**
 * Of the artifacts at `positions`, those whose tags now differ from what the evaluation saw, with
 * their tags now. A vanished repository or artifact is not "changed": deleting it is a no-op.
 */
async function changedSince(meta: RetentionServices['retention']['meta'], artifacts: readonly RetentionArtifact[], positions: readonly number[]): Promise<Map<number, string[]>> {
  const byRepository = new Map<string, number[]>();
  for (const i of positions) {
    const repository = artifacts[i]!.repository;
    byRepository.set(repository, [...(byRepository.get(repository) ?? []), i]);
  }
  const changed = new Map<number, string[]>();
  for (const [repository, members] of byRepository) {
    const id = await meta.repositories.currentId(repository);
    if (id === undefined) continue;
    const digests = members.map((i) => artifacts[i]!.digest);
    const [present, current] = await Promise.all([meta.manifests.existing(id, digests), meta.artifacts.tagsOf(id, digests)]);
    for (const i of members) {
      if (!present.has(artifacts[i]!.digest)) continue;
      const now = current.get(artifacts[i]!.digest) ?? [];
      const then = artifacts[i]!.tags;
      if (now.length !== then.length || now.some((t, k) => t !== then[k])) changed.set(i, now);
    }
  }
  return changed;
}
