// Copying one artifact between two replication ends: blobs first (skipped when the destination
// has them, mounted when another of its repositories does, else streamed from the source in
// parallel and resumably), then the manifests bottom-up (children of an index before it), then the
// referrers (signatures, SBOMs) of what was copied. Manifest bytes are put exactly as read, so
// digests never change; the destination verifies every blob's digest as it commits it.
import { Transform, type Readable } from 'node:stream';
import type { Descriptor } from '../domain/manifest.ts';
import { parseManifest } from '../domain/manifest.ts';
import { mapLimit } from '../domain/map-limit.ts';
import type { Throttle } from './throttle.ts';
import type { ManifestBody, ReplicationSide } from './types.ts';

/** Referrers of referrers are followed this deep (a signature of an SBOM of an image). */
const REFERRER_DEPTH = 3;
/** Remembered destination blobs per execution; past this, the oldest are forgotten (more HEADs, nothing wrong). */
const MAX_KNOWN = 500_000;

/**
 * What one execution learned about its destination: which repository holds which blob. Later
 * artifacts skip the HEAD for a blob their repository is known to hold, and mount one that another
 * repository holds instead of uploading it. Also keeps one transfer per digest in flight at a time.
 */
export class DestinationBlobs {
  /** digest → repositories known to hold it (most recent last). */
  readonly #holders = new Map<string, string[]>();
  readonly #inFlight = new Map<string, Promise<unknown>>();

  /** True when `repository` at the destination is known to hold `digest`. */
  has(repository: string, digest: string): boolean {
    return this.#holders.get(digest)?.includes(repository) ?? false;
  }

  /** A repository other than `repository` known to hold `digest` (a mount source), or undefined. */
  holder(digest: string, repository: string): string | undefined {
    const list = this.#holders.get(digest) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (list[i] !== repository) return list[i];
    return undefined;
  }

