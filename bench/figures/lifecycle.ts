// Issue 14's figures: storage lifecycle. Garbage collection's sweep rate (against the storage's own
// delete rate and Distribution's offline collector), its mark over a million references, pushes
// while it runs in a loop, and a retention policy's evaluation over 100,000 artifacts with pushes
// going on. Each figure starts registries of its own (ctx.launch): fresh data, its own settings.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { run } from '../../test/support/run.ts';
import { RegistryClient, sha256 } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { deleteObjectsLimit, median, unlinkLimit } from '../machine.ts';
import { format, loadWhile, pct, recordSamples, runCount, timed, type FigureContext, type Sample } from '../measure.ts';
import { cpuSeconds, distributionEnv, type BenchServer } from '../servers.ts';
import { AdminApi, figure, phaseSeconds, type FinishedJob } from './lifecycle-api.ts';
import { populateMark, populateRetention, RETENTION_POLICY, type MarkPopulation, type RetentionPopulation } from './lifecycle-data.ts';
import { enableProjectQuotas } from './quotas.ts';
import { pushImage, smallImage } from './scale.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** libuv's thread pool runs Berth's unlinks (src/storage/filesystem/listing.ts queues 64 at a time). */
const FS_DELETE_QUEUE = 64;

/** Milliseconds a figure waits past the grace period, so the last pushed blob is surely older than it. */
const GRACE_MARGIN_MS = 1_000;

/**
 * DeleteObjects requests Berth's S3 driver keeps in flight (`DELETE_CONCURRENCY` in
 * src/storage/s3/s3-store.ts, read from the source so the probe follows the driver).
 */
async function s3DeleteConcurrency(): Promise<{ value: number; known: boolean }> {
  const source = await readFile(path.join(REPO_ROOT, 'src', 'storage', 's3', 's3-store.ts'), 'utf8').catch(() => '');
  const found = /const DELETE_CONCURRENCY = (\d+)/.exec(source);
  return found ? { value: Number(found[1]), known: true } : { value: 4, known: false };
}

/** Pushes `count` unreferenced blobs of `bytes` (POST + PUT each, no manifest: an abandoned push's layers) with `clients` clients. */
async function pushOrphanBlobs(ctx: FigureContext, server: BenchServer, count: number, bytes: number, clients: number): Promise<{ digests: string[]; sample: Sample }> {
  const agent = keepAliveAgent(clients);
  const workers = Array.from({ length: clients }, () => new RegistryClient(server, agent));
  const digests = new Array<string>(count);
  const { usage } = await timed(server.pid, () =>
    runCount(clients, count, async (i, w) => {
      const blob = randomBytes(bytes);
      digests[i] = sha256(blob);
      await workers[w]!.pushMonolithic(sweepRepository(i), blob, digests[i]!);
    }),
  );
  agent.destroy();
  const rate = count / usage.seconds;
  ctx.log(`  gc-sweep · ${server.name}: pushed ${count.toLocaleString('en-US')} unreferenced ${bytes / 1024} KiB blobs, ${format(rate)} blobs/s`);
  return { digests, sample: { value: rate, usage } };
}

/** Blobs still stored under a filesystem layout's `blobs/sha256/` (Berth: files; Distribution: directories). */
async function storedBlobs(dir: string): Promise<number> {
  let count = 0;
  for (const shard of await readdir(dir).catch(() => [] as string[])) count += (await readdir(path.join(dir, shard)).catch(() => [] as string[])).length;
  return count;
}

/** Repository the sweep figure pushes its `i`th blob into. */
function sweepRepository(i: number): string {
  return `gcsweep/r${i % 100}`;
}

/** HEADs the first 20 of the blobs `pushOrphanBlobs` pushed, in their repositories: `present` says whether each must answer 200 or 404. */
async function assertBlobs(server: BenchServer, digests: readonly string[], present: boolean): Promise<void> {
  const client = new RegistryClient(server, keepAliveAgent(1));
  for (let i = 0; i < Math.min(20, digests.length); i++) {
    if ((await client.hasBlob(sweepRepository(i), digests[i]!)) !== present) throw new Error(`${server.name}: blob ${digests[i]!.slice(0, 19)} ${present ? 'not served before' : 'still served after'} GC`);
  }
  client.agent.destroy();
}

