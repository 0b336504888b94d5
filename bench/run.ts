// `npm run bench`: Berth against CNCF Distribution on this machine, in the same run — on disk and
// on tmpfs, without and with authentication — then the table, the machine's limits, the targets of
// issue 5, and bench/results/<timestamp>.json. See bench/README.md.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessRegistry } from '../test/support/processes.ts';
import { run } from '../test/support/run.ts';
import { ensurePackages, tmpDir } from '../test/support/system.ts';
import { listings, projectPushes } from './figures/scale.ts';
import { manifestRequests, tokenIssuance } from './figures/requests.ts';
import { peakMemory, pull, pushChunked, pushMonolithic, smallPushes, startMemory, streamMemory } from './figures/blobs.ts';
import { skopeoCopy } from './figures/skopeo.ts';
import { ramDir, sha256Limit, syncedWriteLimit, type RamDir } from './machine.ts';
import type { FigureContext, Measurement, StorageKind } from './measure.ts';
import { AUTH_SUBSET, type BenchOptions, type FigureId, parseOptions, USAGE } from './options.ts';
import { authOverhead, evaluateTargets, figuresTable, limitsTable, type MachineLimits, targetsTable } from './report.ts';
import { distributionVersion, startBenchBerth, startBenchDistribution } from './servers.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RUNNERS: Record<FigureId, (ctx: FigureContext) => Promise<void>> = {
  push: pushMonolithic,
  chunked: pushChunked,
  pull,
  small: smallPushes,
  manifest: manifestRequests,
  token: tokenIssuance,
  skopeo: skopeoCopy,
  catalog: listings,
  projects: projectPushes,
  memory: streamMemory,
};
/** Run order within a phase: the stream figure last, after the peak-memory reading. */
const ORDER: readonly FigureId[] = ['push', 'chunked', 'pull', 'small', 'manifest', 'token', 'skopeo', 'catalog', 'projects', 'memory'];

/** Cleanup to run however the run ends (also on Ctrl-C): registries by pid, the tmpfs, scratch. */
const cleanups: (() => Promise<void>)[] = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      console.error(`cleanup failed: ${(error as Error).message}`);
    }
  }
}

async function gitInfo(): Promise<{ commit: string; srcDirty: boolean }> {
  const root = path.dirname(BENCH_DIR);
  const head = await run('git', ['rev-parse', 'HEAD'], { cwd: root, allowFailure: true });
  const status = await run('git', ['status', '--porcelain', '--', 'src'], { cwd: root, allowFailure: true });
  return { commit: head.stdout.trim() || 'unknown', srcDirty: status.stdout.trim() !== '' };
}

