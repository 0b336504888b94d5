// Online garbage collection (issue 14). Marks from the metadata, never by walking storage: the
// `blobs` table knows every content object, and BlobRecords.condemn decides under lock which of
// them nothing references; pushes go on meanwhile (see BlobRecords for the protocol). A run has
// phases, in order, each resumable from the figures it saves:
//
//   resume    blobs an interrupted run left `deleting`: bytes deleted, rows forgotten
//   uploads   expired upload sessions; upload storage no session row knows
//   untagged  (deleteUntagged) manifests no tag reaches, pushed before the cutoff
//   sweep     blobs unreferenced and untouched for the grace period
//   orphans   storage objects no row knows, written before the cutoff
import { orphansPhase, resumePhase, sweepPhase } from './blob-phases.ts';
import { freshFigures, type GcFigures, type PhaseName } from './figures.ts';
import type { GcResult } from './metrics.ts';
import { GcRun, type GcDeps, type GcReporter } from './run.ts';
import { untaggedPhase, type UntaggedPlan } from './untagged.ts';
import { uploadsPhase } from './uploads.ts';

export type { GcFigures, PhaseFigures, PhaseName, WithinGrace } from './figures.ts';
export { PHASES, savedFigures } from './figures.ts';
export type { GcDeps, GcReporter, GcStore } from './run.ts';
export { createGcMetrics, type GcMetrics } from './metrics.ts';

/** What a run is asked to do. */
export interface GcOptions {
  /** Report what a real run would delete; change nothing. */
  dryRun: boolean;
  /** Also delete untagged manifests (never the children of a tagged index, nor referrers of manifests that stay). */
  deleteUntagged: boolean;
  /** `gc.grace`, seconds. */
  graceSeconds: number;
}

/** The figures of an earlier attempt of the same run that this attempt goes on from, if any. */
function resumable(saved: GcFigures | undefined, options: GcOptions): GcFigures | undefined {
  // A dry run starts over: what it decided in memory (its untagged plan) died with its attempt, and it changed nothing.
  if (!saved || saved.dryRun || options.dryRun || saved.deleteUntagged !== options.deleteUntagged || saved.phase === 'done') return undefined;
  return saved;
}

/**
 * Runs garbage collection and returns its figures (also reported as progress after every batch).
 * With `saved` — the figures an earlier attempt of the same job saved — a real run goes on where
 * that attempt stopped (after its `resume` phase has finished what the attempt left `deleting`).
 * Throws the signal's reason when told to stop (between batches, after the batch in flight), and
 * the database's or storage's error when one fails (what was condemned then is finished by the
 * next attempt's `resume` phase). Every phase is idempotent: running it again deletes nothing twice.
 */
export async function collectGarbage(deps: GcDeps, options: GcOptions, reporter: GcReporter, saved?: GcFigures): Promise<GcFigures> {
  const earlier = resumable(saved, options);
  const figures = earlier ?? freshFigures(options, Date.now());
  const run = new GcRun(deps, figures, reporter);
  const started = performance.now();
  let result: GcResult = 'failed';
  try {
    if (earlier) await run.info(`resuming the run started at ${figures.startedAt} in its ${figures.phase} phase (cutoff ${figures.cutoff})`);
    else {
      const what = `${options.dryRun ? 'dry run: nothing is deleted; ' : ''}${options.deleteUntagged ? 'untagged manifests too; ' : ''}`;
      await run.info(`garbage collection: ${what}grace ${options.graceSeconds} s: content untouched since ${figures.cutoff} may be collected`);
    }
    // Always first, and again in every attempt: it finishes what any earlier one left condemned.
    await resumePhase(run);
    const due = (name: PhaseName) => figures.phases[name].state !== 'done' && figures.phases[name].state !== 'skipped';
    if (due('uploads')) await uploadsPhase(run);
    let plan: UntaggedPlan | undefined;
    if (!options.deleteUntagged) await run.end('untagged', 'skipped');
    else if (due('untagged')) plan = await untaggedPhase(run);
    if (due('sweep')) await sweepPhase(run, plan);
    if (due('orphans')) await orphansPhase(run);
    figures.phase = 'done';
    figures.finishedAt = new Date().toISOString();
    await run.report();
    const verb = options.dryRun ? 'would delete' : 'deleted';
    await run.info(
      `done in ${Math.round(figures.durationSeconds)} s: ${verb} ${figures.blobsDeleted} blobs, ${figures.manifestsDeleted} untagged manifests, ${figures.uploadsDeleted} uploads, ${figures.orphansDeleted} orphaned objects — ${figures.bytesFreed} bytes`,
    );
    result = 'succeeded';
    return figures;
  } catch (err) {
    const reason: unknown = reporter.signal.aborted ? reporter.signal.reason : undefined;
    result = reason === 'cancelled' ? 'cancelled' : reason !== undefined ? 'interrupted' : 'failed';
    // What was done so far stays the job's progress: the history shows it, a later attempt resumes from it.
    await run.report().catch(() => undefined);
    throw err;
  } finally {
    deps.metrics?.runs.inc({ result });
    deps.metrics?.duration.observe((performance.now() - started) / 1000);
  }
}
