import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.ts';
import { parseDigest } from '../domain/digest.ts';
import { parseManifest } from '../domain/manifest.ts';
import { isTag } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import { manifestRecord, requireAccepted, type ManifestService, type StoredManifest } from '../registry/manifests.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { MANIFEST_ACCEPT } from '../remote/client.ts';
import type { RemoteManifest } from '../remote/types.ts';
import { servesStale, upstreamError, upstreamTrouble } from './errors.ts';
import type { ProxyMetrics, ProxyResult } from './metrics.ts';
import { Shared } from './shared.ts';
import type { Upstream } from './upstream.ts';

/** A manifest as served: its bytes unless the request was a HEAD. */
export type ServedManifest = StoredManifest & { body?: Buffer };

/** What the proxy's manifest side needs. */
export interface ProxyManifestDeps {
  meta: Metadata;
  store: BlobStore;
  /** The registry's own manifest reads (the cached copies are ordinary manifests of the project). */
  local: ManifestService;
  metrics: ProxyMetrics;
  log: Logger;
  shared: Shared;
  /** Records a proxy event in the audit log (fetched from upstream, served stale); never fails the pull. */
  audit(action: 'proxy.fetch' | 'proxy.stale', up: Upstream, repository: string, detail: Record<string, string>): void;
}

/** What resolving a tag found: the digest to serve, and the upstream's bytes when it had to fetch them. */
interface Resolved {
  digest: string;
  remote?: RemoteManifest;
  result: ProxyResult;
}

/**
 * Manifests of proxy-cache projects. By digest: from the cache once fetched (content never
 * changes). By tag: from the cache while the tag is fresh; after that, one HEAD to the upstream
 * confirms the digest (a GET only when it changed); when the upstream fails, the cached copy is
 * served (stale-if-error). Concurrent requests share one upstream request, across replicas too.
 */
export class ProxyManifests {
  /** `repository\0tag` → digest and until when it is fresh, so that a hit costs no query. */
  private readonly fresh = new Map<string, { digest: string; until: number }>();

  constructor(private readonly deps: ProxyManifestDeps) {}

