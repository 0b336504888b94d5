// The proxy cache's Prometheus metrics, on the server's registry (GET /metrics).
import { Counter, type Registry } from 'prom-client';

/** How a pull from a proxy-cache project was answered, as `berth_proxy_requests_total` labels it. */
export type ProxyResult =
  /** From the cache, without asking the upstream (a digest, or a tag inside its freshness window). */
  | 'hit'
  /** From the cache after the upstream confirmed the tag's digest (one HEAD). */
  | 'revalidated'
  /** Fetched from the upstream (and cached). */
  | 'miss'
  /** From the cache because the upstream failed (429, 5xx, timeout, unreachable, refused credentials). */
  | 'stale'
  /** Neither cached nor available upstream. */
  | 'error';

/** The metrics the proxy cache updates. */
export interface ProxyMetrics {
  requests: Counter<'kind' | 'result'>;
  /** Requests Berth sent to upstream registries, by kind (`manifest-head`, `manifest`, `blob`, `blob-range`). */
  upstreamRequests: Counter<'kind'>;
  /** Bytes received from upstream registries (blobs and manifests). */
  upstreamBytes: Counter;
}

/** Creates the metrics on `registry` (once per registry: prom-client refuses a name twice). */
export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const registers = [registry];
  return {
    requests: new Counter({ name: 'berth_proxy_requests_total', help: 'Pulls from proxy-cache projects by kind (manifest, blob) and result (hit, revalidated, miss, stale, error)', labelNames: ['kind', 'result'], registers }),
    upstreamRequests: new Counter({ name: 'berth_proxy_upstream_requests_total', help: 'Requests sent to upstream registries by proxy-cache projects', labelNames: ['kind'], registers }),
    upstreamBytes: new Counter({ name: 'berth_proxy_upstream_bytes_total', help: 'Bytes received from upstream registries by proxy-cache projects', registers }),
  };
}
