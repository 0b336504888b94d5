// Measurement plumbing shared by the figures: timing with CPU accounting (client and server),
// alternating rounds between the registries, and concurrent load loops.
import type { BackendServers, BenchServer, BerthStorage, RegistryName } from './servers.ts';
import { cpuSeconds } from './servers.ts';
import { median } from './machine.ts';
import type { Backend, Scale } from './options.ts';

export type StorageKind = 'disk' | 'tmpfs';

/** Where a measurement was taken: storage, auth, Berth's backend and how many replicas. */
export interface PhaseKey {
  readonly storage: StorageKind;
  readonly auth: boolean;
  readonly backend: Backend;
  /**
   * `direct`: one Berth process, clients connect to it (the backend phases). `nginx`: the replicas
   * phase, Berth behind nginx as registry `berth` (1 replica) and `berth-3` (3 replicas).
   */
  readonly topology: 'direct' | 'nginx';
}

/** One figure for one registry in one phase: every round's value and their median. */
export interface Measurement {
  /** Stable key, e.g. `push-monolithic`; the report and the targets look figures up by it. */
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly storage: StorageKind;
  readonly auth: boolean;
  readonly backend: Backend;
  readonly topology: 'direct' | 'nginx';
  /**
   * `machine`: the storage's own synced write of the same bytes, measured next to each round (push
   * figures). `skopeo`: skopeo moving images between the registries (issue 16's replication figures).
   */
  readonly registry: RegistryName | 'machine' | 'skopeo';
  readonly samples: number[];
  readonly median: number;
  /** Median CPU of the benchmark client while measuring, as a fraction of one core. */
  readonly clientCpu?: number;
  /** Median CPU of the server while measuring, as a fraction of one core (2.0 = both cores). */
  readonly serverCpu?: number;
  readonly note?: string;
}

/** Wall time and CPU use of one timed piece of work. */
export interface Usage {
  readonly seconds: number;
  readonly clientCpu: number;
  readonly serverCpu: number;
}

/** Runs `work` and reports its wall time, the client's CPU and the server's (by pid) over it. */
export async function timed<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; usage: Usage }> {
  const serverBefore = cpuSeconds(pid);
  const clientBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(clientBefore);
  // /proc counts CPU in 10 ms ticks: below a quarter second the server's share would be noise.
  const serverCpu = seconds >= 0.25 ? (cpuSeconds(pid) - serverBefore) / seconds : NaN;
  return { result, usage: { seconds, clientCpu: (client.user + client.system) / 1e6 / seconds, serverCpu } };
}

/** One round's result: the figure's value and the CPU use behind it. */
export interface Sample {
  readonly value: number;
  readonly usage?: Usage;
}

/** What the figure code hands the runner. */
export interface FigureContext {
  readonly scale: Scale;
  readonly storage: StorageKind;
  readonly auth: boolean;
  readonly backend: Backend;
  readonly topology: 'direct' | 'nginx';
  /** Berth first (one or two: 1 and 3 replicas in the replicas phase), then Distribution. */
  readonly servers: readonly BenchServer[];
  /** Scratch directory on the normal disk (client-side files: images, pulled copies). */
  readonly scratch: string;
  /** The directory on the storage under test that holds both registries' data in this phase. */
  readonly storageRoot: string;
  /** State handed from one figure to the next within a phase (e.g. pushed digests for the pull figure). */
  readonly state: Map<string, unknown>;
  /** Starts registries of the phase's kind for a figure that needs its own (fresh data, settings); the phase stops them. */
  readonly launch: Launcher;
  record(measurement: Omit<Measurement, keyof PhaseKey>): void;
  log(message: string): void;
}

/**
 * Registries a figure starts for itself, on the phase's storage and backend, each under a
 * directory `name` of the phase's root: garbage collection must meet no other figure's leftovers,
 * and Distribution's collector needs its registry stopped.
 */
export interface Launcher {
  /** A fresh Berth: its own data directory (and on PostgreSQL + S3 its own database and bucket). */
  berth(name: string, options?: { env?: Readonly<Record<string, string>>; prepare?: (where: BerthStorage) => Promise<void> }): Promise<BenchServer>;
  /** A fresh Distribution (`config`: more top-level lines of its config.yml); its configuration file is `dataDir/config.yml`. */
  distribution(name: string, options?: { config?: readonly string[] }): Promise<BenchServer>;
  /** The phase's PostgreSQL and S3 servers (PostgreSQL + S3 phases only). */
  readonly backend?: BackendServers;
}

/** Describes a figure's unit and direction. */
export interface FigureSpec {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
}

