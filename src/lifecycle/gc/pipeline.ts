// Batches of garbage collection work in flight together: the database condemns one batch while
// storage deletes others, so neither waits for the other (on S3 several DeleteObjects calls are
// in flight; on the filesystem unlinks overlap the next transaction).
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlobEntry } from '../../metadata/blobs.ts';
import { retryingConflicts } from '../../metadata/conflicts.ts';
import type { GcRun } from './run.ts';

/** Batches in flight at once. */
export const IN_FLIGHT = 3;
/** Attempts of a batch's storage deletion (each deletes what is left; deleting twice is safe). */
const DELETE_ATTEMPTS = 3;
/**
 * Deletes condemned blobs (rows marked `deleting`): their bytes from storage, then their rows, so
 * that claims waiting on them go on. When storage keeps failing, throws with the rows left
 * `deleting`: the next run's `resume` phase finishes them.
 */
export async function deleteCondemned(run: GcRun, batch: readonly BlobEntry[]): Promise<void> {
  if (batch.length === 0) return;
  const digests = batch.map((b) => b.digest);
  for (let attempt = 1; ; attempt++) {
    try {
      await run.deps.store.deleteBlobs(digests);
      break;
    } catch (err) {
      if (attempt >= DELETE_ATTEMPTS) throw err;
      await run.problem(`deleting ${digests.length} blobs from storage failed (attempt ${attempt}, retrying): ${err instanceof Error ? err.message : String(err)}`);
      await sleep(500 * attempt);
    }
  }
  // Not cut short by cancellation: the batch in flight finishes.
  await retryingConflicts(() => run.deps.meta.blobs.forget(digests));
}

/**
 * Up to IN_FLIGHT batches of work at once, each with the cursor a resumed run may go on from once
 * it — and every batch added before it — is done (`advanced` is told). A failure is thrown by a
 * later `add` or by `drain`.
 */
export class Pipeline {
  private readonly queue: { done: Promise<{ failed: unknown } | undefined>; cursor: string }[] = [];

  constructor(private readonly advanced: (cursor: string) => void) {}

  /** Starts `task` once fewer than IN_FLIGHT are running (waiting for the oldest). */
  async add(task: () => Promise<void>, cursor: string): Promise<void> {
    while (this.queue.length >= IN_FLIGHT) await this.settleOldest();
    // Settled into a value at once: a failure is never an unhandled rejection while the caller
    // is busy elsewhere; settling throws it.
    this.queue.push({ done: task().then(() => undefined, (err: unknown) => ({ failed: err })), cursor });
  }

  /** Waits for every batch in flight; throws the first failure. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.settleOldest();
  }

  /** Waits for every batch in flight, ignoring failures (the run is failing already). */
  async abandon(): Promise<void> {
    await Promise.all(this.queue.splice(0).map((q) => q.done));
  }

  private async settleOldest(): Promise<void> {
    const oldest = this.queue.shift()!;
    const settled = await oldest.done;
    if (settled) throw settled.failed;
    this.advanced(oldest.cursor);
  }
}
