// Starts the two registries for one phase of the benchmark (a storage directory, with or without
// authentication) and reads what the kernel knows about them: CPU time, resident memory.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startBerth } from '../test/support/berth.ts';
import { type PostgresServer, startPostgres } from '../test/support/postgres.ts';
import type { ProcessRegistry } from '../test/support/processes.ts';
import { assertUsesDatabase, startReplicaSet } from '../test/support/replicas.ts';
import { cleanEnv, run } from '../test/support/run.ts';
import { type S3Server, startS3, uniqueBucket } from '../test/support/s3.ts';
import { freePort, waitForTcp } from '../test/support/system.ts';
import type { Endpoint } from './client.ts';

/** `berth-3`: three replicas behind nginx (the replicas phase, where `berth` is one replica behind nginx). */
export type RegistryName = 'berth' | 'berth-3' | 'distribution';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** A running registry under test. */
export interface BenchServer extends Endpoint {
  readonly name: RegistryName;
  /** The process to read memory of; with replicas, the first replica (CPU counts them all). */
  readonly pid: number;
  /** Processes that serve requests (replicas): each needs its own warm-up. Default 1. */
  readonly processes?: number;
  readonly dataDir: string;
  readonly logFile: string;
  stop(): Promise<void>;
}

/** Settings shared by both registries in one phase. */
export interface PhaseServerOptions {
  /** Directory on the storage under test; each registry gets a subdirectory. */
  readonly root: string;
  /** Authentication on: Distribution with htpasswd, Berth with its token flow. */
  readonly auth: boolean;
  readonly processes: ProcessRegistry;
  /** Write a V8 CPU profile of Berth into this directory when it stops (bench/cpu-profiler.mjs). */
  readonly berthProfileDir?: string;
  /** Berth's log level; `info` writes one access-log line per request, as Distribution's app log does. */
  readonly berthLogLevel: string;
  /** PostgreSQL and S3 for Berth (a database and a bucket of its own on them); unset: SQLite + filesystem under `root`. */
  readonly backend?: BackendServers;
  /** More BERTH_* settings for Berth (e.g. `BERTH_GC_GRACE`). */
  readonly berthEnv?: Readonly<Record<string, string>>;
  /**
   * Runs before Berth starts, once its data directory (and on PostgreSQL its fresh database) is
   * chosen: a figure fills the metadata in bulk here, as no client could in the time.
   */
  readonly prepare?: (where: BerthStorage) => Promise<void>;
  /** More top-level lines of Distribution's config.yml (e.g. a `proxy:` section: its pull-through cache mode). */
  readonly distributionConfig?: readonly string[];
}

/** Where a Berth about to start keeps its metadata. */
export interface BerthStorage {
  readonly dataDir: string;
  /** Its PostgreSQL database (`postgres://…`); unset on SQLite (`dataDir/berth.db`). */
  readonly databaseUrl?: string;
}

/** The PostgreSQL and S3 servers of a PostgreSQL + S3 phase. */
export interface BackendServers {
  readonly postgres: PostgresServer;
  readonly s3: S3Server;
}

/**
 * A PostgreSQL server (durable: fsync and synchronous commit on, as Berth's SQLite and
 * Distribution's files are; its data directory is on /dev/shm) and moto's S3 server (in memory),
 * registered with `processes` so the phase's end stops them.
 */
export async function startBackendServers(processes: ProcessRegistry): Promise<BackendServers> {
  const [postgres, s3] = await Promise.all([startPostgres({ durable: true }), startS3()]);
  processes.defer('postgres', () => postgres.stop());
  processes.defer('moto', () => s3.stop());
  return { postgres, s3 };
}

/** A fresh database and bucket on the phase's servers, as BERTH_* variables. */
async function backendEnv(backend: BackendServers): Promise<Record<string, string>> {
  const database = `bench_${randomBytes(5).toString('hex')}`;
  const bucket = uniqueBucket('berth-bench');
  await Promise.all([backend.postgres.createDatabase(database), backend.s3.createBucket(bucket)]);
  return {
    BERTH_DATABASE_URL: backend.postgres.url(database),
    BERTH_S3_ENDPOINT: backend.s3.endpoint,
    BERTH_S3_REGION: backend.s3.region,
    BERTH_S3_BUCKET: bucket,
    BERTH_S3_ACCESS_KEY_ID: backend.s3.accessKeyId,
    BERTH_S3_SECRET_ACCESS_KEY: backend.s3.secretAccessKey,
    BERTH_S3_FORCE_PATH_STYLE: 'true',
  };
}