async function filesystemOf(dir: string): Promise<string> {
  const out = await run('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { allowFailure: true });
  return out.stdout.trim() || 'unknown';
}

/** Runs one phase (storage × auth): both registries fresh, the selected figures, both stopped. */
async function runPhase(
  options: BenchOptions,
  storage: StorageKind,
  auth: boolean,
  root: string,
  scratch: string,
  sink: { measurements: Measurement[]; errors: { phase: string; figure: string; message: string }[] },
  profileDir: string | undefined,
): Promise<void> {
  const figures = ORDER.filter((f) => options.figures.includes(f) && (!auth || AUTH_SUBSET.includes(f)));
  if (figures.length === 0) return;
  const phase = `${storage}, auth ${auth ? 'on' : 'off'}`;
  console.log(`\n### phase: ${phase} — ${figures.join(', ')}`);
  const phaseRoot = path.join(root, auth ? 'auth' : 'open');
  await mkdir(phaseRoot, { recursive: true });
  const processes = new ProcessRegistry();
  const logDirs: string[] = [];
  const stop = async () => {
    await processes.stopAll();
    if (options.keep) console.log(`  kept: ${[phaseRoot, ...logDirs].join(' ')}`);
    else for (const dir of [phaseRoot, ...logDirs]) await rm(dir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  try {
    const common = { root: phaseRoot, auth, processes, berthLogLevel: options.berthLogLevel };
    const berthProfileDir = profileDir ? path.join(profileDir, `${storage}-auth-${auth ? 'on' : 'off'}`) : undefined;
    const berth = await startBenchBerth({ ...common, ...(berthProfileDir ? { berthProfileDir } : {}) });
    logDirs.push(path.dirname(berth.logFile)); // startBerth logs to a temp dir of its own
    const distribution = await startBenchDistribution(common);
    console.log(`  Berth ${berth.base} (pid ${berth.pid}), Distribution ${distribution.base} (pid ${distribution.pid}), data in ${phaseRoot}`);
    const ctx: FigureContext = {
      scale: options.scale,
      storage,
      auth,
      servers: [berth, distribution],
      scratch,
      storageRoot: phaseRoot,
      state: new Map(),
      record: (m) => sink.measurements.push({ ...m, storage, auth }),
      log: (message) => console.log(message),
    };
    startMemory(ctx);
    let peakRead = false;
    for (const figure of figures) {
      if (figure === 'memory') {
        peakMemory(ctx);
        peakRead = true;
      }
      const started = Date.now();
      console.log(`- ${figure}`);
      try {
        await RUNNERS[figure](ctx);
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        sink.errors.push({ phase, figure, message });
        console.log(`  FAILED: ${message}`);
      }
      console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }
    if (!peakRead) peakMemory(ctx);
  } finally {
    cleanups.splice(cleanups.indexOf(stop), 1);
    await stop();
  }
}

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const resultsDir = path.join(BENCH_DIR, 'results');
  await mkdir(resultsDir, { recursive: true });
  await ensurePackages([
    { binary: 'docker-registry', pkg: 'docker-registry' },
    { binary: 'htpasswd', pkg: 'apache2-utils' },
    { binary: 'skopeo', pkg: 'skopeo' },
    { binary: 'openssl', pkg: 'openssl' },
  ]);
  const git = await gitInfo();
  // Other work on the machine skews every figure; the load average says how much there was.
  const loadAtStart = os.loadavg().map((l) => Number(l.toFixed(2)));
  const versions = { node: process.version, distribution: await distributionVersion(), cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memGiB: Math.round(os.totalmem() / 2 ** 30) };
  console.log(`Berth ${git.commit.slice(0, 12)}${git.srcDirty ? ' (src/ has uncommitted changes)' : ''} vs Distribution ${versions.distribution}; ${versions.cpus} × ${versions.cpuModel}, ${versions.memGiB} GiB; scale ${options.scale.name}`);

  const scratch = await tmpDir('berth-bench');
  cleanups.push(() => (options.keep ? Promise.resolve(console.log(`kept: ${scratch}`)) : rm(scratch, { recursive: true, force: true })));
  const profileDir = options.profile ? path.join(resultsDir, `profiles-${stamp}`) : undefined;
  const sink = { measurements: [] as Measurement[], errors: [] as { phase: string; figure: string; message: string }[] };
  const limits: MachineLimits = { sha256MBps: await sha256Limit(options.scale.shaSeconds), write: {} };
  console.log(`SHA-256 one core: ${limits.sha256MBps.toFixed(0)} MB/s`);
  try {
    for (const storage of options.storages) {
      let ram: RamDir | undefined;
      if (storage === 'tmpfs') {
        ram = await ramDir(16);
        const release = ram.release;
        cleanups.push(release);
      }
      const root = ram ? ram.dir : path.join(scratch, 'disk');
      await mkdir(root, { recursive: true });
      const write = syncedWriteLimit(root, options.scale.diskProbeBytes, options.scale.diskProbeRuns);
      limits.write[storage] = { dir: root, kind: ram ? ram.kind : await filesystemOf(root), ...write };
      console.log(`\nsynced sequential write, ${storage} (${root}): ${write.mbps.toFixed(0)} MB/s`);
      for (const auth of options.auths) await runPhase(options, storage, auth, root, scratch, sink, profileDir);
      if (ram) {
        cleanups.splice(cleanups.indexOf(ram.release), 1);
        await ram.release();
      }
    }
  } finally {
    await cleanUp();
  }

  const durationSeconds = (Date.now() - startedAt.getTime()) / 1000;
  const load = { atStart: loadAtStart, atEnd: os.loadavg().map((l) => Number(l.toFixed(2))) };
  const targets = evaluateTargets(sink.measurements, limits);
  const lines = [
    ...figuresTable(sink.measurements),
    ...authOverhead(sink.measurements),
    ...limitsTable(limits, sink.measurements),
    ...targetsTable(targets),
    '',
    `Berth ${git.commit.slice(0, 12)}${git.srcDirty ? ' + uncommitted src/ changes' : ''} vs Distribution ${versions.distribution}, scale ${options.scale.name}, ${options.scale.rounds} rounds; took ${Math.floor(durationSeconds / 60)} min ${Math.round(durationSeconds % 60)} s; load average ${load.atStart[0]} at start, ${load.atEnd[0]} at end.`,
    ...sink.errors.map((e) => `FAILED ${e.phase} · ${e.figure}: ${e.message.split('\n')[0]}`),
  ];
  console.log(lines.join('\n'));
  const json = { startedAt: startedAt.toISOString(), durationSeconds, load, berth: git, versions, options, limits, measurements: sink.measurements, targets, errors: sink.errors };
  const file = path.join(resultsDir, `${stamp}.json`);
  await writeFile(file, JSON.stringify(json, null, 2) + '\n');
  await writeFile(path.join(resultsDir, `${stamp}.txt`), lines.join('\n') + '\n');
  console.log(`results: ${path.relative(process.cwd(), file)}${profileDir ? `; CPU profiles: ${path.relative(process.cwd(), profileDir)}` : ''}`);
  return sink.errors.length ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the registries and cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    await cleanUp();
    process.exit(1);
  },
);
