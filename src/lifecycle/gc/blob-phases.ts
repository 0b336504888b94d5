// The phases that delete content objects: `resume` (what an interrupted run condemned), `sweep`
// (blobs nothing references, past the grace period) and `orphans` (storage objects no row knows).
// Each walks digests in order with a cursor an attempt that takes over goes on from, and keeps a
// few batches in flight: storage deletes some while the database condemns the next.
import type { BlobEntry } from '../../metadata/blobs.ts';
import { keyFraction, type PhaseFigures } from './figures.ts';
import { retryingConflicts } from '../../metadata/conflicts.ts';
import { deleteCondemned, Pipeline } from './pipeline.ts';
import { unreferencedSince, unreferencedWithout } from './queries.ts';
import type { GcRun } from './run.ts';
import type { UntaggedPlan } from './untagged.ts';

/** Rows or objects per batch (S3 DeleteObjects takes 1,000 keys a call). */
const PAGE = 1000;
/** Blob rows the sweep looks at per query: its candidates are at most this many (one batch). */
const WINDOW = 1000;

const named = (batch: readonly BlobEntry[]) => batch.map((b) => ({ name: b.digest, size: b.size }));
const bytesOf = (batch: readonly BlobEntry[]) => batch.reduce((sum, b) => sum + b.size, 0);

/** Counts `batch` as deleted (or, in a dry run, collectable) in `phase` and in the run's `kind` total. */
function tally(run: GcRun, phase: PhaseFigures, kind: 'blobsDeleted' | 'orphansDeleted', batch: readonly BlobEntry[]): void {
  run.count(phase, named(batch));
  run.freed(kind, batch.length, bytesOf(batch));
}

/**
 * Runs `walk` with a pipeline whose batches move `phase.cursor` as they complete; on any failure
 * (cancellation included) waits for the batches in flight first, so their rows are forgotten.
 */
async function pipelined(phase: PhaseFigures, walk: (pipeline: Pipeline) => Promise<void>): Promise<void> {
  const pipeline = new Pipeline((cursor) => (phase.cursor = cursor));
  try {
    await walk(pipeline);
    await pipeline.drain();
  } catch (err) {
    await pipeline.abandon();
    throw err;
  }
}

async function summary(run: GcRun, name: string, phase: PhaseFigures, what: string): Promise<void> {
  const verb = run.dryRun ? 'would delete' : 'deleted';
  await run.info(`${name}: examined ${phase.examined}, ${verb} ${phase.deleted} ${what} (${phase.bytes} bytes)`);
  if (phase.sample.length > 0) await run.info(`${name}: ${run.dryRun ? 'would delete' : 'deleted'}, e.g. ${phase.sample.join(' ')}`);
}

/**
 * Finishes what an interrupted run left: blobs marked `deleting` lose their bytes, then their rows
 * (pushes waiting to store the same content again go on). Runs first in every attempt.
 */
export async function resumePhase(run: GcRun): Promise<void> {
  const phase = await run.begin('resume');
  await pipelined(phase, async (pipeline) => {
    let after = '';
    for (;;) {
      run.check();
      const page = await run.deps.meta.blobs.deleting(PAGE, after);
      if (page.length === 0) break;
      phase.examined += page.length;
      after = page.at(-1)!.digest;
      if (run.dryRun) tally(run, phase, 'blobsDeleted', page);
      else {
        await pipeline.add(async () => {
          await deleteCondemned(run, page);
          tally(run, phase, 'blobsDeleted', page);
        }, after);
      }
      await run.report(keyFraction(after));
    }
  });
  if (phase.examined > 0) await summary(run, 'resume', phase, 'blobs an interrupted run had condemned');
  await run.end('resume');
}

/**
 * Collects blobs nothing references that were untouched for the grace period: candidates in
 * digest order, condemned under lock batch by batch (BlobRecords.condemn decides), deleted from
 * storage while the next batch is condemned, then forgotten. A dry run reads the same candidates,
 * plus — after a dry run's untagged phase — the blobs only its manifests held, and changes nothing.
 */