/**
 * `gc-sweep`: blobs deleted per minute. A fresh Berth (grace `gcGraceSeconds`) receives
 * `gcBlobs` unreferenced blobs through the registry (a fifth of them on S3); once they are past the
 * grace period one GC run collects them, timed by the job's own start and end. Beside it: the
 * storage's own delete rate of as many objects (parallel unlinks; on S3 DeleteObjects as Berth's
 * driver sends them) and, on the filesystem, Distribution's offline collector on the same shape.
 */
export async function gcSweep(ctx: FigureContext): Promise<void> {
  const onS3 = ctx.backend === 'postgres-s3';
  const { gcBlobBytes: bytes, gcClients: clients, gcGraceSeconds: grace } = ctx.scale;
  const count = onS3 ? Math.max(2_000, Math.round(ctx.scale.gcBlobs / 5)) : ctx.scale.gcBlobs;
  const spec = { key: 'gc-sweep', label: `GC sweep: ${count.toLocaleString('en-US')} unreferenced ${bytes / 1024} KiB blobs`, unit: 'blobs/min', better: 'higher' as const };
  const berth = await ctx.launch.berth('gc-sweep', { env: { BERTH_GC_GRACE: String(grace) } });
  // Distribution on S3 would walk moto's bucket directory by directory (see the catalog figure): left out.
  const distribution = onS3 ? undefined : await ctx.launch.distribution('gc-sweep-dist');
  const pushedB = await pushOrphanBlobs(ctx, berth, count, bytes, clients);
  const berthReadyAt = Date.now() + grace * 1000 + GRACE_MARGIN_MS;
  const populate = { key: 'gc-populate', label: `GC sweep population: ${bytes / 1024} KiB blob pushes (POST + PUT), ${clients} clients`, unit: 'blobs/s', better: 'higher' as const };
  recordSamples(ctx, populate, 'berth', [pushedB.sample]);
  const pushedD = distribution ? await pushOrphanBlobs(ctx, distribution, count, bytes, clients) : undefined;
  if (distribution && pushedD) recordSamples(ctx, populate, 'distribution', [pushedD.sample]);

  // Berth: one online run, pushes could go on beside it.
  await assertBlobs(berth, pushedB.digests, true);
  await sleep(Math.max(0, berthReadyAt - Date.now()));
  const api = new AdminApi(berth);
  const cpuBefore = cpuSeconds(berth.pid);
  const gc = (await api.gc({}))!;
  const serverCpu = (cpuSeconds(berth.pid) - cpuBefore) / gc.clientSeconds;
  api.close();
  const deleted = figure(gc.progress, 'blobsDeleted');
  if (deleted !== count) throw new Error(`Berth's GC deleted ${deleted} blobs, expected exactly the ${count} pushed`);
  await assertBlobs(berth, pushedB.digests, false);
  const left = onS3 ? undefined : await storedBlobs(path.join(berth.dataDir, 'storage', 'blobs', 'sha256'));
  if (left) throw new Error(`Berth's GC left ${left} blob files on disk`);
  const rate = (deleted / gc.seconds) * 60;
  const sweepSeconds = phaseSeconds(gc.progress, 'sweep');
  const orphanSeconds = phaseSeconds(gc.progress, 'orphans');
  const phases = `sweep phase ${format(sweepSeconds)} s (${format((deleted / sweepSeconds) * 60)}/min), orphan listing ${format(orphanSeconds)} s`;
  ctx.log(`  gc-sweep · berth: ${deleted} deleted in ${format(gc.seconds)} s (job), ${format(gc.clientSeconds)} s (client; queued ${format(gc.queuedSeconds)} s) — ${format(rate)} blobs/min; ${phases}; server CPU ${pct(serverCpu)}`);
  recordSamples(ctx, spec, 'berth', [{ value: rate, usage: { seconds: gc.seconds, clientCpu: NaN, serverCpu } }], `online, one job: ${format(gc.seconds)} s from the job's start to its end (${phases}), grace ${grace} s`);
  await berth.stop();

  // Distribution: offline only — the registry is stopped while its collector runs.
  if (distribution && pushedD) {
    await distribution.stop();
    const started = process.hrtime.bigint();
    const out = await run('docker-registry', ['garbage-collect', path.join(distribution.dataDir, 'config.yml')], { env: distributionEnv(), timeoutMs: 60 * 60_000 });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const summary = /(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion/.exec(`${out.stdout}\n${out.stderr}`);
    const eligible = summary ? Number(summary[2]) : NaN;
    const remaining = await storedBlobs(path.join(distribution.dataDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256'));
    if (eligible !== count || remaining !== 0) throw new Error(`Distribution's garbage-collect: ${eligible} blobs eligible, ${remaining} left on disk, expected ${count} and 0`);
    const rateD = (eligible / seconds) * 60;
    ctx.log(`  gc-sweep · distribution: garbage-collect (registry stopped) deleted ${eligible} in ${format(seconds)} s — ${format(rateD)} blobs/min`);
    recordSamples(ctx, spec, 'distribution', [{ value: rateD, usage: { seconds, clientCpu: NaN, serverCpu: NaN } }], `offline: docker-registry garbage-collect with the registry stopped, ${format(seconds)} s`);
  }

  // The storage's own delete rate, same count and size.
  if (onS3) {
    const s3 = ctx.launch.backend!.s3;
    const concurrency = await s3DeleteConcurrency();
    const limit = await deleteObjectsLimit(s3, count, bytes, concurrency.value);
    // For reading Berth's share: the same calls one at a time (its GC deletes one batch at a time while condemning the next).
    const single = await deleteObjectsLimit(s3, Math.max(1_000, Math.round(count / 2)), bytes, 1);
    const note = `S3 server alone (moto): DeleteObjects of 1,000 keys, ${concurrency.value} in flight${concurrency.known ? " (Berth's driver)" : ' (assumed: DELETE_CONCURRENCY not found in src/storage/s3/s3-store.ts)'}, ${count.toLocaleString('en-US')} objects of ${bytes / 1024} KiB`;
    ctx.log(`  gc-sweep · ${note}: ${format(limit.perMinute)} keys/min (${format(limit.seconds)} s); one call in flight: ${format(single.perMinute)} keys/min (${format(single.seconds)} s)`);
    recordSamples(ctx, { ...spec, unit: 'keys/min' }, 'machine', [{ value: limit.perMinute }], note);
    recordSamples(ctx, { ...spec, key: 'gc-sweep-single', unit: 'keys/min' }, 'machine', [{ value: single.perMinute }], `S3 server alone (moto): the same DeleteObjects one call at a time, ${single.count.toLocaleString('en-US')} objects`);
  } else {
    const limit = await unlinkLimit(ctx.storageRoot, count, bytes, FS_DELETE_QUEUE);
    const note = `filesystem alone, ${ctx.storage}: unlink of ${count.toLocaleString('en-US')} files of ${bytes / 1024} KiB in Berth's layout, ${FS_DELETE_QUEUE} queued on libuv's pool`;
    ctx.log(`  gc-sweep · ${note}: ${format(limit.perMinute)} files/min (${format(limit.seconds)} s)`);
    recordSamples(ctx, { ...spec, unit: 'files/min' }, 'machine', [{ value: limit.perMinute }], note);
  }
}

/**
 * `gc-mark`: a dry-run GC over `markManifests × markReferencesPerManifest` references written
 * straight into a fresh database (see lifecycle-data.ts), started through the API: the run's
 * sweep phase is the mark (BlobRecords.candidates paging, then condemn without changing anything),
 * and it must find exactly the unreferenced tenth. Seconds from the job's start to its end.
 */
export async function gcMark(ctx: FigureContext): Promise<void> {
  const { markManifests: manifests, markReferencesPerManifest: per } = ctx.scale;
  let population: MarkPopulation | undefined;
  const berth = await ctx.launch.berth('gc-mark', { prepare: async (where) => void (population = await populateMark(where, manifests, per)) });
  const p = population!;
  ctx.log(`  gc-mark: wrote ${p.manifests.toLocaleString('en-US')} manifests, ${p.references.toLocaleString('en-US')} references, ${p.blobs.toLocaleString('en-US')} blob rows (${p.garbage.toLocaleString('en-US')} unreferenced) in ${format(p.seconds)} s`);
  const api = new AdminApi(berth);
  const samples: Sample[] = [];
  const sweep: number[] = [];
  for (let round = 0; round < ctx.scale.gcRounds; round++) {
    const cpuBefore = cpuSeconds(berth.pid);
    const gc = (await api.gc({ dryRun: true }))!;
    const serverCpu = (cpuSeconds(berth.pid) - cpuBefore) / gc.clientSeconds;
    const found = figure(gc.progress, 'phases.sweep.deleted');
    if (found !== p.garbage) throw new Error(`the dry run would delete ${found} blobs, expected the ${p.garbage} unreferenced`);
    sweep.push(phaseSeconds(gc.progress, 'sweep'));
    samples.push({ value: gc.seconds, usage: { seconds: gc.seconds, clientCpu: NaN, serverCpu } });
    ctx.log(`  gc-mark · round ${round + 1}: dry run ${format(gc.seconds)} s (sweep phase ${format(sweep.at(-1)!)} s), would delete ${found}, server CPU ${pct(serverCpu)}`);
  }
  api.close();
  await berth.stop();
  const label = `GC mark: dry run over ${p.references.toLocaleString('en-US')} references`;
  const note = `dry-run GC job via the API, whole job (sweep phase = BlobRecords.candidates paging + condemn, dry: median ${format(median(sweep))} s); ${p.blobs.toLocaleString('en-US')} blob rows, would delete exactly the ${p.garbage.toLocaleString('en-US')} unreferenced; ${ctx.backend === 'postgres-s3' ? 'PostgreSQL' : 'SQLite'}`;
  recordSamples(ctx, { key: 'gc-mark', label, unit: 's', better: 'lower' }, 'berth', samples, note);
}

/** What a push loop did besides pushing: clean retryable refusals, and failures that are not (server errors). */
interface PushTrouble {
  /** Pushes refused with the protocol's clean, retryable errors (503, or 400 for content GC took), then retried. */
  retried: number;
  /** Pushes answered otherwise (a 500: a bug), retried once; their messages. */
  failed: string[];
}

/**
 * Pushes small images (over one shared 64 KiB base layer) into `repository(worker)` with `clients`
 * clients while `more()` holds. A failed push is retried once and counted in its kind; a second
 * failure ends the loop with its error.
 */
async function pushLoop(server: BenchServer, clients: number, more: () => boolean, repository: (worker: number) => string, after?: (repository: string, digest: string) => void): Promise<{ images: number; seconds: number; serverCpu: number } & PushTrouble> {
  const agent = keepAliveAgent(clients);
  const workers = Array.from({ length: clients }, () => new RegistryClient(server, agent));
  const base = { bytes: randomBytes(64 * 1024), digest: '' };
  base.digest = sha256(base.bytes);
  const trouble: PushTrouble = { retried: 0, failed: [] };
  const { result: images, usage } = await timed(server.pid, () =>
    loadWhile(clients, more, async (w) => {
      const image = smallImage([base]);
      const repo = repository(w);
      try {
        await pushImage(workers[w]!, repo, image);
      } catch (error) {
        const message = (error as Error).message;
        const status = Number(/expected \d{3}, got (\d{3})/.exec(message)?.[1]);
        if (status === 503 || status === 400) trouble.retried++;
        else if (status >= 500) trouble.failed.push(message);
        else throw error;
        await pushImage(workers[w]!, repo, image);
      }
      after?.(repo, sha256(image.manifest));
    }),
  );
  agent.destroy();
  return { images, seconds: usage.seconds, serverCpu: usage.serverCpu, ...trouble };
}

/** The note's words for what went wrong beside the pushes: nothing, or counts and the first message. */
function troubleNote(retried: number, failed: readonly string[], failedDeletes: readonly string[] = []): string {
  const parts = [`${retried} pushes refused retryably (retried)`];
  if (failed.length) parts.push(`${failed.length} PUSHES FAILED with a server error (retried once; first: ${failed[0]!.slice(0, 160)})`);
  if (failedDeletes.length) parts.push(`${failedDeletes.length} manifest DELETEs FAILED (first: ${failedDeletes[0]!.slice(0, 160)})`);
  return parts.join('; ');
}

/** One window of the push-during-GC figure: pushes, deletions of every other image pushed, and (withGc) GC runs back to back. */
async function gcPushWindow(server: BenchServer, clients: number, ms: number, withGc: boolean): Promise<{ rate: number; serverCpu: number; runs: number; swept: number; deleteErrors: string[] } & PushTrouble> {
  const stopAt = Date.now() + ms;
  let failed = false;
  const open = () => !failed && Date.now() < stopAt;
  // Any loop that fails stops the others (and its error is the window's).
  const guard = <T>(work: Promise<T>): Promise<T> => work.catch((error: unknown) => {
    failed = true;
    throw error;
  });
  const doomed: { repository: string; digest: string; at: number }[] = [];
  let pushed = 0;
  const pushes = guard(pushLoop(server, clients, open, (w) => `gcpush/app-${w}`, (repository, digest) => {
    if (pushed++ % 2 === 0) doomed.push({ repository, digest, at: Date.now() });
  }));
  // Deleted a second after their push: their layers and config become garbage, collectable after
  // the grace period. A failed deletion is counted and reported, not fatal: the pushes are the figure.
  const deleteErrors: string[] = [];
  const deleter = guard((async () => {
    const client = new RegistryClient(server, keepAliveAgent(1));
    while (open()) {
      const next = doomed[0];
      if (!next || Date.now() - next.at < 1_000) {
        await sleep(50);
        continue;
      }
      doomed.shift();
      await client.deleteManifest(next.repository, next.digest).catch((error: unknown) => deleteErrors.push((error as Error).message));
    }
    client.agent.destroy();
  })());
  let runs = 0;
  let swept = 0;
  const collector = guard((async () => {
    if (!withGc) return;
    const api = new AdminApi(server);
    while (open()) {
      const gc: FinishedJob | undefined = await api.gc({}, open);
      if (!gc) break;
      runs++;
      swept += figure(gc.progress, 'blobsDeleted');
    }
    api.close();
  })());
  const [result] = await Promise.all([pushes, deleter, collector]);
  return { rate: result.images / result.seconds, retried: result.retried, failed: result.failed, serverCpu: result.serverCpu, runs, swept, deleteErrors };
}

/**
 * `gc-push`: small-image pushes (`gcClients` clients, each image a unique layer and config over a
 * shared base layer) for `gcWindowMs`, every other image deleted a second after its push, with GC
 * runs back to back versus without GC; alternating rounds; images per second.
 */
export async function gcPush(ctx: FigureContext): Promise<void> {
  const { gcClients: clients, gcGraceSeconds: grace, gcWindowMs: ms, gcRounds: rounds } = ctx.scale;
  const berth = await ctx.launch.berth('gc-push', { env: { BERTH_GC_GRACE: String(grace) } });
  // A whole window first: a fresh process (and on S3 moto) speeds up over its first thousand pushes.
  const warm = await gcPushWindow(berth, clients, ms, false);
  ctx.log(`  gc-push · warm-up (not counted): ${format(warm.rate)} images/s`);
  const samples = { without: [] as Sample[], with: [] as Sample[], ratio: [] as Sample[] };
  let runs = 0;
  let swept = 0;
  let retried = 0;
  const failed: string[] = [...warm.failed];
  const deleteErrors: string[] = [...warm.deleteErrors];
  for (let round = 0; round < rounds; round++) {
    for (const withGc of round % 2 === 0 ? [false, true] : [true, false]) {
      // On S3 the shared moto server is the likely limit: its CPU beside Berth's says whether it was.
      const moto = ctx.launch.backend?.s3.pid;
      const motoBefore = moto ? cpuSeconds(moto) : 0;
      const started = Date.now();
      const w = await gcPushWindow(berth, clients, ms, withGc);
      const motoCpu = moto ? ` moto CPU ${pct((cpuSeconds(moto) - motoBefore) / ((Date.now() - started) / 1000))},` : '';
      (withGc ? samples.with : samples.without).push({ value: w.rate, usage: { seconds: ms / 1000, clientCpu: NaN, serverCpu: w.serverCpu } });
      runs += w.runs;
      swept += w.swept;
      retried += w.retried;
      deleteErrors.push(...w.deleteErrors);
      failed.push(...w.failed);
      if (samples.with.length === samples.without.length) samples.ratio.push({ value: samples.with.at(-1)!.value / samples.without.at(-1)!.value });
      ctx.log(`  gc-push · round ${round + 1} ${withGc ? `with GC (${w.runs} runs, ${w.swept} blobs swept)` : 'without GC'}: ${format(w.rate)} images/s,${motoCpu} server CPU ${pct(w.serverCpu)}${w.retried ? `, ${w.retried} pushes retried` : ''}${w.failed.length ? `, ${w.failed.length} PUSHES FAILED (500)` : ''}`);
    }
  }
  await berth.stop();
  if (failed.length > 0) ctx.log(`  gc-push: ${failed.length} pushes failed with a server error, the first: ${failed[0]!.slice(0, 300)}`);
  if (deleteErrors.length > 0) ctx.log(`  gc-push: ${deleteErrors.length} manifest deletions failed, the first: ${deleteErrors[0]!.slice(0, 300)}`);
  if (swept === 0) throw new Error('GC swept nothing while the pushes ran: the figure measured no collection');
  const label = `${clients} clients pushing small images, every other deleted`;
  recordSamples(ctx, { key: 'gc-push-without', label: `${label}, no GC`, unit: 'images/s', better: 'higher' }, 'berth', samples.without);
  recordSamples(ctx, { key: 'gc-push-ratio', label: '… with GC / without, paired by round', unit: '×', better: 'higher' }, 'berth', samples.ratio);
  recordSamples(ctx, { key: 'gc-push-with', label: `… while GC runs back to back`, unit: 'images/s', better: 'higher' }, 'berth', samples.with, `${runs} GC runs swept ${swept.toLocaleString('en-US')} blobs in ${rounds} windows of ${ms / 1000} s (grace ${grace} s); ${troubleNote(retried, failed, deleteErrors)}`);
}

/**
 * `retention-eval`: a dry-run retention job (four rules) over `retentionArtifacts` artifacts in one
 * project, written straight into a fresh database; seconds from the job's start to its end. Then
 * `gcClients` clients push small images into another project while dry runs go on back to back
 * (for as long as one takes, at least 3 s), versus as long without; alternating rounds.
 */
export async function retentionEval(ctx: FigureContext): Promise<void> {
  const { retentionArtifacts: artifacts, gcClients: clients, gcRounds: rounds } = ctx.scale;
  let population: RetentionPopulation | undefined;
  const berth = await ctx.launch.berth('retention', { prepare: async (where) => void (population = await populateRetention(where, artifacts)) });
  const p = population!;
  ctx.log(`  retention-eval: wrote ${p.artifacts.toLocaleString('en-US')} artifacts in ${p.repositories} repositories (${p.tags.toLocaleString('en-US')} tags, ${p.untagged.toLocaleString('en-US')} untagged) in ${format(p.seconds)} s`);
  const api = new AdminApi(berth);
  await api.setRetention(p.project, RETENTION_POLICY);
  await enableProjectQuotas(berth, ['bench-other']);
  const other = (w: number) => `bench-other/app-${w}`;
  const warmUntil = Date.now() + 3_000;
  await pushLoop(berth, clients, () => Date.now() < warmUntil, other);

  const dryRun = async (): Promise<{ job: FinishedJob; outcomes: Record<string, number> }> => {
    const job = await api.retentionRun(p.project, await api.startRetention(p.project, true));
    const outcomes = (job.body['outcomes'] ?? {}) as Record<string, number>;
    const decided = Object.values(outcomes).reduce((a, b) => a + b, 0);
    if (decided !== p.artifacts) throw new Error(`the dry run decided on ${decided} artifacts, expected ${p.artifacts}`);
    return { job, outcomes };
  };
  const alone: Sample[] = [];
  let outcomes: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    const cpuBefore = cpuSeconds(berth.pid);
    const run = await dryRun();
    outcomes = run.outcomes;
    const serverCpu = (cpuSeconds(berth.pid) - cpuBefore) / run.job.clientSeconds;
    alone.push({ value: run.job.seconds, usage: { seconds: run.job.seconds, clientCpu: NaN, serverCpu } });
    // The run logs how long reading and evaluating took; the rest is writing its report (one item per artifact).
    const log = (run.job.body['log'] ?? []) as { message?: string }[];
    const readMs = Number(log.map((l) => /evaluated \d+ artifact\(s\).* in (\d+) ms/.exec(l.message ?? '')?.[1]).find((m) => m !== undefined));
    ctx.log(`  retention-eval · round ${round + 1}: dry run ${format(run.job.seconds)} s (read + evaluate ${format(readMs / 1000)} s; client ${format(run.job.clientSeconds)} s, queued ${format(run.job.queuedSeconds)} s), ${Object.entries(outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}, server CPU ${pct(serverCpu)}`);
  }
  const windowMs = Math.max(3_000, median(alone.map((s) => s.value)) * 1000);
  const during: Sample[] = [];
  const without: Sample[] = [];
  const loaded: Sample[] = [];
  const ratios: Sample[] = [];
  const trouble: PushTrouble = { retried: 0, failed: [] };
  const count = (pushes: PushTrouble) => {
    trouble.retried += pushes.retried;
    trouble.failed.push(...pushes.failed);
  };
  for (let round = 0; round < rounds; round++) {
    for (const withRun of round % 2 === 0 ? [false, true] : [true, false]) {
      if (withRun) {
        // Dry runs back to back for the window (at least one whole run), the pushes beside them until the last ends.
        const until = Date.now() + windowMs;
        let finished = false;
        const times: number[] = [];
        const jobs = (async () => {
          do times.push((await dryRun()).job.seconds);
          while (Date.now() < until);
        })().finally(() => (finished = true));
        const pushes = await pushLoop(berth, clients, () => !finished, other);
        await jobs;
        count(pushes);
        during.push({ value: pushes.images / pushes.seconds, usage: { seconds: pushes.seconds, clientCpu: NaN, serverCpu: pushes.serverCpu } });
        for (const t of times) loaded.push({ value: t });
        ctx.log(`  retention-eval · round ${round + 1} pushes during ${times.length} dry run(s) back to back (${times.map((t) => format(t)).join(', ')} s): ${format(pushes.images / pushes.seconds)} images/s, server CPU ${pct(pushes.serverCpu)}`);
      } else {
        const until = Date.now() + windowMs;
        const pushes = await pushLoop(berth, clients, () => Date.now() < until, other);
        count(pushes);
        without.push({ value: pushes.images / pushes.seconds, usage: { seconds: pushes.seconds, clientCpu: NaN, serverCpu: pushes.serverCpu } });
        ctx.log(`  retention-eval · round ${round + 1} pushes without (${format(pushes.seconds)} s): ${format(pushes.images / pushes.seconds)} images/s, server CPU ${pct(pushes.serverCpu)}`);
      }
      if (during.length === without.length) ratios.push({ value: during.at(-1)!.value / without.at(-1)!.value });
    }
  }
  api.close();
  await berth.stop();
  const decided = Object.entries(outcomes).map(([k, v]) => `${v.toLocaleString('en-US')} ${k}`).join(', ');
  const note = `${p.artifacts.toLocaleString('en-US')} artifacts, ${p.repositories} repositories, ${RETENTION_POLICY.rules.length} rules; dry-run job via the API (${decided}); ${ctx.backend === 'postgres-s3' ? 'PostgreSQL' : 'SQLite'}`;
  recordSamples(ctx, { key: 'retention-eval', label: `retention dry run over ${p.artifacts.toLocaleString('en-US')} artifacts`, unit: 's', better: 'lower' }, 'berth', alone, note);
  recordSamples(ctx, { key: 'retention-eval-loaded', label: `… the same while ${clients} clients push`, unit: 's', better: 'lower' }, 'berth', loaded);
  recordSamples(ctx, { key: 'retention-push-without', label: `${clients} clients pushing small images into another project`, unit: 'images/s', better: 'higher' }, 'berth', without);
  recordSamples(ctx, { key: 'retention-push-during', label: `… during retention dry runs`, unit: 'images/s', better: 'higher' }, 'berth', during, troubleNote(trouble.retried, trouble.failed));
  recordSamples(ctx, { key: 'retention-push-ratio', label: '… during / without, paired by round', unit: '×', better: 'higher' }, 'berth', ratios);
}
