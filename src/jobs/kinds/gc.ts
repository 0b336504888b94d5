// Garbage collection as a job kind: started by an administrator (POST /api/v1/system/gc, `berth gc
// run`) or by the `gc` schedule they set; never scheduled by default. The work is src/lifecycle/gc/.
import { z } from 'zod';
import { collectGarbage, savedFigures, type GcDeps, type GcMetrics } from '../../lifecycle/gc/index.ts';
import type { JobKind } from '../kind.ts';

/** The kind's name, and the name of its schedule. */
export const GC_KIND = 'gc';
/** The exclusive key of every GC job: one at a time across replicas. */
export const GC_KEY = 'gc';

/** What a GC job is asked to do. */
export const gcPayload = z.strictObject({
  dryRun: z.boolean().default(false).describe('report what a real run would delete; delete nothing'),
  deleteUntagged: z.boolean().default(false).describe('also delete untagged manifests (never the children of a tagged index, nor referrers of manifests that stay)'),
});
/** A GC job's payload, parsed. */
export type GcPayload = z.infer<typeof gcPayload>;

/** What the kind needs from the composition root. */
export interface GcServices {
  meta: GcDeps['meta'];
  store: GcDeps['store'];
  uploads: GcDeps['uploads'];
  uploadTTL: number;
  gc: {
    /** `gc.grace`, seconds. */
    grace: number;
    metrics?: GcMetrics;
  };
  /** To read back the figures an earlier attempt of the same job saved. */
  jobs: { get(id: number): Promise<{ progress: string | null } | undefined> };
}

/**
 * Runs garbage collection (see collectGarbage). One at a time across replicas (exclusive key
 * `gc`). An attempt that takes a crashed or failed one over first finishes what it left `deleting`,
 * then goes on from the figures it saved; a dry run starts over.
 */
export const gcKind: JobKind<GcServices> = {
  kind: GC_KIND,
  exclusiveKey: () => GC_KEY,
  async run(job, ctx) {
    const payload = gcPayload.safeParse(job.payload ?? {});
    if (!payload.success) throw new Error('gc: the payload is not valid (dryRun, deleteUntagged: true or false)');
    const { meta, store, uploads, uploadTTL, gc, jobs } = ctx.services;
    const saved = job.attempt > 1 ? savedFigures((await jobs.get(job.id))?.progress) : undefined;
    await collectGarbage({ meta, store, uploads, uploadTTL, metrics: gc.metrics }, { ...payload.data, graceSeconds: gc.grace }, ctx, saved);
  },
};