export async function sweepPhase(run: GcRun, plan: UntaggedPlan | undefined): Promise<void> {
  const phase = await run.begin('sweep');
  const { blobs, projects, db } = run.deps.meta;
  await pipelined(phase, async (pipeline) => {
    let after = phase.cursor ?? '';
    for (let done = false; !done; ) {
      run.check();
      const { entries: page, next } = await blobs.candidates(after, run.cutoff, WINDOW);
      done = next === undefined;
      const digests = page.map((b) => b.digest);
      after = next ?? page.at(-1)?.digest ?? after;
      if (page.length === 0) {
        phase.cursor = after;
        await run.report(keyFraction(after));
        continue;
      }
      phase.examined += page.length;
      if (run.dryRun) {
        tally(run, phase, 'blobsDeleted', page);
        await run.released(await projects.forget(db, digests, { dryRun: true }));
        phase.cursor = after;
      } else {
        await pipeline.add(async () => {
          const condemned = await retryingConflicts(() => blobs.condemn(digests, run.cutoff), run.signal);
          await run.released(condemned.released);
          await deleteCondemned(run, condemned.blobs);
          tally(run, phase, 'blobsDeleted', condemned.blobs);
        }, after);
      }
      await run.report(keyFraction(after));
    }
  });
  const young = await unreferencedSince(db, run.cutoff);
  let oldest = young.oldest;
  const grace = run.figures.withinGrace;
  grace.blobs = young.count;
  grace.bytes = young.bytes;
  if (plan && plan.released.size > 0) {
    // What the untagged deletions would leave unreferenced: the same test, their references taken as absent.
    const freed = await unreferencedWithout(db, [...plan.released].sort(), (repositoryId, digest) => plan.gone.has(`${repositoryId} ${digest}`));
    const collectable = freed.filter((b) => b.touchedAt < run.cutoff);
    phase.examined += freed.length;
    tally(run, phase, 'blobsDeleted', collectable);
    await run.released(await projects.forget(db, collectable.map((b) => b.digest), { dryRun: true }));
    for (const b of freed.filter((f) => f.touchedAt >= run.cutoff)) {
      grace.blobs++;
      grace.bytes += b.size;
      oldest = oldest === null ? b.touchedAt : Math.min(oldest, b.touchedAt);
    }
  }
  grace.collectableAt = oldest === null ? null : new Date(oldest + run.figures.graceSeconds * 1000).toISOString();
  await summary(run, 'sweep', phase, 'unreferenced blobs');
  if (grace.blobs > 0) await run.info(`sweep: ${grace.blobs} unreferenced blobs (${grace.bytes} bytes) are inside the grace period; the oldest becomes collectable at ${grace.collectableAt}`);
  await run.end('sweep');
}

/**
 * Removes storage objects no metadata row knows (left by a crash, a restore, a tool), found by
 * listing storage in pages: those last modified before the cutoff get a `deleting` row
 * (BlobRecords.condemnOrphans: one a push claimed meanwhile is left alone), lose their bytes, then
 * the row. Younger ones are counted as inside the grace period.
 */
export async function orphansPhase(run: GcRun): Promise<void> {
  const phase = await run.begin('orphans');
  const { store, meta } = run.deps;
  await pipelined(phase, async (pipeline) => {
    let after = phase.cursor ?? undefined;
    for (;;) {
      run.check();
      const page = await store.listBlobs(after, PAGE);
      if (page.length === 0) break;
      phase.examined += page.length;
      const known = await meta.blobs.known(page.map((b) => b.digest));
      const orphans = page.filter((b) => !known.has(b.digest));
      const old = orphans.filter((b) => b.modifiedAt < run.cutoff).map((b) => ({ digest: b.digest, size: b.size }));
      run.figures.withinGrace.orphans += orphans.length - old.length;
      const last = page.at(-1)!.digest;
      if (run.dryRun) {
        tally(run, phase, 'orphansDeleted', old);
        phase.cursor = last;
      } else {
        await pipeline.add(async () => {
          const condemned = await retryingConflicts(() => meta.blobs.condemnOrphans(old), run.signal);
          await deleteCondemned(run, condemned);
          tally(run, phase, 'orphansDeleted', condemned);
        }, last);
      }
      after = last;
      await run.report(keyFraction(after));
      if (page.length < PAGE) break;
    }
  });
  await summary(run, 'orphans', phase, 'storage objects no metadata row knew');
  if (run.figures.withinGrace.orphans > 0) await run.info(`orphans: ${run.figures.withinGrace.orphans} storage objects no row knows are inside the grace period`);
  await run.end('orphans');
}
