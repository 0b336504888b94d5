// "Verify storage": reads back every blob and manifest the metadata references and checks that
// the stored bytes still hash to their digest and have their recorded size. Started by an
// administrator (POST /api/v1/jobs), never scheduled: on S3 it reads the whole bucket.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { BlobRecords } from '../../metadata/blobs.ts';
import { type BlobStore, StorageError } from '../../storage/blob-store.ts';
import type { JobKind } from '../kind.ts';

/** What an administrator may set when starting the job. */
export const verifyBlobsPayload = z.strictObject({
  /**
   * Read at most this many bytes a second, so that verifying a large store does not starve the
   * pulls it shares storage bandwidth with. Unset: as fast as storage delivers.
   */
  bytesPerSecond: z.number().int().min(1024).max(1024 ** 4).optional().describe('read at most this many bytes a second (unset: no limit)'),
});
export type VerifyBlobsPayload = z.infer<typeof verifyBlobsPayload>;

/** A blob (or manifest) the metadata says storage holds. */
export interface ReferencedBlob {
  readonly digest: string;
  /** The size the metadata recorded; `sizes` holds every size when rows disagree. */
  readonly size: number;
  readonly sizes: readonly number[];
}

/** The metadata's view of what storage must hold, in digest order. */
export interface BlobReferences {
  /** How many distinct digests are referenced (for progress). */
  count(): Promise<number>;
  /** Up to `limit` referenced digests greater than `after` (all from the start when undefined), in ascending order. */
  page(after: string | undefined, limit: number): Promise<ReferencedBlob[]>;
}

/** What the kind needs from the composition root. */
export interface VerifyBlobsServices {
  store: Pick<BlobStore, 'read'>;
  blobReferences: BlobReferences;
  /** To read back the progress an earlier attempt of the same job saved (its cursor). */
  jobs: { get(id: number): Promise<{ progress: string | null } | undefined> };
}

/** What the job reports (and an attempt taken over resumes from). */
interface Progress {
  total: number;
  checked: number;
  bytes: number;
  mismatches: number;
  missing: number;
  /** The last digest checked: a later attempt goes on after it. */
  cursor: string | undefined;
}

const PAGE = 500;
/** Problems logged one by one; past this only counted (the job log keeps its newest lines). */
const LOGGED_PROBLEMS = 100;
const ALGORITHMS = new Set(['sha256', 'sha512']);

/**
 * What storage must hold, from the metadata's one list of it: the rows of the `blobs` table not
 * being deleted (BlobRecords) — layers, configs and manifests, each digest once.
 */
export function blobReferencesOf(blobs: Pick<BlobRecords, 'totals' | 'page'>): BlobReferences {
  return {
    async count() {
      return (await blobs.totals()).count;
    },
    async page(after, limit) {
      return (await blobs.page(after, limit)).map((b) => ({ digest: b.digest, size: b.size, sizes: [b.size] }));
    },
  };
}

/** The progress an earlier attempt saved, when it is this kind's and well-formed. */
function resumed(text: string | null | undefined): Progress | undefined {
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const shape = z.object({
    total: z.number(),
    checked: z.number().int().min(0),
    bytes: z.number().min(0),
    mismatches: z.number().int().min(0),
    missing: z.number().int().min(0),
    cursor: z.string().regex(/^[a-z0-9]+:[a-f0-9]+$/),
  });
  const parsed = shape.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** Sleeps as long as reading `bytes` since `started` (ms) ran ahead of `rate` bytes a second. */
async function pace(bytes: number, started: number, rate: number | undefined, signal: AbortSignal): Promise<void> {
  if (!rate) return;
  const ahead = (bytes / rate) * 1000 - (Date.now() - started);
  if (ahead > 5) await sleep(ahead, undefined, { signal });
}

/**
 * Verifies storage against the metadata, in digest order: every referenced blob is read whole and
 * hashed. A blob whose bytes hash to another digest or whose size differs is a mismatch, one that
 * storage does not have is missing; each is logged (`error`) and counted, and the job goes on. It
 * succeeds when it has looked at everything; the findings are in its log and its progress
 * (`mismatches`, `missing`). Read errors other than a missing blob fail the attempt (retried).
 * Idempotent, and resumable: progress carries the last digest checked, and an attempt that takes
 * over (after a crash or a failure) goes on after it.
 */
export const verifyBlobs: JobKind<VerifyBlobsServices> = {
  kind: 'verify-blobs',
  async run(job, ctx) {
    const { store, blobReferences, jobs } = ctx.services;
    const payload = verifyBlobsPayload.safeParse(job.payload ?? {});
    if (!payload.success) throw new Error('verify-blobs: the payload is not valid (bytesPerSecond: a whole number of bytes)');
    const rate = payload.data.bytesPerSecond;
    const earlier = job.attempt > 1 ? resumed((await jobs.get(job.id))?.progress) : undefined;
    const progress: Progress = earlier ?? { total: await blobReferences.count(), checked: 0, bytes: 0, mismatches: 0, missing: 0, cursor: undefined };
    if (earlier) await ctx.log('info', `attempt ${job.attempt}: resuming after ${earlier.cursor} (${earlier.checked} of about ${earlier.total} blobs already verified)`);
    else await ctx.log('info', `verifying ${progress.total} blobs and manifests${rate ? ` at most ${rate} bytes/s` : ''}`);
    const problem = async (message: string): Promise<void> => {
      if (progress.mismatches + progress.missing <= LOGGED_PROBLEMS) await ctx.log('error', message);
    };
    const started = Date.now();
    let read = 0;
    for (;;) {
      const page = await blobReferences.page(progress.cursor, PAGE);
      if (page.length === 0) break;
      for (const blob of page) {
        ctx.signal.throwIfAborted();
        const algorithm = blob.digest.slice(0, blob.digest.indexOf(':'));
        if (!ALGORITHMS.has(algorithm)) {
          await ctx.log('warn', `${blob.digest}: digest algorithm not supported here, not verified`);
        } else {
          const hash = createHash(algorithm);
          let size = 0;
          try {
            const stream = await store.read(blob.digest);
            try {
              for await (const chunk of stream) {
                hash.update(chunk as Buffer);
                size += (chunk as Buffer).length;
                read += (chunk as Buffer).length;
                ctx.signal.throwIfAborted();
                await pace(read, started, rate, ctx.signal);
              }
            } finally {
              stream.destroy();
            }
            const actual = `${algorithm}:${hash.digest('hex')}`;
            if (actual !== blob.digest || !blob.sizes.includes(size) || blob.sizes.length > 1) {
              progress.mismatches++;
              await problem(`mismatch: ${blob.digest}: the stored ${size} bytes hash to ${actual}; the metadata records ${blob.sizes.join(' and ')} bytes`);
            }
          } catch (err) {
            if (!(err instanceof StorageError && err.kind === 'not_found')) throw err;
            progress.missing++;
            await problem(`missing: ${blob.digest} (${blob.size} bytes) is referenced but storage does not have it`);
          }
          progress.bytes += size;
        }
        progress.checked++;
        progress.cursor = blob.digest;
        await ctx.progress({ ...progress });
      }
    }
    const found = progress.mismatches + progress.missing;
    await ctx.progress({ ...progress });
    await ctx.log(
      found ? 'error' : 'info',
      found
        ? `verified ${progress.checked} blobs: ${progress.mismatches} mismatched, ${progress.missing} missing (see above)`
        : `verified ${progress.checked} blobs (${progress.bytes} bytes): every one matches its digest`,
    );
  },
};