/**
 * Berth on loopback with its data under `root/berth`. Berth cannot switch authentication off, so
 * "without auth" means anonymous pulls (`BERTH_ANONYMOUS_PULL`) and Basic credentials for pushes.
 */
export async function startBenchBerth(options: PhaseServerOptions): Promise<BenchServer> {
  const dataDir = path.join(options.root, 'berth');
  const env: Record<string, string> = { BERTH_ANONYMOUS_PULL: options.auth ? 'false' : 'true' };
  if (options.berthProfileDir) {
    env['NODE_OPTIONS'] = `--import=${pathToFileURL(path.join(BENCH_DIR, 'cpu-profiler.mjs')).href}`;
    env['BERTH_BENCH_PROFILE_DIR'] = options.berthProfileDir;
  }
  if (options.backend) Object.assign(env, await backendEnv(options.backend));
  Object.assign(env, options.berthEnv);
  await options.prepare?.({ dataDir, ...(env['BERTH_DATABASE_URL'] ? { databaseUrl: env['BERTH_DATABASE_URL'] } : {}) });
  const server = await startBerth({ dataDir, logLevel: options.berthLogLevel, env, registry: options.processes });
  if (env['BERTH_DATABASE_URL']) await assertUsesDatabase(env['BERTH_DATABASE_URL']);
  const pid = server.process?.pid;
  if (pid === undefined) throw new Error('Berth started without a pid');
  return {
    name: 'berth',
    base: server.url,
    authMode: options.auth ? 'token' : 'anonymous-pull',
    username: 'admin',
    password: server.adminPassword,
    pid,
    dataDir,
    logFile: server.logFile,
    stop: () => server.stop(),
  };
}

/**
 * Berth scaled out as deploy/scale-out/ describes it (test/support/replicas.ts): `count` replicas
 * on the phase's PostgreSQL and S3, behind nginx round robin on plain HTTP (loopback). Named
 * `berth` for one replica, `berth-3` for three; its CPU is that of every replica and nginx.
 */
export async function startBenchReplicas(options: PhaseServerOptions & { backend: BackendServers }, count: 1 | 3): Promise<BenchServer & { scratch: readonly string[] }> {
  const set = await startReplicaSet({
    replicas: count,
    registry: options.processes,
    logLevel: options.berthLogLevel,
    env: { BERTH_ANONYMOUS_PULL: options.auth ? 'false' : 'true' },
    backend: options.backend,
  });
  const pids = () => [...set.replicas.flatMap((r) => (r.process ? [r.process.pid] : [])), ...set.nginxPids()];
  const pid = set.replicas[0]!.process!.pid;
  cpuGroups.set(pid, pids);
  return {
    name: count === 3 ? 'berth-3' : 'berth',
    processes: count,
    base: set.url,
    authMode: options.auth ? 'token' : 'anonymous-pull',
    username: 'admin',
    password: set.adminPassword,
    pid,
    dataDir: set.replicas[0]!.dataDir,
    logFile: set.replicas[0]!.logFile,
    scratch: set.scratch,
    // The phase's process registry stops the replicas and nginx.
    stop: async () => undefined,
  };
}

/**
 * CNCF Distribution (`docker-registry serve`) on loopback: filesystem storage under
 * `root/distribution`, or, when the phase has `backend`, the S3 driver on the phase's S3 server in
 * a bucket of its own (the same server as Berth's: like for like); the packaged default in-memory
 * blob-descriptor cache, access log off (its application log still writes one `response completed`
 * line per request, like Berth's), catalog pages of up to 10,000 entries, and htpasswd (bcrypt)
 * Basic auth when `auth` is on.
 */
