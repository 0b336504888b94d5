// One garbage collection run as its phases see it: what it may touch, its options and figures,
// and how it reports (progress with an ETA, a bounded log, metrics).
import type { JobLogLevel } from '../../jobs/kind.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { BlobStore } from '../../storage/blob-store.ts';
import { addSample, PHASES, type GcFigures, type PhaseFigures, type PhaseName } from './figures.ts';
import type { GcMetrics } from './metrics.ts';
import { projectNames } from './queries.ts';

/** What garbage collection reads and deletes in storage. */
export type GcStore = Pick<BlobStore, 'deleteBlobs' | 'listBlobs' | 'listUploads' | 'deleteUpload' | 'uploadSize'>;

/** What a run needs from the composition root. */
export interface GcDeps {
  meta: Pick<Metadata, 'db' | 'blobs' | 'manifests' | 'uploads' | 'projects'>;
  store: GcStore;
  /** The registry's expiry of idle upload sessions (`UploadService.expire`): sessions and their bytes. */
  uploads: { expire(ttlSeconds: number): Promise<number> };
  /** `uploads.ttl`, seconds: sessions idle for longer have expired. */
  uploadTTL: number;
  metrics?: GcMetrics | undefined;
}

/** How a run reports: the job's signal, log and progress (see JobContext). */
export interface GcReporter {
  signal: AbortSignal;
  log(level: JobLogLevel, message: string): Promise<void>;
  progress(progress: Record<string, unknown>): Promise<void>;
}

/** Problems written to the log one by one; past this only counted (the log stays short). */
const LOGGED_PROBLEMS = 20;

/** A run in progress: its phases share it. */
export class GcRun {
  /** Content untouched since this time (ms) may be collected. */
  readonly cutoff: number;
  private problems = 0;
  /** Where the current phase started in this attempt: its ETA counts from there. */
  private clock: { phase: PhaseName; at: number; from: number | undefined } | undefined;
  private readonly names = new Map<number, string>();

  constructor(readonly deps: GcDeps, readonly figures: GcFigures, private readonly reporter: GcReporter) {
    this.cutoff = Date.parse(figures.cutoff);
  }

  /** Whether this run only reports (deletes nothing). */
  get dryRun(): boolean {
    return this.figures.dryRun;
  }

  /** Aborted when the run must stop (see JobContext.signal). */
  get signal(): AbortSignal {
    return this.reporter.signal;
  }

  /** Throws (the signal's reason) when the run must stop: called between batches. */
  check(): void {
    this.reporter.signal.throwIfAborted();
  }

  /** The figures of phase `name`. */
  phase(name: PhaseName): PhaseFigures {
    return this.figures.phases[name];
  }

  /** Enters phase `name`. */
  async begin(name: PhaseName): Promise<PhaseFigures> {
    const phase = this.phase(name);
    this.figures.phase = name;
    phase.state = 'running';
    phase.startedAt ??= new Date().toISOString();
    this.clock = { phase: name, at: Date.now(), from: undefined };
    await this.report();
    return phase;
  }

  /** Leaves phase `name` (done, or skipped when it does not apply to this run). */
  async end(name: PhaseName, state: 'done' | 'skipped' = 'done'): Promise<void> {
    const phase = this.phase(name);
    phase.state = state;
    phase.finishedAt = new Date().toISOString();
    this.clock = undefined;
    this.figures.eta = null;
    await this.report();
  }

  /** Adds a line to the run's log (a phase's summary: the log stays a few lines per phase). */
  async info(message: string): Promise<void> {
    await this.reporter.log('info', message);
  }

  /** Logs a problem that does not stop the run (the first few; the rest are counted). */
  async problem(message: string): Promise<void> {
    if (++this.problems <= LOGGED_PROBLEMS) await this.reporter.log('warn', message);
    else if (this.problems === LOGGED_PROBLEMS + 1) await this.reporter.log('warn', 'more problems: not logged one by one');
  }

  /** Counts deleted (or, in a dry run, collectable) items of the current phase. */
  count(phase: PhaseFigures, items: readonly { name: string; size: number }[]): void {
    for (const item of items) {
      phase.deleted++;
      phase.bytes += item.size;
      addSample(phase.sample, item.name);
    }
  }

  /** Adds storage freed (in a dry run: that would be) to the run's totals, and a real run's to the metrics. */
  freed(kind: 'blobsDeleted' | 'orphansDeleted' | 'uploadsDeleted', count: number, bytes: number): void {
    this.figures[kind] += count;
    this.figures.bytesFreed += bytes;
    if (this.dryRun) return;
    if (kind !== 'uploadsDeleted') this.deps.metrics?.blobsDeleted.inc(count);
    this.deps.metrics?.bytesFreed.inc(bytes);
  }

  /** Adds bytes projects stopped counting, by project id. */
  async released(byProject: ReadonlyMap<number, number> | Iterable<[number, number]>): Promise<void> {
    const entries = [...byProject].filter(([, bytes]) => bytes > 0);
    const unknown = entries.map(([id]) => id).filter((id) => !this.names.has(id));
    if (unknown.length > 0) for (const [id, name] of await projectNames(this.deps.meta.db, unknown)) this.names.set(id, name);
    for (const [id, bytes] of entries) {
      const name = this.names.get(id) ?? `#${id}`;
      this.figures.quotaReleased[name] = (this.figures.quotaReleased[name] ?? 0) + bytes;
    }
  }

  /**
   * Saves the figures as the job's progress (the job system writes them at most once a second).
   * `fraction`: how much of the current phase is done, from 0 to 1, for its ETA.
   */
  async report(fraction?: number): Promise<void> {
    const now = Date.now();
    const figures = this.figures;
    figures.examined = PHASES.reduce((sum, name) => sum + figures.phases[name].examined, 0);
    figures.durationSeconds = Math.max(0, (now - Date.parse(figures.startedAt)) / 1000);
    if (this.clock && fraction !== undefined) {
      this.clock.from ??= fraction;
      const covered = fraction - this.clock.from;
      const elapsed = now - this.clock.at;
      // Too little seen yet for a rate worth showing.
      if (covered > 0.001 && elapsed > 1000) {
        const seconds = Math.round(((elapsed / covered) * (1 - fraction)) / 1000);
        figures.eta = { phase: this.clock.phase, seconds, at: new Date(now + seconds * 1000).toISOString() };
      }
    }
    await this.reporter.progress(figures as unknown as Record<string, unknown>);
  }
}
