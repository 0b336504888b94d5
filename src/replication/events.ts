// Event-triggered replication: the outbox consumer `replication` (src/events/consumer.ts) turns
// pushes (and, for rules that ask, deletions) matching enabled event rules into marks, and starts
// the rule's execution — one per rule at a time: a burst of pushes while one runs is drained by it.
import type { Logger } from 'pino';
import type { EventHandler } from '../events/consumer.ts';
import type { OutboxEvent } from '../metadata/events.ts';
import type { NewJob } from '../metadata/jobs.ts';
import { REPLICATION_KIND, replicationKey, type NewMark, type ReplicationStore, type StoredReplicationRule } from '../metadata/replication.ts';
import { filtersSchema, selectsRepository, selectsTag, type Filters } from './rules.ts';

/** The consumer's name: its cursor and lease (`events:replication`). */
export const REPLICATION_CONSUMER = 'replication';
/** How long the rule list is used before it is read again. */
const RULES_TTL_MS = 2_000;
/** Clock difference between replicas allowed for (event times are the pushing replica's). */
const CLOCK_SKEW_MS = 2_000;
/** Marks older than this with no execution to drain them get one (see `sweep`). */
const STALE_MARK_MS = 3_000;
/** Attempts of an event-triggered execution as a whole (a replica dying mid-run takes one); artifacts are retried within each. */
const ATTEMPTS = 2;

/** What the handler needs. */
export interface ReplicationEventDeps {
  replication: Pick<ReplicationStore, 'eventRules' | 'addMarks' | 'rulesWithMarksBefore'>;
  /** Adds a job and wakes the workers (JobQueue.enqueue). */
  enqueue(job: NewJob): Promise<{ id: number; created: boolean }>;
  log: Logger;
}

interface EventRule {
  id: number;
  name: string;
  filters: Filters;
  replicateDeletes: boolean;
  /** Events before the rule existed are not its business (a new consumer reads a week back). */
  createdAt: number;
}

/** The marks `event` makes for `rule` (none when the rule does not select it). */
export function marksFor(rule: EventRule, event: OutboxEvent): NewMark[] {
  if (!event.repository || event.time < rule.createdAt || !selectsRepository(rule.filters, event.repository)) return [];
  const base = { ruleId: rule.id, repository: event.repository, eventId: event.id };
  switch (event.type) {
    case 'artifact.pushed':
      if (event.tag !== null) return selectsTag(rule.filters, event.tag) ? [{ ...base, tag: event.tag, digest: event.digest, action: 'sync' }] : [];
      // Untagged: a referrer (signature, SBOM) of an artifact is replicated on its own; an index's
      // children come with their index.
      return event.digest !== null && typeof event.detail?.subject === 'string' ? [{ ...base, tag: null, digest: event.digest, action: 'sync' }] : [];
    case 'artifact.deleted': {
      if (!rule.replicateDeletes || event.digest === null) return [];
      const tags = Array.isArray(event.detail?.tags) ? event.detail.tags.filter((t): t is string => typeof t === 'string') : [];
      if (tags.length === 0) return [{ ...base, tag: null, digest: event.digest, action: 'delete' }];
      return tags.filter((t) => selectsTag(rule.filters, t)).map((tag) => ({ ...base, tag, digest: event.digest, action: 'delete' as const }));
    }
    case 'tag.deleted':
      if (!rule.replicateDeletes || event.tag === null || !selectsTag(rule.filters, event.tag)) return [];
      return [{ ...base, tag: event.tag, digest: event.digest, action: 'delete' }];
    default:
      return [];
  }
}

/**
 * The handler of consumer `replication`. `handle` adds the marks of a batch and enqueues an
 * execution of each rule that got some (exclusive per rule: while one is queued or running,
 * nothing is added and that one drains the new marks). `sweep` starts an execution for rules whose
 * marks were left undrained (an execution that ended just before the marks came). Both idempotent.
 */
export function replicationEvents(deps: ReplicationEventDeps): EventHandler {
  const log = deps.log.child({ component: 'replication' });
  let cached: { rules: EventRule[]; at: number; wall: number } | undefined;

  /**
   * The enabled event rules. The list is read again after RULES_TTL_MS, and whenever an event is
   * not clearly older than the list (`newest`): a rule created just before a push must see it.
   */
  async function rules(newest: number): Promise<EventRule[]> {
    if (cached && performance.now() - cached.at < RULES_TTL_MS && newest < cached.wall - CLOCK_SKEW_MS) return cached.rules;
    const wall = Date.now();
    const stored = await deps.replication.eventRules();
    const usable: EventRule[] = [];
    for (const rule of stored.filter((r: StoredReplicationRule) => r.direction === 'push')) {
      const filters = filtersSchema.safeParse(rule.filters);
      if (filters.success) usable.push({ id: rule.id, name: rule.name, filters: filters.data, replicateDeletes: rule.replicateDeletes, createdAt: rule.createdAt });
      else log.warn({ rule: rule.name }, 'replication rule has invalid filters: skipped');
    }
    cached = { rules: usable, at: performance.now(), wall };
    return usable;
  }

  async function start(ruleIds: Iterable<number>, why: string): Promise<void> {
    for (const rule of ruleIds) {
      const job = await deps.enqueue({ kind: REPLICATION_KIND, payload: { rule, trigger: 'event' }, exclusiveKey: replicationKey(rule), maxAttempts: ATTEMPTS });
      if (job.created) log.info({ rule, job: job.id, why }, 'replication execution enqueued');
    }
  }

  return {
    async handle(events) {
      const active = await rules(Math.max(...events.map((e) => e.time)));
      if (active.length === 0) return;
      const marks: NewMark[] = [];
      for (const event of events) for (const rule of active) marks.push(...marksFor(rule, event));
      if (marks.length === 0) return;
      await deps.replication.addMarks(marks);
      await start(new Set(marks.map((m) => m.ruleId)), 'events');
    },
    async sweep() {
      const stale = await deps.replication.rulesWithMarksBefore(Date.now() - STALE_MARK_MS);
      if (stale.length > 0) await start(stale, 'undrained marks');
    },
  };
}