export async function startBenchDistribution(options: PhaseServerOptions): Promise<BenchServer> {
  const dir = path.join(options.root, 'distribution');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const username = 'admin';
  const password = randomBytes(12).toString('base64url');
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: json',
    '  accesslog: { disabled: true }',
    'storage:',
    ...(options.backend ? await distributionS3(options.backend.s3) : await distributionFilesystem(dir)),
    '  cache: { blobdescriptor: inmemory }',
    '  delete: { enabled: true }',
    '  maintenance: { uploadpurging: { enabled: false } }',
    'http:',
    `  addr: "127.0.0.1:${port}"`,
    `  secret: ${JSON.stringify(randomBytes(16).toString('hex'))}`,
    'catalog: { maxentries: 10000 }',
    ...(options.distributionConfig ?? []),
  ];
  if (options.auth) {
    const htpasswd = path.join(dir, 'htpasswd');
    const hashed = await run('htpasswd', ['-Bbn', username, password], { redact: [password] });
    await writeFile(htpasswd, hashed.stdout.trim() + '\n', { mode: 0o600 });
    lines.push('auth:', '  htpasswd:', '    realm: berth-bench', `    path: ${JSON.stringify(htpasswd)}`);
  }
  const configFile = path.join(dir, 'config.yml');
  await writeFile(configFile, lines.join('\n') + '\n');
  const logFile = path.join(dir, 'registry.log');
  const child = await options.processes.start({ name: 'docker-registry', command: 'docker-registry', args: ['serve', configFile], env: distributionEnv(), logFile });
  await waitForTcp('127.0.0.1', port, { timeoutMs: 20_000, abortIf: () => child.exitDescription() });
  return {
    name: 'distribution',
    base: `http://127.0.0.1:${port}`,
    authMode: options.auth ? 'basic' : 'none',
    username,
    password,
    pid: child.pid,
    dataDir: dir,
    logFile,
    stop: () => child.stop(),
  };
}

/**
 * The environment without AWS_* variables: Distribution's S3 driver (aws-sdk-go v1) would read them,
 * and an AWS_CA_BUNDLE makes it panic at start (it cannot add a CA bundle to its own transport).
 * Its configuration names the endpoint and credentials, so nothing of the machine's is needed.
 */
export function distributionEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !key.startsWith('AWS_')));
}

/** The `storage` entries of Distribution on the filesystem, under `dir/storage`. */
async function distributionFilesystem(dir: string): Promise<string[]> {
  const storage = path.join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  return [`  filesystem: { rootdirectory: ${JSON.stringify(storage)} }`];
}

/**
 * The `storage` entries of Distribution 2.8 on S3, in a fresh bucket of the phase's server.
 * 2.8 has no `forcepathstyle` key: a `regionendpoint` alone makes it address buckets by path, as
 * Berth does. Blob GETs are served by the registry, not redirected to a pre-signed URL (its
 * default on S3): Berth's `storage.redirect` is off too, and the benchmark's client follows none.
 * Each keeps its default multipart part size (Distribution 10 MiB, Berth 16 MiB).
 */
async function distributionS3(s3: S3Server): Promise<string[]> {
  const bucket = uniqueBucket('dist-bench');
  await s3.createBucket(bucket);
  const settings = {
    region: s3.region,
    regionendpoint: s3.endpoint,
    bucket,
    accesskey: s3.accessKeyId,
    secretkey: s3.secretAccessKey,
    secure: false,
    v4auth: true,
    encrypt: false,
  };
  return [
    `  s3: { ${Object.entries(settings).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')} }`,
    '  redirect: { disable: true }',
  ];
}

const CLOCK_TICKS = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)

/** Registries of several processes (replicas and nginx), by the pid a BenchServer names: every member's pid. */
const cpuGroups = new Map<number, () => readonly number[]>();

/**
 * CPU seconds (user + system, all threads) a process has used so far; for a replica set's pid,
 * the sum over its replicas and nginx's processes.
 */
export function cpuSeconds(pid: number): number {
  const group = cpuGroups.get(pid);
  if (!group) return processCpuSeconds(pid);
  let sum = 0;
  for (const member of group()) {
    try {
      sum += processCpuSeconds(member);
    } catch {
      /* an nginx worker replaced meanwhile: its CPU is lost, a few ticks at most */
    }
  }
  return sum;
}

function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "(comm) ", field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident memory now and its peak (VmRSS, VmHWM) in MiB. */
export function memory(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

/** Samples a process's VmRSS every `intervalMs` until stopped. */
export class RssSampler {
  readonly samples: { atMs: number; rssMiB: number }[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #started = Date.now();

  constructor(private readonly pid: number, intervalMs = 100) {
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  private sample(): void {
    try {
      this.samples.push({ atMs: Date.now() - this.#started, rssMiB: memory(this.pid).rssMiB });
    } catch {
      /* the process is gone; the figure reports what was sampled */
    }
  }

  stop(): { atMs: number; rssMiB: number }[] {
    clearInterval(this.#timer);
    this.sample();
    return this.samples;
  }
}

/** `docker-registry --version`, e.g. `2.8.2+ds1`. */
export async function distributionVersion(): Promise<string> {
  const out = await run('docker-registry', ['--version'], { allowFailure: true });
  return /\s(\d[\w.+~-]*)\s*$/.exec(out.stdout.trim())?.[1] ?? out.stdout.trim();
}
