import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.ts';
import { parseDigest } from '../domain/digest.ts';
import type { BlobStore, ByteRange } from '../storage/blob-store.ts';
import type { BlobService } from '../registry/blobs.ts';
import type { BlobFills } from './fill.ts';
import { upstreamError } from './errors.ts';
import type { ProxyMetrics } from './metrics.ts';
import type { Upstream } from './upstream.ts';

/** A blob the proxy serves that the repository did not have: its size (when known) and its bytes. */
export interface ProxiedBlob {
  digest: string;
  /** The whole blob's size; undefined when the upstream did not say (the reply is then chunked). */
  size: number | undefined;
  /** The range served, when one was asked for and the size is known. */
  range?: ByteRange;
  /** Absent for HEAD. */
  stream?: Readable;
}

/** What the proxy's blob side needs. */
export interface ProxyBlobDeps {
  store: BlobStore;
  /** Links a cached blob into the repository that asked for it (charging its project). */
  blobs: BlobService;
  fills: BlobFills;
  metrics: ProxyMetrics;
  log: Logger;
}

/**
 * Blobs of proxy-cache projects that the repository does not have yet. Another repository's
 * copy is linked (after the upstream confirms it has the blob: a digest is not a permission);
 * otherwise the blob is fetched once, streamed to every client as it arrives and cached once
 * verified (BlobFills); a range the growing copy has not reached is passed to the upstream.
 */
export class ProxyBlobs {
  /** `repository\0digest` → the link that follows a fill, from the fill's start until the blob is linked. */
  private readonly links = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: ProxyBlobDeps) {}

  /**
   * Serves `digest` for `repository` (GET, or HEAD with `head`), or returns undefined when the blob
   * is now linked into the repository and the caller serves it as any other. `rangeOf` turns the
   * request's Range header into a range once the size is known (throwing RANGE_INVALID).
   */
  async serve(up: Upstream, repository: string, digestParam: string, head: boolean, rangeOf: (size: number) => ByteRange | undefined): Promise<ProxiedBlob | undefined> {
    const digest = parseDigest(digestParam).value;
    const { metrics } = this.deps;
    try {
      // Being fetched (its bytes may already be visible in the store while the fill commits): join it.
      const running = this.deps.fills.current(digest);
      if (running) return head ? { digest, size: (await running.started).size } : await this.fetch(up, repository, digest, rangeOf);
      // Fetched and stored, but not linked into the repository yet: that takes a moment, not a HEAD upstream.
      const linking = this.links.get(`${repository}\0${digest}`);
      if (linking) {
        await linking;
        return undefined;
      }
      const stored = await this.deps.store.stat(digest);
      if (stored !== undefined) {
        // Linked meanwhile (a fill's link that finished between the caller's lookup and ours): served as any other.
        if (await this.linked(repository, digest)) return undefined;
        // Cached for another repository: the upstream must have it in this one too.
        metrics.upstreamRequests.inc({ kind: 'blob-head' });
        const size = await up.client.blobExists(up.remote, digest);
        if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', `blob unknown to the upstream registry ${up.registry}`, { digest });
        if (await this.deps.blobs.link(repository, digest, stored)) {
          metrics.requests.inc({ kind: 'blob', result: 'hit' });
          return undefined;
        }
      }
      if (head) {
        metrics.upstreamRequests.inc({ kind: 'blob-head' });
        const size = await up.client.blobExists(up.remote, digest);
        if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', `blob unknown to the upstream registry ${up.registry}`, { digest });
        return { digest, size };
      }
      return await this.fetch(up, repository, digest, rangeOf);
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      metrics.requests.inc({ kind: 'blob', result: 'error' });
      throw upstreamError(err, up, 'blob');
    }
  }

  private async linked(repository: string, digest: string): Promise<boolean> {
    try {
      await this.deps.blobs.stat(repository, digest);
      return true;
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'BLOB_UNKNOWN') return false;
      throw err;
    }
  }

  private async fetch(up: Upstream, repository: string, digest: string, rangeOf: (size: number) => ByteRange | undefined): Promise<ProxiedBlob> {
    const { fills, metrics, log } = this.deps;
    const running = fills.current(digest);
    const fill =
      running ??
      fills.fetch(digest, () => {
        metrics.upstreamRequests.inc({ kind: 'blob' });
        return up.client.getBlob(up.remote, digest);
      });
    // However this request ends, the blob is linked into this repository once it is cached.
    const key = `${repository}\0${digest}`;
    if (!this.links.has(key)) {
      const linked = fill.done
        .then(
          (size) => this.deps.blobs.link(repository, digest, size).catch((err: unknown) => log.warn({ err, repository, digest }, 'could not link a cached blob into its repository')),
          () => undefined,
        )
        .finally(() => this.links.delete(key));
      this.links.set(key, linked);
    }
    const { size } = await fill.started;
    metrics.requests.inc({ kind: 'blob', result: 'miss' });
    const range = size === undefined ? undefined : rangeOf(size);
    if (!range) return { digest, size, stream: fill.read() };
    if (fill.received > range.start || range.start === 0) return { digest, size, range, stream: fill.read(range.start, range.end) };
    // The growing copy is far from the range: ask the upstream for it alone.
    metrics.upstreamRequests.inc({ kind: 'blob-range' });
    const part = await up.client.getBlob(up.remote, digest, { start: range.start, end: range.end });
    if (part.status !== 206) {
      part.body.destroy();
      return { digest, size, range, stream: fill.read(range.start, range.end) };
    }
    part.body.on('data', (chunk: Buffer) => metrics.upstreamBytes.inc(chunk.length));
    return { digest, size, range, stream: part.body };
  }
}
