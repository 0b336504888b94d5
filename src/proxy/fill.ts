import { parseDigest } from '../domain/digest.ts';
import type { Metadata } from '../metadata/index.ts';
import type { RemoteBlob } from '../remote/types.ts';
import type { BlobStore, BlobStream } from '../storage/blob-store.ts';
import type { Logger } from 'pino';
import { Fill } from './blob-fill.ts';

export { FILL_SESSION_REPOSITORY } from './blob-fill.ts';

/** What {@link BlobFills} works with. */
export interface FillDeps {
  store: BlobStore;
  meta: Metadata;
  /** Where growing copies are kept while they arrive (created 0700 if missing; see Spool). */
  spoolDir: string;
  /** This replica's id: its fills' leases are held as `<owner>/<random>` (one token per fill). */
  owner: string;
  log: Logger;
  /** How long a fill's lease lasts unless renewed (default 30 s): a dead replica's fill is taken over after it. */
  leaseMs?: number;
  /** Told about every chunk received from an upstream (for the upstream-bytes metric). */
  onUpstreamBytes?(n: number): void;
}

/** One blob being fetched from the upstream (or waited for while another replica fetches it). */
export interface BlobFill {
  readonly digest: string;
  /**
   * Resolves once the bytes are coming: the upstream answered (with the blob's size when it said),
   * or, when another replica fetched it, once it is in the store. Rejects with the upstream's error
   * (RemoteError) or the fill's — nothing was cached.
   */
  readonly started: Promise<{ size: number | undefined }>;
  /** Bytes of the growing copy so far (all of them once the blob is in the store): ranges below it are served at once. */
  readonly received: number;
  /**
   * Resolves with the size once the blob is verified and committed to the store (its `blobs` row
   * claimed first); rejects when the transfer failed, the bytes did not match the digest or the
   * announced length (RemoteError 'protocol'), or the store failed — then nothing is in the store.
   */
  readonly done: Promise<number>;
  /**
   * The bytes `start`…`end` (inclusive; `end` defaults to the last), following the growing copy,
   * or from the store once the blob is committed there. The last byte of the blob is delivered
   * only once it is verified: when the fill fails, the stream errors (or `sendTo` rejects) short
   * of the end, so the HTTP layer cuts the connection. A range beyond the blob's size errors too.
   */
  read(start?: number, end?: number): BlobStream;
}

/**
 * Missing blobs of proxy-cache projects, fetched from their upstream once and streamed to every
 * client that asks meanwhile (see {@link BlobFill}). A fill writes each chunk, as it arrives, into
 * the store's upload API (so any driver works) and into a spool file its readers follow (the
 * growing copy, see Spool); the blob is hashed in the same pass, and committed under its digest only
 * once the bytes match it. The upstream is paused while the store or the spool is behind.
 *
 * One fill per digest at a time: in this process through a map, across replicas through a lease
 * in the database (`blob:<digest>`), renewed while the fill runs. A replica that finds the lease
 * taken waits for the holder to commit the blob (looking at the store with backoff), and takes
 * the fill over if the lease lapses first (the holder died).
 *
 * A fill goes on when its clients leave (the layer gets cached anyway). When the store fails
 * mid-way it goes on uncached for the readers it has, and stops when they are gone.
 */
export class BlobFills {
  private readonly fills = new Map<string, Fill>();
  private closed = false;

  constructor(private readonly deps: FillDeps) {}

  /**
   * The fill of `digest` in progress on this replica, or a new one whose bytes come from `source()`
   * (the upstream's whole-blob response, called at most once, and only if no other replica is
   * fetching the blob). Throws `DIGEST_INVALID` for a malformed digest, and an Error once closed.
   */
  fetch(digest: string, source: () => Promise<RemoteBlob>): BlobFill {
    const existing = this.fills.get(digest);
    if (existing) return existing;
    if (this.closed) throw new Error('proxy fills are closed');
    const fill = new Fill(parseDigest(digest), this.deps, source, () => {
      if (this.fills.get(digest) === fill) this.fills.delete(digest);
    });
    this.fills.set(digest, fill);
    fill.start();
    return fill;
  }

  /** The fill of `digest` in progress on this replica, if any. */
  current(digest: string): BlobFill | undefined {
    return this.fills.get(digest);
  }

  /** Aborts every fill in progress (their readers error) and resolves once they have cleaned up. */
  async close(): Promise<void> {
    this.closed = true;
    const running = [...this.fills.values()];
    for (const fill of running) fill.abort(new Error('the server is shutting down'));
    await Promise.all(running.map((fill) => fill.finished));
  }
}
