// A replication execution (manual, scheduled or event-triggered) of one rule: builds both ends —
// Berth itself and the rule's registry endpoint through the one outbound client — runs the
// execution (src/replication/execution.ts) and records `replication.finished` in the outbox.
import { z } from 'zod';
import type { Metadata } from '../../metadata/index.ts';
import { REPLICATION_KIND, replicationKey, type StoredReplicationRule } from '../../metadata/replication.ts';
import type { Registry } from '../../registry/index.ts';
import { RegistryClient } from '../../remote/client.ts';
import type { EndpointService } from '../../remote/endpoints.ts';
import { execute, type ExecutionFigures, type ExecutionRule } from '../../replication/execution.ts';
import { localSide } from '../../replication/local-side.ts';
import { remoteSide } from '../../replication/remote-side.ts';
import { bytesText, destinationSchema, filtersSchema } from '../../replication/rules.ts';
import { VERSION } from '../../version.ts';
import type { JobContext, JobKind } from '../kind.ts';

/** What a replication job is enqueued with. */
export const replicationPayload = z.strictObject({
  rule: z.number().int().positive(),
  trigger: z.enum(['manual', 'schedule', 'event']),
});

/** What the kind needs from the composition root. */
export interface ReplicationServices {
  replication: {
    meta: Metadata;
    registry: Registry;
    endpoints: Pick<EndpointService, 'endpointById'>;
    /** From `replication` in the configuration, in milliseconds and bytes. */
    settings: { timeoutMs: number; chunkBytes: number; maxAttempts: number; retryDelayMs: number };
  };
}

/** The rule validated for an execution; throws when what is stored no longer parses. */
function executionRule(rule: StoredReplicationRule): ExecutionRule {
  const filters = filtersSchema.safeParse(rule.filters);
  const destination = destinationSchema.safeParse(rule.destination);
  if (!filters.success || !destination.success) throw new Error(`replication: the stored settings of rule "${rule.name}" are not valid`);
  return { id: rule.id, name: rule.name, direction: rule.direction, override: rule.override, bandwidth: rule.bandwidth, concurrency: rule.concurrency, filters: filters.data, destination: destination.data };
}

/**
 * Runs one execution of the payload's rule. A rule deleted meanwhile ends it quietly, as does a
 * disabled rule (except for a manual start). Task failures fail the execution after every task
 * ran (their records say which). Idempotent: everything is compared before it is copied, so a
 * retry or a takeover copies only what is still missing; an attempt after the first starts its
 * task records again.
 */
