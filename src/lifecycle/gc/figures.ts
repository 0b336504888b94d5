// What a garbage collection run reports: its figures, saved as the job's progress after every
// batch (so the API shows them live and keeps them as history), and read back by an attempt that
// takes a crashed run over.
import { z } from 'zod';

/** The phases of a run, in the order they run. */
export const PHASES = ['resume', 'uploads', 'untagged', 'sweep', 'orphans'] as const;
/** A phase's name. */
export type PhaseName = (typeof PHASES)[number];

/** Digests (or upload ids) a phase names in its figures and log, at most. */
export const SAMPLE_SIZE = 20;

/** One phase's figures. In a dry run, "deleted" means "a real run would delete". */
export interface PhaseFigures {
  state: 'pending' | 'running' | 'done' | 'skipped';
  /** Rows, objects or manifests looked at. */
  examined: number;
  deleted: number;
  bytes: number;
  /** Some of what was deleted: digests (upload ids in `uploads`, `repository@digest` in `untagged`). */
  sample: string[];
  /** Where an attempt that takes over goes on (a digest, an upload id, a repository id); null: from the start. */
  cursor: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Content that is garbage but still inside the grace period, so this run keeps it. */
export interface WithinGrace {
  /** Unreferenced blobs (and manifests' bytes) touched less than the grace period ago. */
  blobs: number;
  bytes: number;
  /** Untagged manifests pushed less than the grace period ago (with deleteUntagged). */
  manifests: number;
  /** Storage objects no row knows, written less than the grace period ago. */
  orphans: number;
  /** When the oldest of those blobs becomes collectable; null when there are none. */
  collectableAt: string | null;
}

/**
 * A run's figures: the job's progress while it runs, and its record afterwards. In a dry run the
 * counts and bytes are what a real run would delete, and nothing was.
 */
export interface GcFigures {
  dryRun: boolean;
  deleteUntagged: boolean;
  graceSeconds: number;
  /** Content untouched since this time (the run's start minus the grace period) may be collected. */
  cutoff: string;
  startedAt: string;
  finishedAt: string | null;
  /** The phase running now; `done` once the run ended. */
  phase: PhaseName | 'done';
  examined: number;
  /** Blobs and manifests' bytes deleted from storage (the sweep and an interrupted run's leftovers). */
  blobsDeleted: number;
  /** Untagged manifests deleted (with their children). */
  manifestsDeleted: number;
  /** Expired upload sessions and upload storage no session knew. */
  uploadsDeleted: number;
  /** Storage objects no metadata row knew. */
  orphansDeleted: number;
  /** Bytes deleted from storage, all phases. */
  bytesFreed: number;
  /** Bytes each project's quota usage fell by, by project name. */
  quotaReleased: Record<string, number>;
  withinGrace: WithinGrace;
  /** Wall time since the run started, across attempts. */
  durationSeconds: number;
  /** When the current phase should end, from its rate so far; null when unknown. */
  eta: { phase: PhaseName; seconds: number; at: string } | null;
  phases: Record<PhaseName, PhaseFigures>;
}

/** The figures of a run starting now. */
export function freshFigures(options: { dryRun: boolean; deleteUntagged: boolean; graceSeconds: number }, now: number): GcFigures {
  const phase = (): PhaseFigures => ({ state: 'pending', examined: 0, deleted: 0, bytes: 0, sample: [], cursor: null, startedAt: null, finishedAt: null });
  return {
    ...options,
    cutoff: new Date(now - options.graceSeconds * 1000).toISOString(),
    startedAt: new Date(now).toISOString(),
    finishedAt: null,
    phase: PHASES[0],
    examined: 0,
    blobsDeleted: 0,
    manifestsDeleted: 0,
    uploadsDeleted: 0,
    orphansDeleted: 0,
    bytesFreed: 0,
    quotaReleased: {},
    withinGrace: { blobs: 0, bytes: 0, manifests: 0, orphans: 0, collectableAt: null },
    durationSeconds: 0,
    eta: null,
    phases: { resume: phase(), uploads: phase(), untagged: phase(), sweep: phase(), orphans: phase() },
  };
}

const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)));
const count = z.number().int().min(0);
const phaseShape = z.object({
  state: z.enum(['pending', 'running', 'done', 'skipped']),
  examined: count,
  deleted: count,
  bytes: z.number().min(0),
  sample: z.array(z.string().max(300)).max(SAMPLE_SIZE),
  cursor: z.string().max(300).nullable(),
  startedAt: iso.nullable(),
  finishedAt: iso.nullable(),
});
const figuresShape = z.object({
  dryRun: z.boolean(),
  deleteUntagged: z.boolean(),
  graceSeconds: z.number().min(0),
  cutoff: iso,
  startedAt: iso,
  finishedAt: iso.nullable(),
  phase: z.enum([...PHASES, 'done']),
  examined: count,
  blobsDeleted: count,
  manifestsDeleted: count,
  uploadsDeleted: count,
  orphansDeleted: count,
  bytesFreed: z.number().min(0),
  quotaReleased: z.record(z.string(), z.number()),
  withinGrace: z.object({ blobs: count, bytes: z.number().min(0), manifests: count, orphans: count, collectableAt: iso.nullable() }),
  durationSeconds: z.number().min(0),
  eta: z.object({ phase: z.enum(PHASES), seconds: z.number(), at: iso }).nullable(),
  phases: z.object({ resume: phaseShape, uploads: phaseShape, untagged: phaseShape, sweep: phaseShape, orphans: phaseShape }),
});

/** The figures an earlier attempt saved (the job's progress text), when well-formed; else undefined. */
export function savedFigures(text: string | null | undefined): GcFigures | undefined {
  if (!text) return undefined;
  try {
    const parsed = figuresShape.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Adds `item` to a sample unless it is full. */
export function addSample(sample: string[], item: string): void {
  if (sample.length < SAMPLE_SIZE) sample.push(item);
}

/**
 * Where `digest` lies in its algorithm's hash space, from 0 to 1: digests are uniformly
 * distributed, so a phase walking them in order has covered about this fraction — the remaining
 * count for its ETA without counting anything. Undefined for a value that is not a hex digest.
 */
export function keyFraction(digest: string): number | undefined {
  const hex = /^[a-z0-9]+:([0-9a-f]{13})/.exec(digest)?.[1];
  return hex === undefined ? undefined : parseInt(hex, 16) / 16 ** 13;
}