/** Who takes part in `alternate`, and how. */
export interface AlternateOptions {
  /** Default: every registry of the phase. */
  readonly servers?: readonly BenchServer[];
  /**
   * Runs after each round's registries and is recorded as the `machine` measurement of the figure:
   * the storage's own limit measured in the same moments as the registries.
   */
  readonly machine?: () => Promise<Sample>;
  /**
   * Untimed rounds per registry first (default 0), times its number of processes: a fresh Node
   * process compiles its hot paths while it serves the first thousand or so requests, a Go binary
   * does not need to.
   */
  readonly warmup?: number;
}

/**
 * Runs `round` for each registry, `rounds` times, alternating which goes first so neither always
 * meets a warmer cache or a busier disk, and records the medians.
 */
export async function alternate(
  ctx: FigureContext,
  spec: FigureSpec,
  rounds: number,
  round: (server: BenchServer, index: number) => Promise<Sample>,
  options: AlternateOptions = {},
): Promise<void> {
  const { servers = ctx.servers, machine, warmup = 0 } = options;
  const samples = new Map<RegistryName | 'machine', Sample[]>([['machine', []]]);
  for (const server of servers) samples.set(server.name, []);
  const log = (name: string, i: number, sample: Sample) =>
    ctx.log(`  ${spec.label} · ${name} · round ${i + 1}: ${format(sample.value)} ${spec.unit}${sample.usage ? ` (server CPU ${pct(sample.usage.serverCpu)}, client CPU ${pct(sample.usage.clientCpu)})` : ''}`);
  // Each process of a registry warms up as much as a lone one: three replicas share the warm-up
  // requests between three Node processes, so they get three times the rounds.
  const warmups = (server: BenchServer) => warmup * (server.processes ?? 1);
  for (let i = 0; i < Math.max(0, ...servers.map(warmups)); i++) {
    for (const server of servers) {
      if (i >= warmups(server)) continue;
      const sample = await round(server, -1 - i);
      ctx.log(`  ${spec.label} · ${server.name} · warm-up (not counted): ${format(sample.value)} ${spec.unit}`);
    }
  }
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const sample = await round(server, i);
      samples.get(server.name)!.push(sample);
      log(server.name, i, sample);
    }
    if (machine) {
      const sample = await machine();
      samples.get('machine')!.push(sample);
      log('synced write of the same bytes', i, sample);
    }
  }
  for (const server of servers) recordSamples(ctx, spec, server.name, samples.get(server.name)!);
  if (machine) recordSamples(ctx, spec, 'machine', samples.get('machine')!);
}

/** Records a list of samples for one registry (or the machine's probe) as a measurement. */
export function recordSamples(ctx: FigureContext, spec: FigureSpec, registry: Measurement['registry'], samples: readonly Sample[], note?: string): void {
  const withUsage = samples.filter((s) => s.usage);
  ctx.record({
    ...spec,
    registry,
    samples: samples.map((s) => s.value),
    median: median(samples.map((s) => s.value)),
    ...(withUsage.length ? { clientCpu: median(withUsage.map((s) => s.usage!.clientCpu)), serverCpu: median(withUsage.map((s) => s.usage!.serverCpu)) } : {}),
    ...(note ? { note } : {}),
  });
}

/**
 * Runs each named figure of a set in turn; a figure that fails is logged with its stack and does
 * not stop the others. Rejects at the end, naming every figure that failed.
 */
export async function runEach<S>(ctx: FigureContext, setup: S, figures: readonly (readonly [string, (ctx: FigureContext, setup: S) => Promise<void>])[]): Promise<void> {
  const failures: string[] = [];
  for (const [name, figure] of figures) {
    try {
      await figure(ctx, setup);
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      ctx.log(`  ${name} FAILED: ${message}`);
      failures.push(`${name}: ${message.split('\n')[0]}`);
    }
  }
  if (failures.length) throw new Error(failures.join('; '));
}

/** Runs `op` in `workers` parallel loops until `durationMs` has passed; returns how many completed. */
export async function loadFor(workers: number, durationMs: number, op: (worker: number) => Promise<void>): Promise<number> {
  const deadline = Date.now() + durationMs;
  return loadWhile(workers, () => Date.now() < deadline, op);
}

/** Runs `op` in `workers` parallel loops while `more()` holds (checked before each call); returns how many completed. */
export async function loadWhile(workers: number, more: () => boolean, op: (worker: number) => Promise<void>): Promise<number> {
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (more()) {
        await op(worker);
        done++;
      }
    }),
  );
  return done;
}

/** Runs `op(index, worker)` for indexes 0…total-1 with `workers` parallel loops (each takes the next index). */
export async function runCount(workers: number, total: number, op: (index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, total) }, async (_, worker) => {
      for (let index = next++; index < total; index = next++) await op(index, worker);
    }),
  );
}

/** A number for a log line or table cell: 3 significant digits, thousands kept whole. */
export function format(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A CPU fraction as a percentage of one core; `n/a` when the window was too short to read it. */
export function pct(fraction: number): string {
  return Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : 'n/a';
}