export const replication: JobKind<ReplicationServices> = {
  kind: REPLICATION_KIND,
  exclusiveKey(payload) {
    const parsed = replicationPayload.safeParse(payload);
    return parsed.success ? replicationKey(parsed.data.rule) : undefined;
  },
  async run(job, ctx) {
    const { meta, registry, endpoints, settings } = ctx.services.replication;
    const parsed = replicationPayload.safeParse(job.payload ?? {});
    if (!parsed.success) throw new Error('replication: the payload is not valid (rule: a rule id; trigger: manual, schedule or event)');
    const { rule: ruleId, trigger } = parsed.data;
    const stored = await meta.replication.findById(ruleId);
    if (!stored) return void (await ctx.log('info', `replication rule ${ruleId} no longer exists: nothing to do`));
    if (!stored.enabled && trigger !== 'manual') {
      // What events marked for it would otherwise bring the sweep back to it again and again.
      await meta.replication.clearMarks(stored.id);
      return void (await ctx.log('info', `replication rule "${stored.name}" is disabled: nothing to do`));
    }
    const rule = executionRule(stored);
    if (job.attempt > 1) await meta.jobItems.clear(job.id);
    const endpoint = await endpoints.endpointById(stored.registryId);
    if (!endpoint) throw new Error(`replication: the registry endpoint of rule "${stored.name}" no longer exists`);
    const client = new RegistryClient(endpoint, { timeoutMs: settings.timeoutMs, uploadChunkBytes: settings.chunkBytes, userAgent: `berth/${VERSION} replication`, signal: ctx.signal });
    const remote = remoteSide(client, endpoint.name);
    const local = localSide({ registry, meta, actor: `replication:${stored.name}` });
    const [source, destination] = rule.direction === 'push' ? [local, remote] : [remote, local];
    await ctx.log('info', `${trigger} execution of rule "${stored.name}": ${rule.direction} ${source.name} → ${destination.name}`);
    const started = performance.now();
    let figures: ExecutionFigures | undefined;
    let progress: ExecutionFigures = { phase: 'listing', total: 0, copied: 0, skipped: 0, diverged: 0, deleted: 0, failed: 0, bytes: 0 };
    const projects = new Set<string>();
    try {
      figures = await execute({
        jobId: job.id,
        rule,
        source,
        destination,
        signal: ctx.signal,
        jobItems: meta.jobItems,
        marks: { take: (id, limit, after) => meta.replication.takeMarks(id, limit, after), remove: (ids) => meta.replication.deleteMarks(ids) },
        full: trigger !== 'event',
        scheduledSince: async (since) => ((await meta.schedules.lastRun(replicationKey(stored.id))) ?? -Infinity) > since,
        lastAttempt: job.attempt >= job.maxAttempts,
        projects,
        maxAttempts: settings.maxAttempts,
        retryDelayMs: settings.retryDelayMs,
        log: (level, message) => ctx.log(level, message),
        // Only a report: a failed write is retried with the next one.
        progress: (f) => {
          progress = f;
          void ctx.progress({ ...f }).catch(() => undefined);
        },
      });
    } catch (err) {
      const reason = ctx.signal.aborted ? (ctx.signal.reason as unknown) : undefined;
      if (reason === 'cancelled') await finished(ctx, job.id, stored, trigger, 'cancelled', progress, projects);
      else if (reason === undefined && job.attempt >= job.maxAttempts) await finished(ctx, job.id, stored, trigger, 'failed', progress, projects);
      throw err;
    } finally {
      client.close();
    }
    await ctx.progress({ ...figures });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const summary = `${figures.copied} copied, ${figures.skipped} up to date, ${figures.diverged} diverged, ${figures.deleted} deleted, ${figures.failed} failed; ${bytesText(figures.bytes)} in ${seconds} s`;
    await ctx.log(figures.failed > 0 || figures.diverged > 0 ? 'warn' : 'info', `rule "${stored.name}": ${summary}`);
    const failed = figures.failed > 0;
    if (!failed || job.attempt >= job.maxAttempts) await finished(ctx, job.id, stored, trigger, failed ? 'failed' : 'succeeded', figures, projects);
    if (failed) throw new Error(`${figures.failed} of ${figures.total} artifact(s) could not be replicated (see the execution's tasks)`);
  },
};

/**
 * Records `replication.finished`, once for each Berth project the execution touched (webhooks are
 * per project), or once without a project when it touched none. A failure to record is logged: the
 * execution's own state is what counts.
 */
async function finished(ctx: JobContext<ReplicationServices>, jobId: number, rule: StoredReplicationRule, trigger: string, state: 'succeeded' | 'failed' | 'cancelled', figures: ExecutionFigures, projects: ReadonlySet<string>): Promise<void> {
  const { phase: _phase, ...counts } = figures;
  const detail = { rule: rule.name, ruleId: rule.id, execution: jobId, trigger, direction: rule.direction, registry: rule.registry, state, ...counts };
  try {
    for (const project of projects.size > 0 ? projects : [null]) {
      await ctx.services.replication.meta.events.record({ type: 'replication.finished', project, actor: `replication:${rule.name}`, detail });
    }
  } catch (err) {
    await ctx.log('warn', `could not record the replication.finished event: ${err instanceof Error ? err.message : String(err)}`);
  }
}
