// The proxy cache: projects that pull what they lack from another registry, and the transparent
// mirror in front of them. Composed once in src/main.ts; the /v2 routes call it.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { projectOf } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import type { Registry } from '../registry/index.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Endpoint } from '../remote/types.ts';
import { BlobFills } from './fill.ts';
import { ProxyBlobs } from './blobs.ts';
import { ProxyManifests } from './manifests.ts';
import type { ProxyMetrics } from './metrics.ts';
import { Mirrors } from './mirror.ts';
import { Shared } from './shared.ts';
import { Upstreams, type Upstream } from './upstream.ts';

export type { Upstream } from './upstream.ts';

/** The proxy cache's parts, as the /v2 routes use them. */
export interface ProxyCache {
  upstreams: Upstreams;
  manifests: ProxyManifests;
  blobs: ProxyBlobs;
  mirrors: Mirrors;
  /** Stops fetches in progress and closes upstream connections (shutdown). */
  close(): Promise<void>;
}

/** What the proxy cache is built from. */
export interface ProxyOptions {
  meta: Metadata;
  store: BlobStore;
  registry: Registry;
  log: Logger;
  metrics: ProxyMetrics;
  /** The endpoint of registry `id`, its credential opened. */
  endpoint(id: number): Promise<Endpoint | undefined>;
  /** `proxy.freshness`, seconds. */
  freshness: number;
  /** `proxy.timeout`, seconds. */
  timeout: number;
  mirrors: Record<string, string>;
  /** Where blobs being fetched are spooled for the clients reading them (under the data directory). */
  dataDir: string;
}

/** Builds the proxy cache. */
export function createProxyCache(options: ProxyOptions): ProxyCache {
  const { meta, store, registry, log, metrics } = options;
  const owner = randomUUID();
  const timeoutMs = options.timeout * 1000;
  const upstreams = new Upstreams({ meta, endpoint: options.endpoint, freshness: options.freshness, timeoutMs });
  const fills = new BlobFills({ store, meta, spoolDir: join(options.dataDir, 'proxy-spool'), owner, log, onUpstreamBytes: (n) => metrics.upstreamBytes.inc(n) });
  const audit = (action: string, up: Upstream, repository: string, detail: Record<string, string>) => {
    const resource = `${repository}${detail.tag ? `:${detail.tag}` : detail.digest ? `@${detail.digest}` : ''}`;
    registry.audit
      .record({ actor: `proxy-cache:${up.registry}`, action, resourceType: 'artifact', resource, project: projectOf(repository), success: true, detail: { ...detail, registry: up.registry, upstream: up.remote } })
      .catch((err: unknown) => log.error({ err }, 'audit write failed'));
  };
  return {
    upstreams,
    manifests: new ProxyManifests({ meta, store, local: registry.manifests, metrics, log, shared: new Shared(meta.leases, owner, timeoutMs), audit }),
    blobs: new ProxyBlobs({ store, blobs: registry.blobs, fills, metrics, log }),
    mirrors: new Mirrors(options.mirrors, meta),
    async close() {
      upstreams.close();
      await fills.close();
    },
  };
}
