// One execution of a replication rule: the diff first (source tags and digests against the
// destination's tag list and HEADs of the tags it has), then copies of only what differs, several
// artifacts at once, each task recorded as a job item. Event-triggered work comes as marks
// (src/metadata/replication.ts) that the execution drains until none are left.
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../domain/errors.ts';
import { projectOf } from '../domain/names.ts';
import type { JobItemStore, NewJobItem } from '../metadata/job-items.ts';
import type { ReplicationMark, StoredReplicationRule } from '../metadata/replication.ts';
import { RemoteError } from '../remote/types.ts';
import { backoff } from '../domain/backoff.ts';
import { copyArtifact, DestinationBlobs, type CopyResult } from './copy.ts';
import { artifactKindOf, bytesText, destinationName, literalRepositories, needsBody, selectsArtifact, selectsRepository, selectsTag, type Destination, type Filters } from './rules.ts';
import { Throttle } from './throttle.ts';
import type { ReplicationSide } from './types.ts';

/** What a task (one artifact) came to. */
export type TaskOutcome = 'copied' | 'skipped' | 'diverged' | 'deleted' | 'failed';
export const TASK_OUTCOMES: readonly TaskOutcome[] = ['copied', 'skipped', 'diverged', 'deleted', 'failed'];

/** Figures of an execution, as its progress reports them. */
export interface ExecutionFigures {
  /** listing (source and destination read, copies under way), copying (listing done), done. */
  phase: 'listing' | 'copying' | 'done';
  total: number;
  copied: number;
  skipped: number;
  diverged: number;
  deleted: number;
  failed: number;
  /** Blob bytes sent to the destination so far. */
  bytes: number;
}

/** A rule as an execution uses it (validated). */
export interface ExecutionRule extends Pick<StoredReplicationRule, 'id' | 'name' | 'direction' | 'override' | 'bandwidth' | 'concurrency'> {
  filters: Filters;
  destination: Destination;
}

/** What an execution needs. */
export interface ExecutionOptions {
  jobId: number;
  rule: ExecutionRule;
  source: ReplicationSide;
  destination: ReplicationSide;
  signal: AbortSignal;
  jobItems: Pick<JobItemStore, 'append'>;
  marks: { take(ruleId: number, limit: number, afterId: number): Promise<ReplicationMark[]>; remove(ids: readonly number[]): Promise<void> };
  /** Whether the first round is a full pass (manual and scheduled executions) or marks only (event). */
  full: boolean;
  /**
   * Whether the rule's schedule ticked after `since` (ms): a tick while this execution runs is
   * coalesced into it (one execution per rule), so it owes another full pass.
   */
  scheduledSince(since: number): Promise<boolean>;
  /**
   * Whether this is the job's last attempt. Marks whose task failed are kept for the next attempt
   * (and, after the last one, dropped: the failures are on record, the next full run catches up).
   */
  lastAttempt: boolean;
  /** Attempts per artifact (transient failures only) and the wait before the second, doubling. */
  maxAttempts: number;
  retryDelayMs: number;
  log(level: 'info' | 'warn' | 'error', message: string): Promise<void>;
  progress(figures: ExecutionFigures): void;
  /** Filled with the projects of Berth's end of every task (for the `replication.finished` event of each). */
  projects: Set<string>;
}

/** Marks read per round; rounds per execution (the rest is left to the next execution, see the sweep). */
const MARKS_PER_ROUND = 1000;
const MAX_ROUNDS = 50;
/** Task records written per statement. */
const ITEM_BATCH = 100;

/** Whether `err` is worth another attempt: a peer's 429/5xx, a timeout, a broken connection, storage unavailable. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RemoteError) return err.transient;
  if (err instanceof RegistryError) return err.code === 'UNAVAILABLE' || err.code === 'TOOMANYREQUESTS';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ECONNREFUSED' || code === 'UND_ERR_SOCKET';
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 500);
}

/** Runs `tasks` with at most `limit` at once. */
class Pool {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly all = new Set<Promise<void>>();
  constructor(private readonly limit: number) {}

  /** Starts `task` once a slot is free (waiting for it); the task must not reject. */
  async add(task: () => Promise<void>): Promise<void> {
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    const done = task().finally(() => {
      this.running--;
      this.all.delete(done);
      this.waiting.shift()?.();
    });
    this.all.add(done);
  }

  /** Resolves when every task started has ended. */
  async drain(): Promise<void> {
    while (this.all.size > 0) await Promise.all([...this.all]);
  }
}

/** One artifact to bring to the destination. */
interface Task {
  repository: string;
  /** The tag, or undefined for an untagged artifact (a referrer pushed on its own). */
  tag?: string;
  digest?: string;
  to: string;
  /** Whether the destination lists the tag (undefined: not known, ask). */
  listed?: boolean;
}

