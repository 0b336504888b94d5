// Garbage collection's Prometheus metrics, registered on the server's registry (GET /metrics):
// the runs happen in the job worker, which receives them through the job services.
import { Counter, Histogram, type Registry } from 'prom-client';

/** How a run ended, as `berth_gc_runs_total` labels it. */
export type GcResult = 'succeeded' | 'failed' | 'cancelled' | 'interrupted';

/** The metrics a run updates. */
export interface GcMetrics {
  /** Runs by how they ended (dry runs included). */
  runs: Counter<'result'>;
  /** Blobs (and manifests' bytes, and orphaned objects) deleted from storage by real runs. */
  blobsDeleted: Counter;
  /** Bytes deleted from storage by real runs, uploads included. */
  bytesFreed: Counter;
  /** How long runs took, seconds. */
  duration: Histogram;
}

/** Creates the metrics on `registry` (once per registry: prom-client refuses a name twice). */
export function createGcMetrics(registry: Registry): GcMetrics {
  const registers = [registry];
  return {
    runs: new Counter({ name: 'berth_gc_runs_total', help: 'Garbage collection runs by result', labelNames: ['result'], registers }),
    blobsDeleted: new Counter({ name: 'berth_gc_blobs_deleted_total', help: 'Content objects garbage collection deleted from storage', registers }),
    bytesFreed: new Counter({ name: 'berth_gc_bytes_freed_total', help: 'Bytes garbage collection deleted from storage', registers }),
    duration: new Histogram({
      name: 'berth_gc_duration_seconds',
      help: 'Duration of garbage collection runs',
      buckets: [1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    }),
  };
}
