// The uploads phase: expired upload sessions (the registry's own expiry, `uploads.ttl`), then
// upload storage that no session row knows (a crash between creating an upload's storage and its
// row, a restore), written before the cutoff.
import type { PhaseFigures } from './figures.ts';
import type { GcRun } from './run.ts';

/** Upload ids per storage listing page, and idle sessions per expiry round. */
const PAGE = 1000;
/** Rounds of expiry at most (each removes up to 500 sessions). */
const EXPIRY_ROUNDS = 10_000;
/**
 * Upload storage younger than this is never taken, whatever `gc.grace` says: an upload's storage
 * is created a moment before its session row (UploadService.start), so with a grace of 0 a listing
 * could otherwise see a brand-new upload without its row.
 */
export const UPLOAD_MIN_AGE_MS = 10 * 60_000;

/** The bytes an upload's storage holds, 0 when storage cannot tell (an S3 multipart upload without its state). */
async function sizeOf(run: GcRun, id: string): Promise<number> {
  return (await run.deps.store.uploadSize(id).catch(() => undefined)) ?? 0;
}

/** Expired sessions: counted (dry run), or removed by the registry's expiry with their bytes. */
async function expiredSessions(run: GcRun, phase: PhaseFigures): Promise<void> {
  const { meta, uploads, uploadTTL } = run.deps;
  const before = () => Date.now() - uploadTTL * 1000;
  if (run.dryRun) {
    const ids = await meta.uploads.idleSince(before(), 100_000);
    phase.examined += ids.length;
    for (const id of ids) {
      run.check();
      const size = await sizeOf(run, id);
      run.count(phase, [{ name: id, size }]);
      run.freed('uploadsDeleted', 1, size);
    }
    return;
  }
  for (let round = 0; round < EXPIRY_ROUNDS; round++) {
    run.check();
    const ids = await meta.uploads.idleSince(before());
    if (ids.length === 0) return;
    phase.examined += ids.length;
    const sizes = new Map<string, number>();
    for (const id of ids) sizes.set(id, await sizeOf(run, id));
    const removed = await uploads.expire(uploadTTL);
    // Sessions a request holds stay; when only those are left, expiry removes nothing more.
    if (removed === 0) return;
    let bytes = 0;
    for (const id of ids) {
      if (await meta.uploads.find(id)) continue;
      bytes += sizes.get(id) ?? 0;
      run.count(phase, [{ name: id, size: sizes.get(id) ?? 0 }]);
    }
    run.freed('uploadsDeleted', removed, bytes);
    await run.report();
  }
}

/** Upload storage no session row knows, last written before the cutoff: counted, or removed (S3: multipart uploads aborted). */
async function unknownStorage(run: GcRun, phase: PhaseFigures): Promise<void> {
  const { meta, store } = run.deps;
  const cutoff = Math.min(run.cutoff, Date.now() - UPLOAD_MIN_AGE_MS);
  let after = phase.cursor || undefined;
  for (;;) {
    run.check();
    const page = await store.listUploads(after, PAGE);
    if (page.length === 0) return;
    phase.examined += page.length;
    for (const upload of page) {
      // Read after the listing: a session created since is seen (and its storage is too young anyway).
      if (upload.modifiedAt >= cutoff || (await meta.uploads.find(upload.id))) continue;
      run.check();
      const size = await sizeOf(run, upload.id);
      if (!run.dryRun) await store.deleteUpload(upload.id);
      run.count(phase, [{ name: upload.id, size }]);
      run.freed('uploadsDeleted', 1, size);
    }
    after = page.at(-1)!.id;
    phase.cursor = after;
    await run.report();
    if (page.length < PAGE) return;
  }
}

/** Runs the uploads phase. Its cursor is null until expiry is done, then the last upload id listed. */
export async function uploadsPhase(run: GcRun): Promise<void> {
  const phase = await run.begin('uploads');
  if (phase.cursor === null) {
    await expiredSessions(run, phase);
    phase.cursor = '';
    await run.report();
  }
  await unknownStorage(run, phase);
  const verb = run.dryRun ? 'would remove' : 'removed';
  await run.info(`uploads: examined ${phase.examined}, ${verb} ${phase.deleted} expired sessions and unknown upload storage (${phase.bytes} bytes)`);
  if (phase.sample.length > 0) await run.info(`uploads: ${verb}, e.g. ${phase.sample.join(' ')}`);
  await run.end('uploads');
}
