// Shapes of the operations API: replication (src/http/api/replication.ts), garbage collection
// (src/http/api/gc.ts) and background jobs (src/http/api/jobs.ts, job-start.ts). Progress figures
// are `unknown` on the server (each job kind saves its own), so they are read here defensively.
import { ApiError } from './client';

import type { JobState } from './types';

export type { JobState };
export const JOB_STATES: JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** Whether a job (a run, an execution) may still change: poll it. */
export const isActive = (state: JobState | undefined): boolean => state === 'queued' || state === 'running';

/** How far a job got: the fields every view of a run shows. */
export interface JobLifecycle {
  state: JobState;
  cancelRequested: boolean;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface LogLine {
  time: string;
  level: string;
  message: string;
}

// ---- replication ----

export type Direction = 'push' | 'pull';
export type Trigger = 'manual' | 'schedule' | 'event';
export type DestinationMode = 'keep' | 'replace' | 'flatten';

export interface Selector {
  pattern: string;
  exclude: boolean;
}

export interface ReplicationFilters {
  repositories: Selector[];
  tags: Selector[];
  artifactTypes?: string[];
}

export interface ReplicationDestination {
  mode: DestinationMode;
  namespace?: string;
  levels?: number;
}

/** A rule as GET /replication/rules answers it. */
export interface ReplicationRule {
  name: string;
  description: string | null;
  registry: string;
  direction: Direction;
  filters: ReplicationFilters;
  destination: ReplicationDestination;
  trigger: Trigger;
  cron: string | null;
  nextRunAt: string | null;
  replicateDeletes: boolean;
  override: boolean;
  /** Bytes per second; null: unlimited. */
  bandwidth: number | null;
  concurrency: number;
  enabled: boolean;
  /** The rule in words (English, from the server). */
  text: string;
  createdBy: string | null;
  createdAt: string;
  updatedBy: string | null;
  updatedAt: string;
}

/** The body of POST (with name) and PATCH (without) /replication/rules. */
export interface ReplicationRuleInput {
  name?: string;
  description?: string | null;
  registry: string;
  direction: Direction;
  filters: ReplicationFilters;
  destination: ReplicationDestination;
  trigger: Trigger;
  cron?: string | null;
  replicateDeletes: boolean;
  override: boolean;
  bandwidth?: number | null;
  concurrency: number;
  enabled: boolean;
}

export type TaskOutcome = 'copied' | 'skipped' | 'diverged' | 'deleted' | 'failed';
export const TASK_OUTCOMES: TaskOutcome[] = ['copied', 'skipped', 'diverged', 'deleted', 'failed'];

/** An execution's figures (its job's progress). */
export interface ExecutionFigures {
  phase: 'listing' | 'copying' | 'done';
  total: number;
  copied: number;
  skipped: number;
  diverged: number;
  deleted: number;
  failed: number;
  bytes: number;
}

export interface ReplicationExecution extends JobLifecycle {
  id: number;
  rule: string | null;
  trigger: Trigger;
  progress: unknown;
}

/** GET /replication/executions/{id}: with the count of each task outcome. */
export interface ExecutionDetail extends ReplicationExecution {
  outcomes: Partial<Record<TaskOutcome, number>>;
}

export interface ReplicationTask {
  subject: string;
  outcome: TaskOutcome;
  destination: string | null;
  digest: string | null;
  destinationDigest?: string;
  bytes?: number;
  manifests?: number;
  blobsCopied?: number;
  blobsMounted?: number;
  blobsSkipped?: number;
  referrers?: number;
  durationMs: number | null;
  attempts: number | null;
  error?: string;
  note?: string;
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An execution's progress as figures, or null before it reported any. */
export function executionFigures(progress: unknown): ExecutionFigures | null {
  if (!isRecord(progress)) return null;
  const phase = progress.phase === 'copying' || progress.phase === 'done' ? progress.phase : 'listing';
  return { phase, total: num(progress.total), copied: num(progress.copied), skipped: num(progress.skipped), diverged: num(progress.diverged), deleted: num(progress.deleted), failed: num(progress.failed), bytes: num(progress.bytes) };
}

/** Artifacts an execution has finished with, whatever the outcome. */
export const executionDone = (f: ExecutionFigures): number => f.copied + f.skipped + f.diverged + f.deleted + f.failed;

// ---- garbage collection ----

export const GC_PHASES = ['resume', 'uploads', 'untagged', 'sweep', 'orphans'] as const;
export type GcPhase = (typeof GC_PHASES)[number];

export interface GcPhaseFigures {
  state: 'pending' | 'running' | 'done' | 'skipped';
  examined: number;
  deleted: number;
  bytes: number;
}

/** What a run did (a dry run: would do); fields other than the four the API promises may be absent. */
export interface GcFigures {
  phase: string;
  examined: number;
  blobsDeleted: number;
  bytesFreed: number;
  eta: unknown;
  manifestsDeleted?: number;
  uploadsDeleted?: number;
  orphansDeleted?: number;
  durationSeconds?: number;
  graceSeconds?: number;
  withinGrace?: { blobs: number; bytes: number; manifests: number; orphans: number; collectableAt: string | null };
  phases?: Partial<Record<GcPhase, GcPhaseFigures>>;
}

export interface GcRun extends JobLifecycle {
  id: number;
  dryRun: boolean;
  deleteUntagged: boolean;
  trigger: 'manual' | 'schedule';
  attempts: number;
  maxAttempts: number;
  figures: GcFigures | null;
}

export interface GcSchedule {
  cron: string | null;
  deleteUntagged: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
}

export interface GcLogPage {
  items: LogLine[];
  total: number;
  offset: number;
  limit: number;
}

/** The seconds left of a GC run's current phase, when the API estimated them. */
export function gcEtaSeconds(eta: unknown): number | null {
  return isRecord(eta) && typeof eta.seconds === 'number' && Number.isFinite(eta.seconds) ? eta.seconds : null;
}

// ---- jobs ----

/** The kinds Berth runs (src/jobs/kinds/), for the list's filter. */
export const JOB_KINDS = ['gc', 'housekeeping', 'replication', 'retention', 'upload-expiry', 'verify-blobs', 'webhook'] as const;
/** The kinds POST /jobs accepts (src/http/api/job-start.ts). */
export const STARTABLE_KINDS = ['verify-blobs'] as const;

export interface Job {
  id: number;
  kind: string;
  state: JobState;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  runAt: string;
  leaseOwner: string | null;
  leaseUntil: string | null;
  progress: unknown;
  error: string | null;
  cancelRequested: boolean;
  dedupeKey: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** GET /jobs/{id}: with its log. */
export interface JobDetail extends Job {
  log: LogLine[];
}

/**
 * How far a job of any kind got, when its progress says: done of total (replication counts its
 * outcomes, verify-blobs its `checked`), or just its phase.
 */
export function jobFraction(progress: unknown): { done: number; total: number } | { phase: string } | null {
  if (!isRecord(progress)) return null;
  if (typeof progress.total === 'number' && progress.total > 0) {
    if (typeof progress.checked === 'number') return { done: progress.checked, total: progress.total };
    const figures = executionFigures(progress);
    if (figures && typeof progress.copied === 'number') return { done: executionDone(figures), total: figures.total };
  }
  return typeof progress.phase === 'string' ? { phase: progress.phase } : null;
}

// ---- errors ----

/**
 * The fields an INVALID answer names, by path (e.g. `cron`, `filters.tags.0.pattern`); empty for
 * any other error.
 */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(error instanceof ApiError) || !isRecord(error.detail) || !Array.isArray(error.detail.fields)) return out;
  for (const f of error.detail.fields as unknown[]) {
    if (isRecord(f) && typeof f.path === 'string' && typeof f.message === 'string') out[f.path] = out[f.path] ? `${out[f.path]}; ${f.message}` : f.message;
  }
  return out;
}