  /** Records that `repository` holds `digest`. */
  add(repository: string, digest: string): void {
    const list = this.#holders.get(digest);
    if (list) {
      if (!list.includes(repository)) list.push(repository);
      return;
    }
    if (this.#holders.size >= MAX_KNOWN) this.#holders.delete(this.#holders.keys().next().value!);
    this.#holders.set(digest, [repository]);
  }

  /** Forgets `repository` as a holder of `digest` (a mount from it failed). */
  forget(repository: string, digest: string): void {
    const list = this.#holders.get(digest);
    if (list) this.#holders.set(digest, list.filter((r) => r !== repository));
  }

  /** Runs `task` for `digest` after any transfer of the same digest in flight has settled. */
  async serial<T>(digest: string, task: () => Promise<T>): Promise<T> {
    for (let pending = this.#inFlight.get(digest); pending; pending = this.#inFlight.get(digest)) await pending.catch(() => undefined);
    const running = task();
    this.#inFlight.set(digest, running);
    try {
      return await running;
    } finally {
      if (this.#inFlight.get(digest) === running) this.#inFlight.delete(digest);
    }
  }
}

/** How to copy. */
export interface CopyOptions {
  source: ReplicationSide;
  destination: ReplicationSide;
  /** Blobs in flight at once (at least 1). */
  concurrency: number;
  /** The execution's bandwidth limit, shared by all its transfers. */
  throttle: Throttle;
  /** What the execution learned about the destination's blobs. */
  known: DestinationBlobs;
  /** Aborts the copy (cancel, shutdown): it rejects with the signal's reason soon after. */
  signal: AbortSignal;
  /** Hears of blob bytes as they are read from the source (resent bytes included). */
  onBytes?: (n: number) => void;
}

/** What a copy did. */
export interface CopyResult {
  /** The copied manifest's digest (the same at both ends) and media type. */
  digest: string;
  mediaType: string;
  /** Manifests stored at the destination: the artifact, its children, its referrers. */
  manifestsPut: number;
  blobsCopied: number;
  blobsMounted: number;
  /** Blobs the destination already had. */
  blobsSkipped: number;
  /** Bytes sent to the destination (blob bodies, resent bytes included, and manifests). */
  bytes: number;
  /** Referrers copied (those the destination already had are not counted). */
  referrers: number;
}

interface Copy {
  options: CopyOptions;
  result: CopyResult;
  fromRepo: string;
  toRepo: string;
  /** Manifests copied or found present in this copy (by digest), so none is handled twice. */
  done: Set<string>;
}

/**
 * Copies `from.reference` of `from.repository` at the source to `to.repository` at the
 * destination, under `to.tag` (or by digest when no tag), with its children and referrers. When
 * the destination already has the manifest under that reference, nothing but its referrers is
 * checked. Rejects with what the ends throw (RemoteError, RegistryError: the caller retries the
 * transient ones), with a RangeError for a concurrency below 1 or a source blob whose size differs
 * from its descriptor, or with the signal's reason once aborted. A source manifest that is not a
 * valid manifest is a RegistryError (MANIFEST_INVALID).
 */
export async function copyArtifact(options: CopyOptions, from: { repository: string; reference: string }, to: { repository: string; tag?: string }): Promise<CopyResult> {
  if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) throw new RangeError('copy concurrency must be a positive integer');
  options.signal.throwIfAborted();
  const top = await options.source.manifest(from.repository, from.reference, options.signal);
  const result: CopyResult = { digest: top.digest, mediaType: top.mediaType, manifestsPut: 0, blobsCopied: 0, blobsMounted: 0, blobsSkipped: 0, bytes: 0, referrers: 0 };
  const copy: Copy = { options, result, fromRepo: from.repository, toRepo: to.repository, done: new Set() };
  const reference = to.tag ?? top.digest;
  const present = await options.destination.head(to.repository, reference, options.signal);
  const children = childrenOf(top);
  if (present?.digest !== top.digest) {
    await copyTree(copy, top, reference, children);
  } else {
    copy.done.add(top.digest);
  }
  await copyReferrers(copy, [top.digest, ...children.map((c) => c.digest)], REFERRER_DEPTH);
  return result;
}

function childrenOf(manifest: ManifestBody): Descriptor[] {
  return parseManifest(manifest.body, manifest.mediaType).manifests;
}

/** Copies `manifest` (its blobs or its children first) and puts it under `reference`. */
async function copyTree(copy: Copy, manifest: ManifestBody, reference: string, children?: Descriptor[]): Promise<void> {
  const { source, destination, signal } = copy.options;
  const parsed = parseManifest(manifest.body, manifest.mediaType);
  for (const child of children ?? parsed.manifests) {
    if (copy.done.has(child.digest)) continue;
    signal.throwIfAborted();
    // A child the destination has (by digest) comes with everything it references.
    if ((await destination.head(copy.toRepo, child.digest, signal))?.digest === child.digest) {
      copy.done.add(child.digest);
      continue;
    }
    const body = await source.manifest(copy.fromRepo, child.digest, signal);
    await copyTree(copy, body, child.digest);
  }
  await mapLimit(unique(parsed.blobs), copy.options.concurrency, (blob) => copyBlob(copy, blob));
  signal.throwIfAborted();
  await destination.putManifest(copy.toRepo, reference, manifest.body, manifest.mediaType, signal);
  copy.done.add(manifest.digest);
  copy.result.manifestsPut++;
  copy.result.bytes += manifest.body.length;
}

/** Copies the referrers of `subjects` the destination lacks (and theirs, `depth` levels down). */
async function copyReferrers(copy: Copy, subjects: string[], depth: number): Promise<void> {
  const { source, destination, signal } = copy.options;
  const next: string[] = [];
  for (const subject of subjects) {
    for (const referrer of await source.referrers(copy.fromRepo, subject, signal)) {
      if (copy.done.has(referrer.digest)) continue;
      copy.done.add(referrer.digest);
      next.push(referrer.digest);
      if ((await destination.head(copy.toRepo, referrer.digest, signal))?.digest === referrer.digest) continue;
      const body = await source.manifest(copy.fromRepo, referrer.digest, signal);
      await copyTree(copy, body, referrer.digest);
      copy.result.referrers++;
    }
  }
  if (next.length > 0 && depth > 1) await copyReferrers(copy, next, depth - 1);
}

/** One blob: skipped when present, mounted when another destination repository holds it, else streamed. */
async function copyBlob(copy: Copy, blob: Descriptor): Promise<void> {
  const { source, destination, known, signal, throttle, onBytes } = copy.options;
  const { toRepo, fromRepo, result } = copy;
  await known.serial(blob.digest, async () => {
    signal.throwIfAborted();
    if (known.has(toRepo, blob.digest)) {
      result.blobsSkipped++;
      return;
    }
    if ((await destination.blobSize(toRepo, blob.digest, signal)) !== undefined) {
      known.add(toRepo, blob.digest);
      result.blobsSkipped++;
      return;
    }
    for (let holder = known.holder(blob.digest, toRepo); holder; holder = known.holder(blob.digest, toRepo)) {
      if (await destination.mountBlob(toRepo, blob.digest, holder, signal)) {
        known.add(toRepo, blob.digest);
        result.blobsMounted++;
        return;
      }
      known.forget(holder, blob.digest);
    }
    const open = async (offset: number): Promise<Readable> => {
      const { stream, size } = await source.openBlob(fromRepo, blob.digest, offset, signal);
      if (size !== blob.size) {
        stream.destroy();
        throw new RangeError(`${source.name}: blob ${fromRepo}@${blob.digest} has ${size} bytes, its descriptor says ${blob.size}`);
      }
      return throttle.wrap(onBytes ? counted(stream, onBytes) : stream, signal);
    };
    result.bytes += await destination.pushBlob(toRepo, blob.digest, blob.size, open, signal);
    known.add(toRepo, blob.digest);
    result.blobsCopied++;
  });
}

function unique(blobs: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return blobs.filter((b) => !seen.has(b.digest) && seen.add(b.digest));
}

/** `stream` reporting each chunk's length to `onBytes` as it passes. */
function counted(stream: Readable, onBytes: (n: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  stream.on('error', (error) => counter.destroy(error));
  counter.on('close', () => {
    if (!stream.destroyed) stream.destroy();
  });
  return stream.pipe(counter);
}