  /** GET (`head` false) or HEAD of `reference` in proxy-cache repository `repository`. */
  async serve(up: Upstream, repository: string, reference: string, accept: string | undefined, head: boolean): Promise<ServedManifest> {
    // What is neither a tag nor a digest is refused exactly as for any repository.
    if (!reference.includes(':') && !isTag(reference)) return this.local(repository, reference, accept, head);
    let resolved: Resolved;
    try {
      resolved = reference.includes(':') ? await this.byDigest(up, repository, parseDigest(reference, 'reference').value) : await this.byTag(up, repository, reference);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      this.deps.metrics.requests.inc({ kind: 'manifest', result: 'error' });
      throw upstreamError(err, up, 'manifest');
    }
    this.deps.metrics.requests.inc({ kind: 'manifest', result: resolved.result });
    if (!resolved.remote) {
      try {
        return await this.local(repository, resolved.digest, accept, head);
      } catch (err) {
        // Deleted since this replica confirmed the tag (retention, an administrator): ask again.
        if (!(err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') || !this.fresh.delete(`${repository}\0${reference}`)) throw err;
        return this.serve(up, repository, reference, accept, head);
      }
    }
    const remote = resolved.remote;
    requireAccepted(accept, remote.mediaType);
    const served = { digest: remote.digest, mediaType: remote.mediaType, size: remote.size };
    return head ? served : { ...served, body: remote.body };
  }

  private local(repository: string, reference: string, accept: string | undefined, head: boolean): Promise<ServedManifest> {
    return head ? this.deps.local.stat(repository, reference, accept) : this.deps.local.get(repository, reference, accept);
  }

  private async byDigest(up: Upstream, repository: string, digest: string): Promise<Resolved> {
    const { meta } = this.deps;
    const cached = async (): Promise<Resolved | undefined> => {
      const id = await meta.repositories.id(repository);
      return id !== undefined && (await meta.manifests.byDigest(id, digest)) ? { digest, result: 'hit' as const } : undefined;
    };
    const hit = await cached();
    if (hit) return hit;
    return this.deps.shared.run<Resolved>(`manifest:${repository}@${digest}`, cached, async () => {
      const remote = await this.fetch(up, digest);
      await this.record(up, repository, remote);
      return { digest, remote, result: 'miss' };
    });
  }

  private async byTag(up: Upstream, repository: string, tag: string): Promise<Resolved> {
    const { meta } = this.deps;
    const now = Date.now();
    const known = this.fresh.get(`${repository}\0${tag}`);
    if (known && known.until > now) return { digest: known.digest, result: 'hit' };
    let repositoryId = await meta.repositories.id(repository);
    const started = now;
    // What another replica (or an earlier request) confirmed, fresh enough to serve.
    const confirmed = async (since: number): Promise<Resolved | undefined> => {
      repositoryId ??= await meta.repositories.id(repository);
      if (repositoryId === undefined) return undefined;
      const check = await meta.proxyTags.checked(repositoryId, tag);
      if (!check || check.checkedAt < since || !(await meta.manifests.byDigest(repositoryId, check.digest))) return undefined;
      this.remember(repository, tag, check.digest, check.checkedAt, up);
      return { digest: check.digest, result: 'hit' };
    };
    const fresh = await confirmed(now - up.freshnessMs);
    if (fresh) return fresh;
    return this.deps.shared.run(`tag:${repository}:${tag}`, () => confirmed(started), () => this.revalidate(up, repository, tag));
  }

  /** Asks the upstream about `tag`: HEAD when a copy is cached (GET only if it moved), GET otherwise. */
  private async revalidate(up: Upstream, repository: string, tag: string): Promise<Resolved> {
    const { meta, metrics } = this.deps;
    const repositoryId = await meta.repositories.id(repository);
    const cached = repositoryId === undefined ? undefined : await meta.manifests.byTag(repositoryId, tag);
    if (!cached) {
      const remote = await this.fetch(up, tag);
      await this.record(up, repository, remote, tag);
      return { digest: remote.digest, remote, result: 'miss' };
    }
    try {
      metrics.upstreamRequests.inc({ kind: 'manifest-head' });
      const head = await up.client.headManifest(up.remote, tag, MANIFEST_ACCEPT);
      if (head.digest === cached.digest) {
        await this.confirm(up, repository, repositoryId!, tag, cached.digest);
        return { digest: cached.digest, result: 'revalidated' };
      }
      const remote = await this.fetch(up, head.digest);
      await this.record(up, repository, remote, tag);
      return { digest: remote.digest, remote, result: 'miss' };
    } catch (err) {
      if (!servesStale(err)) throw err;
      // Stale-if-error: the build goes on with what was cached.
      this.deps.log.warn({ registry: up.registry, repository, tag, reason: upstreamTrouble(err), err }, 'upstream failed: serving the cached manifest');
      this.deps.audit('proxy.stale', up, repository, { tag, digest: cached.digest, reason: upstreamTrouble(err) });
      return { digest: cached.digest, result: 'stale' };
    }
  }

  /** The manifest `reference` from the upstream, its digest verified by the client; a RemoteError when that fails. */
  private async fetch(up: Upstream, reference: string): Promise<RemoteManifest> {
    this.deps.metrics.upstreamRequests.inc({ kind: 'manifest' });
    const remote = await up.client.getManifest(up.remote, reference, MANIFEST_ACCEPT);
    this.deps.metrics.upstreamBytes.inc(remote.size);
    return remote;
  }

  /** Caches an upstream manifest (and points `tag` at it): its bytes first, then its record. */
  private async record(up: Upstream, repository: string, remote: RemoteManifest, tag?: string): Promise<void> {
    const { meta, store } = this.deps;
    let manifest;
    try {
      manifest = parseManifest(remote.body, remote.mediaType);
    } catch (err) {
      throw new RegistryError('UNAVAILABLE', `the upstream registry ${up.registry} sent a manifest Berth cannot serve: ${(err as Error).message}`, { registry: up.registry, upstream: up.remote });
    }
    await meta.blobs.claim(remote.digest, remote.size);
    await store.putSmall(remote.digest, remote.body);
    const repositoryId = await meta.repositories.ensure(repository);
    await meta.manifests.put({
      ...manifestRecord(manifest, repositoryId, remote.digest, remote.size),
      ...(tag ? { tag } : {}),
      sparse: true,
      pushedBy: `proxy-cache:${up.registry}`,
    });
    this.deps.audit('proxy.fetch', up, repository, { digest: remote.digest, ...(tag ? { tag } : {}) });
    if (tag) await this.confirm(up, repository, repositoryId, tag, remote.digest);
  }

  private async confirm(up: Upstream, repository: string, repositoryId: number, tag: string, digest: string): Promise<void> {
    const now = Date.now();
    this.remember(repository, tag, digest, now, up);
    await this.deps.meta.proxyTags.mark(repositoryId, tag, digest, now).catch((err: unknown) => this.deps.log.warn({ err, tag }, 'could not record a proxy tag check'));
  }

  private remember(repository: string, tag: string, digest: string, at: number, up: Upstream): void {
    if (up.freshnessMs <= 0) return;
    const key = `${repository}\0${tag}`;
    // Bounded: the oldest entries go first (a Map iterates in insertion order).
    this.fresh.delete(key);
    this.fresh.set(key, { digest, until: at + up.freshnessMs });
    if (this.fresh.size > 50_000) this.fresh.delete(this.fresh.keys().next().value!);
  }
}
