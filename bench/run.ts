// `npm run bench`: Berth against CNCF Distribution on this machine, in the same run — on disk and
// on tmpfs, without and with authentication, on SQLite + filesystem and on PostgreSQL + S3, and
// scaled out to 1 and 3 replicas behind nginx; garbage collection and retention; the proxy cache;
// replication and webhooks — then the tables, the machine's limits, the targets of issues 5 and
// 13–16, and bench/results/<timestamp>.json.
// See bench/README.md.
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
import { ramDir, type RamDir, s3Limit, sha256Limit, syncedWriteLimit } from './machine.ts';
import type { FigureContext, Measurement, StorageKind } from './measure.ts';
import { AUTH_SUBSET, type Backend, type BenchOptions, type FigureId, LIFECYCLE_FIGURES, parseOptions, PORTAL_FIGURES, PROXY_FIGURES, REPLICA_SUBSET, REPLICATION_FIGURES, USAGE } from './options.ts';
import { authOverhead, backendTable, evaluateTargets, figuresTable, hashTable, limitsTable, type MachineLimits, replicasTable, targetsTable } from './report.ts';
import { lifecycleTable } from './report-lifecycle.ts';
import { type BenchServer, type BerthStorage, distributionVersion, startBackendServers, startBenchBerth, startBenchDistribution, startBenchReplicas } from './servers.ts';
import { uploadHashCost } from './figures/hash.ts';
import { gcMark, gcPush, gcSweep, retentionEval } from './figures/lifecycle.ts';
import { proxyCache } from './figures/proxy.ts';
import { proxyTable } from './report-proxy.ts';
import { replicationFigures } from './figures/replication.ts';
import { replicationTable } from './report-replication.ts';
import { portalLists } from './figures/portal.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RUNNERS: Record<Exclude<FigureId, 'hash'>, (ctx: FigureContext) => Promise<void>> = {
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
  'gc-sweep': gcSweep,
  'gc-mark': gcMark,
  'gc-push': gcPush,
  'retention-eval': retentionEval,
  proxy: proxyCache,
  replication: replicationFigures,
  portal: portalLists,
};
/**
 * Run order within a phase: the stream figure after the others on the phase's registries, after
 * the peak-memory reading; then issue 14's, 15's (the proxy cache) and 16's (replication, webhooks),
 * which start registries of their own.
 */
const ORDER: readonly Exclude<FigureId, 'hash'>[] = ['push', 'chunked', 'pull', 'small', 'manifest', 'token', 'skopeo', 'catalog', 'projects', 'memory', 'gc-sweep', 'gc-mark', 'gc-push', 'retention-eval', 'proxy', 'replication', 'portal'];

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

/** One phase: where the registries keep their data, authentication, Berth's backend and topology. */
interface PhaseSpec {
  readonly storage: StorageKind;
  readonly auth: boolean;
  readonly backend: Backend;
  readonly topology: 'direct' | 'nginx';
  /** Replica sets of the `nginx` topology. */
  readonly replicaCounts: readonly (1 | 3)[];
}

type Sink = { measurements: Measurement[]; errors: { phase: string; figure: string; message: string }[] };

function phaseName(spec: PhaseSpec): string {
  const where = spec.topology === 'nginx' ? `, ${spec.replicaCounts.join(' and ')} replica(s) behind nginx` : '';
  return `${spec.storage}, auth ${spec.auth ? 'on' : 'off'}, ${spec.backend}${where}`;
}