/**
 * Runs the execution: full passes and mark rounds until no marks are left (at most MAX_ROUNDS).
 * Resolves with the figures; rejects only when the signal aborts or reading the source's
 * repositories fails. Task failures are recorded, counted and logged, not thrown.
 */
export async function execute(options: ExecutionOptions): Promise<ExecutionFigures> {
  const run = new Execution(options);
  return run.execute();
}

class Execution {
  readonly figures: ExecutionFigures = { phase: 'listing', total: 0, copied: 0, skipped: 0, diverged: 0, deleted: 0, failed: 0, bytes: 0 };
  private readonly pool: Pool;
  private readonly throttle: Throttle;
  private readonly known = new DestinationBlobs();
  private items: NewJobItem[] = [];
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly o: ExecutionOptions) {
    this.pool = new Pool(o.rule.concurrency);
    this.throttle = new Throttle(o.rule.bandwidth ?? undefined);
  }

  async execute(): Promise<ExecutionFigures> {
    const { o } = this;
    let lastFull = -Infinity;
    // Marks are read once each: those after `seen` (a failed one stays in the table, not in the loop).
    let seen = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        o.signal.throwIfAborted();
        const marks = await o.marks.take(o.rule.id, MARKS_PER_ROUND, seen);
        seen = Math.max(seen, ...marks.map((m) => m.id));
        const full = (round === 0 && o.full) || marks.some((m) => m.action === 'full') || (lastFull > -Infinity && (await o.scheduledSince(lastFull)));
        if (!full && marks.length === 0) break;
        const failed = new Set<number>();
        if (full) {
          lastFull = Date.now();
          await this.fullPass();
        } else for (const mark of marks) await this.pool.add(async () => void ((await this.markTask(mark)) || failed.add(mark.id)));
        await this.pool.drain();
        await this.flush();
        // Marks made after this round's reading stay for the next round. A round stopped by a
        // shutdown or a lost lease keeps its marks for the attempt that takes over; a cancelled
        // execution drops every mark made before the cancel (below).
        o.signal.throwIfAborted();
        await o.marks.remove(marks.filter((m) => o.lastAttempt || !failed.has(m.id)).map((m) => m.id));
      }
    } catch (err) {
      // The person who cancelled wants it to stop, including the runs coalesced into it and the
      // pushes it had still to copy (the next full run catches up): otherwise the sweep would
      // start the rule again on what was left.
      if (o.signal.aborted && o.signal.reason === 'cancelled') await this.dropMarks(Date.now());
      throw err;
    } finally {
      await this.pool.drain();
      await this.flush().catch(() => undefined);
    }
    o.signal.throwIfAborted();
    this.figures.phase = 'done';
    o.progress({ ...this.figures });
    return this.figures;
  }

  /** Removes the rule's marks made up to `before` (ms). */
  private async dropMarks(before: number): Promise<void> {
    for (let after = 0; ; ) {
      const marks = (await this.o.marks.take(this.o.rule.id, MARKS_PER_ROUND, after)).filter((m) => m.createdAt <= before);
      if (marks.length === 0) return;
      await this.o.marks.remove(marks.map((m) => m.id));
      after = marks.at(-1)!.id;
    }
  }

  /** Every source repository the filters select, every tag of each: compared, copied where they differ. */
  private async fullPass(): Promise<void> {
    const { o } = this;
    const { filters } = o.rule;
    const named = o.rule.direction === 'pull' ? literalRepositories(filters) : undefined;
    const repositories = (named ?? (await o.source.repositories(o.signal))).filter((r) => selectsRepository(filters, r)).sort();
    await o.log('info', `${repositories.length} source repositor${repositories.length === 1 ? 'y' : 'ies'} selected at ${o.source.name}`);
    this.figures.phase = 'listing';
    for (const repository of repositories) {
      o.signal.throwIfAborted();
      const to = destinationName(o.rule.destination, repository);
      if (to === undefined) {
        this.figures.total++;
        this.fail({ repository, to: repository }, 1, 0, new Error(`the destination namespace setting maps ${repository} to no valid repository name`));
        continue;
      }
      let tags: string[];
      let present: Set<string>;
      try {
        tags = (await this.retrying(() => o.source.tags(repository, o.signal))).filter((t) => selectsTag(filters, t)).sort();
        if (tags.length === 0) continue;
        present = new Set(await this.retrying(() => o.destination.tags(to, o.signal)));
      } catch (err) {
        if (o.signal.aborted) throw err;
        this.figures.total++;
        this.fail({ repository, to }, o.maxAttempts, 0, err);
        await o.log('error', `could not list tags of ${repository} (${o.source.name}) or ${to} (${o.destination.name}): ${messageOf(err)}`);
        continue;
      }
      for (const tag of tags) await this.pool.add(async () => void (await this.syncTask({ repository, tag, to, listed: present.has(tag) })));
    }
    this.figures.phase = 'copying';
    o.progress({ ...this.figures });
  }

  /** The task of one mark: a tag or digest to sync, or a deletion to repeat at the destination; false when it failed. */
  private async markTask(mark: ReplicationMark): Promise<boolean> {
    const { filters } = this.o.rule;
    if (mark.action === 'full') return true;
    if (!selectsRepository(filters, mark.repository) || (mark.tag !== null && !selectsTag(filters, mark.tag))) return true;
    const to = destinationName(this.o.rule.destination, mark.repository);
    if (to === undefined) {
      this.figures.total++;
      // Settled: the rule's own setting, not the destination, is at fault; retrying cannot help.
      this.fail({ repository: mark.repository, to: mark.repository }, 1, 0, new Error(`the destination namespace setting maps ${mark.repository} to no valid repository name`));
      return true;
    }
    const task: Task = { repository: mark.repository, to, ...(mark.tag !== null ? { tag: mark.tag } : {}), ...(mark.digest !== null ? { digest: mark.digest } : {}) };
    if (mark.action === 'delete') return this.deleteTask(task);
    if (task.tag === undefined && task.digest === undefined) return true;
    return this.syncTask(task);
  }

  /** Compares one tag (or digest) and copies it when the destination differs; records the outcome; false when it failed. */
  private async syncTask(task: Task): Promise<boolean> {
    const { o } = this;
    const started = performance.now();
    let attempts = 0;
    this.figures.total++;
    try {
      const result = await this.retrying(async () => {
        attempts++;
        const reference = task.tag ?? task.digest!;
        const source = await o.source.head(task.repository, reference, o.signal);
        if (!source) return { outcome: 'gone' as const };
        if (o.rule.filters.artifactTypes?.length) {
          const kind = needsBody(o.rule.filters.artifactTypes) ? artifactKindOf((await o.source.manifest(task.repository, source.digest, o.signal)).body, source.mediaType) : { mediaType: source.mediaType };
          if (!selectsArtifact(o.rule.filters.artifactTypes, kind)) return { outcome: 'filtered' as const };
        }
        const there = task.listed === false ? undefined : await o.destination.head(task.to, task.tag ?? source.digest, o.signal);
        if (there?.digest === source.digest) return { outcome: 'skipped' as const, digest: source.digest };
        if (there && task.tag !== undefined && !o.rule.override) return { outcome: 'diverged' as const, digest: source.digest, destinationDigest: there.digest };
        const copy = await copyArtifact(
          { source: o.source, destination: o.destination, concurrency: o.rule.concurrency, throttle: this.throttle, known: this.known, signal: o.signal, onBytes: (n) => void (this.figures.bytes += n) },
          { repository: task.repository, reference: task.tag ?? source.digest },
          { repository: task.to, ...(task.tag !== undefined ? { tag: task.tag } : {}) },
        );
        return { outcome: 'copied' as const, digest: copy.digest, copy };
      });
      const durationMs = Math.round(performance.now() - started);
      const detail = { destination: `${task.to}${this.ref(task)}`, digest: 'digest' in result ? result.digest : (task.digest ?? null), durationMs, attempts };
      switch (result.outcome) {
        case 'gone':
        case 'filtered':
          this.figures.total--;
          return true;
        case 'skipped':
          this.figures.skipped++;
          this.record(task, 'skipped', detail);
          break;
        case 'diverged':
          this.figures.diverged++;
          this.record(task, 'diverged', { ...detail, destinationDigest: result.destinationDigest });
          await o.log('warn', `left ${task.to}${this.ref(task)} at ${o.destination.name} alone: it points at ${result.destinationDigest}, the source at ${result.digest} (override is off)`);
          break;
        case 'copied':
          this.copied(task, result.copy, durationMs, attempts);
          break;
      }
      return true;
    } catch (err) {
      if (o.signal.aborted) {
        this.figures.total--;
        return false;
      }
      this.fail(task, attempts, Math.round(performance.now() - started), err);
      await o.log('error', `could not copy ${task.repository}${this.ref(task)} → ${task.to}${this.ref(task)} after ${attempts} attempt(s): ${messageOf(err)}`);
      return false;
    } finally {
      o.progress({ ...this.figures });
    }
  }

  /** Deletes at the destination what was deleted at the source — only while the destination's tag still points at that digest. */
  private async deleteTask(task: Task): Promise<boolean> {
    const { o } = this;
    const started = performance.now();
    let attempts = 0;
    this.figures.total++;
    try {
      const outcome = await this.retrying(async () => {
        attempts++;
        // A tag deleted here while its artifact stays: registries cannot delete a tag alone, and
        // deleting the artifact there would take its other tags.
        if (task.tag !== undefined && task.digest !== undefined && (await o.source.head(task.repository, task.digest, o.signal))) return 'kept' as const;
        const there = await o.destination.head(task.to, task.tag ?? task.digest!, o.signal);
        if (!there || (task.digest !== undefined && there.digest !== task.digest)) return 'elsewhere' as const;
        await o.destination.deleteManifest(task.to, there.digest, o.signal);
        return 'deleted' as const;
      });
      const detail = { destination: `${task.to}${this.ref(task)}`, digest: task.digest ?? null, durationMs: Math.round(performance.now() - started), attempts };
      if (outcome === 'deleted') {
        this.figures.deleted++;
        this.record(task, 'deleted', detail);
        await o.log('info', `deleted ${task.to}${this.ref(task)} at ${o.destination.name}`);
      } else {
        this.figures.skipped++;
        this.record(task, 'skipped', { ...detail, note: outcome === 'kept' ? 'only a tag was deleted here; the artifact stays, so the destination is left as it is' : 'the destination does not hold that artifact under that name' });
      }
      return true;
    } catch (err) {
      if (o.signal.aborted) return false;
      this.fail(task, attempts, Math.round(performance.now() - started), err);
      await o.log('error', `could not delete ${task.to}${this.ref(task)} at ${o.destination.name}: ${messageOf(err)}`);
      return false;
    } finally {
      o.progress({ ...this.figures });
    }
  }

  private copied(task: Task, copy: CopyResult, durationMs: number, attempts: number): void {
    this.figures.copied++;
    this.record(task, 'copied', {
      destination: `${task.to}${this.ref(task)}`,
      digest: copy.digest,
      bytes: copy.bytes,
      manifests: copy.manifestsPut,
      blobsCopied: copy.blobsCopied,
      blobsMounted: copy.blobsMounted,
      blobsSkipped: copy.blobsSkipped,
      referrers: copy.referrers,
      durationMs,
      attempts,
    });
    const mounted = copy.blobsMounted > 0 ? `, ${copy.blobsMounted} mounted` : '';
    void this.o.log(
      'info',
      `copied ${task.repository}${this.ref(task)} → ${task.to}${this.ref(task)} (${copy.blobsCopied} blob${copy.blobsCopied === 1 ? '' : 's'}${mounted}, ${bytesText(copy.bytes)}, ${(durationMs / 1000).toFixed(1)} s)`,
    );
  }

  private fail(task: Pick<Task, 'repository' | 'tag' | 'digest' | 'to'>, attempts: number, durationMs: number, err: unknown): void {
    this.figures.failed++;
    this.record(task, 'failed', { destination: `${task.to}${this.ref(task)}`, digest: task.digest ?? null, durationMs, attempts, error: messageOf(err) });
  }

  /** `:tag`, `@digest` or nothing. */
  private ref(task: Pick<Task, 'tag' | 'digest'>): string {
    return task.tag !== undefined ? `:${task.tag}` : task.digest !== undefined ? `@${task.digest}` : '';
  }

  private record(task: Pick<Task, 'repository' | 'tag' | 'digest' | 'to'>, outcome: TaskOutcome, detail: Record<string, unknown>): void {
    this.o.projects.add(projectOf(this.o.source.local ? task.repository : task.to));
    this.items.push({ subject: `${task.repository}${this.ref(task)}`.slice(0, 600), outcome, detail });
    if (this.items.length >= ITEM_BATCH) void this.flush().catch(() => undefined);
  }

  /** Writes the buffered task records (in order: one flush after the other). */
  private flush(): Promise<void> {
    const batch = this.items;
    this.items = [];
    this.flushing = this.flushing.catch(() => undefined).then(() => (batch.length > 0 ? this.o.jobItems.append(this.o.jobId, batch).then(() => undefined) : undefined));
    return this.flushing;
  }

  /** Runs `step` up to maxAttempts times while it fails transiently, waiting retryDelay, doubling. */
  private async retrying<T>(step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        if (this.o.signal.aborted || attempt >= this.o.maxAttempts || !isTransient(err)) throw err;
        await sleep(backoff(attempt, { baseMs: this.o.retryDelayMs, maxMs: Infinity }), undefined, { signal: this.o.signal });
      }
    }
  }
}