/** Runs one phase: the registries fresh (and PostgreSQL + S3 for that backend), the selected figures, all stopped. */
async function runPhase(options: BenchOptions, spec: PhaseSpec, root: string, scratch: string, sink: Sink, profileDir: string | undefined, limits: MachineLimits): Promise<void> {
  const { storage, auth } = spec;
  // Issue 14's figures once per backend, authentication off: on the filesystem on disk when asked for.
  const lifecycleStorage: StorageKind = options.storages.includes('disk') ? 'disk' : 'tmpfs';
  const lifecycleHere = !auth && spec.topology === 'direct' && (spec.backend === 'postgres-s3' || storage === lifecycleStorage);
  const figures = ORDER.filter(
    (f) =>
      options.figures.includes(f) &&
      (!auth || AUTH_SUBSET.includes(f)) &&
      (spec.topology === 'direct' || REPLICA_SUBSET.includes(f)) &&
      (!LIFECYCLE_FIGURES.includes(f) || lifecycleHere) &&
      (!PORTAL_FIGURES.includes(f) || lifecycleHere) &&
      (!PROXY_FIGURES.includes(f) || (lifecycleHere && spec.backend === 'sqlite-fs')) &&
      (!REPLICATION_FIGURES.includes(f) || (lifecycleHere && spec.backend === 'sqlite-fs')),
  );
  if (figures.length === 0) return;
  const phase = phaseName(spec);
  console.log(`\n### phase: ${phase} — ${figures.join(', ')}`);
  const phaseRoot = path.join(root, `${spec.backend}-${spec.topology}-${auth ? 'auth' : 'open'}`);
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
    const backend = spec.backend === 'postgres-s3' ? await startBackendServers(processes) : undefined;
    if (backend && !limits.s3) {
      limits.s3 = await s3Limit(backend.s3, Math.min(options.scale.blobBytes, 64 << 20), 3);
      console.log(`  S3 server alone (${backend.s3.endpoint}): PUT ${limits.s3.putMBps.toFixed(0)} MB/s, GET ${limits.s3.getMBps.toFixed(0)} MB/s, ${limits.s3.smallPutsPerSecond.toFixed(0)} small PUTs/s`);
    }
    const common = { root: phaseRoot, auth, processes, berthLogLevel: options.berthLogLevel, ...(backend ? { backend } : {}) };
    const berths: BenchServer[] = [];
    if (spec.topology === 'direct') {
      const berthProfileDir = profileDir ? path.join(profileDir, `${storage}-${spec.backend}-auth-${auth ? 'on' : 'off'}`) : undefined;
      berths.push(await startBenchBerth({ ...common, ...(berthProfileDir ? { berthProfileDir } : {}) }));
    } else {
      for (const count of spec.replicaCounts) {
        const set = await startBenchReplicas({ ...common, backend: backend! }, count);
        logDirs.push(...set.scratch);
        berths.push(set);
      }
    }
    for (const berth of berths) logDirs.push(path.dirname(berth.logFile)); // startBerth logs to a temp dir of its own
    // With PostgreSQL + S3, Distribution stores on the same S3 server (a bucket of its own).
    const distribution = await startBenchDistribution(common);
    console.log(`  ${berths.map((b) => `${b.name} ${b.base} (pid ${b.pid})`).join(', ')}, Distribution ${distribution.base} (pid ${distribution.pid}${backend ? ', on S3' : ''}), data in ${phaseRoot}`);
    const launch = {
      ...(backend ? { backend } : {}),
      berth: async (name: string, extra: { env?: Readonly<Record<string, string>>; prepare?: (where: BerthStorage) => Promise<void> } = {}) => {
        const berthProfileDir = profileDir ? path.join(profileDir, `${storage}-${spec.backend}-${name}`) : undefined;
        const server = await startBenchBerth({ ...common, root: path.join(phaseRoot, name), ...(extra.env ? { berthEnv: extra.env } : {}), ...(extra.prepare ? { prepare: extra.prepare } : {}), ...(berthProfileDir ? { berthProfileDir } : {}) });
        logDirs.push(path.dirname(server.logFile));
        return server;
      },
      distribution: (name: string, extra: { config?: readonly string[] } = {}) => startBenchDistribution({ ...common, root: path.join(phaseRoot, name), ...(extra.config ? { distributionConfig: extra.config } : {}) }),
    };
    const ctx: FigureContext = {
      scale: options.scale,
      launch,
      storage,
      auth,
      backend: spec.backend,
      topology: spec.topology,
      servers: [...berths, distribution],
      scratch,
      storageRoot: phaseRoot,
      state: new Map(),
      record: (m) => sink.measurements.push({ ...m, storage, auth, backend: spec.backend, topology: spec.topology }),
      log: (message) => console.log(message),
    };
    // Memory is per process: read for a lone Berth only.
    const memoryFigures = spec.topology === 'direct';
    if (memoryFigures) startMemory(ctx);
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
    if (!peakRead && memoryFigures) peakMemory(ctx);
  } catch (error) {
    // A phase that cannot start (a server that does not come up) is reported; the others still run.
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    sink.errors.push({ phase, figure: '(start)', message });
    console.log(`  PHASE FAILED: ${message}`);
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
  if (options.figures.includes('hash')) {
    console.log('\n### the chunked-upload hash: OpenSSL (SQLite) vs resumable hash-wasm (PostgreSQL)');
    limits.hash = await uploadHashCost(options.scale, (line) => console.log(line));
  }
  // PostgreSQL + S3 keep their data in RAM here: their phases run where Distribution's is in RAM too.
  const backendStorage: StorageKind = options.storages.includes('tmpfs') ? 'tmpfs' : 'disk';
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
      for (const auth of options.auths) {
        for (const backend of options.backends) {
          if (backend === 'postgres-s3' && storage !== backendStorage) continue;
          await runPhase(options, { storage, auth, backend, topology: 'direct', replicaCounts: [] }, root, scratch, sink, profileDir, limits);
        }
      }
      if (storage === backendStorage && options.replicas.includes(3)) {
        await runPhase(options, { storage, auth: false, backend: 'postgres-s3', topology: 'nginx', replicaCounts: options.replicas }, root, scratch, sink, undefined, limits);
      }
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
    ...backendTable(sink.measurements),
    ...replicasTable(sink.measurements),
    ...lifecycleTable(sink.measurements),
    ...proxyTable(sink.measurements),
    ...replicationTable(sink.measurements),
    ...hashTable(limits),
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
