import { randomBytes, type Hash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { newHash, type Digest } from '../domain/digest.ts';
import { RemoteError, type RemoteBlob } from '../remote/types.ts';
import type { BlobStream } from '../storage/blob-store.ts';
import { ignore } from '../storage/sink.ts';
import { DeferredStream } from './deferred-stream.ts';
import type { BlobFill, FillDeps } from './fill.ts';
import { Spool } from './spool.ts';

/** A fill's lease unless FillDeps.leaseMs says otherwise: how long a dead replica's fill blocks the others. */
const DEFAULT_LEASE_MS = 30_000;
/** Bytes waiting for the store (a PassThrough's two buffers) above which the upstream is paused. */
const STORE_QUEUE_BYTES = 4 << 20;
/** Pauses between looks at a blob another replica is fetching: short first, then this at most. */
const WAIT_FIRST_MS = 50;
const WAIT_MAX_MS = 1000;
/**
 * The repository a fill's upload session names. The session exists so that garbage collection
 * knows the upload's storage (it removes storage no session knows) and a crashed replica's upload
 * expires with it; no repository name can be this, so no client request reaches the session.
 */
export const FILL_SESSION_REPOSITORY = '<proxy-fill>';

/** A promise settled from outside; a rejection nobody awaits is not unhandled. */
class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  private res!: (value: T) => void;
  private rej!: (err: Error) => void;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.res = resolve;
      this.rej = reject;
    });
    this.promise.catch(ignore);
  }
  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.res(value);
  }
  reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rej(err);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The upstream connection failed mid-blob (reset, closed early, timed out in the client). */
function transferError(err: unknown): Error {
  if (err instanceof RemoteError) return err;
  return new RemoteError('unreachable', 'the upstream connection failed before the blob was complete', undefined, undefined, { cause: err });
}

/** One blob's fill (see BlobFills in fill.ts, which makes them). */
export class Fill implements BlobFill {
  readonly digest: string;
  private readonly startedD = new Deferred<{ size: number | undefined }>();
  private readonly doneD = new Deferred<number>();
  /** Settled once reads know where to go: the spool exists, or the fill will not make one. */
  private readonly ready = new Deferred<void>();
  /** Resolves once the fill has ended and cleaned up (never rejects). */
  finished: Promise<void> = Promise.resolve();
  private readonly leaseKey: string;
  /**
   * Who holds the lease: this replica and this fill. Per fill, so that a fill ending (releasing
   * its lease) never drops the lease of the next fill of the same digest on this replica.
   */
  private readonly leaseOwner: string;
  private readonly leaseMs: number;
  private readonly aborter = new AbortController();
  private spool: Spool | undefined;
  private body: Readable | undefined;
  private stored: number | undefined;
  private readers = 0;
  private hadReaders = false;
  /** False once the store failed: the fill then serves its readers without caching. */
  private storing = true;
  private storeError: Error | undefined;
  private storeInput: PassThrough | undefined;
  /** Why the upstream is paused: the spool or the store is behind. */
  private readonly holds = new Set<'spool' | 'store'>();
  private session: { id: string; owner: string } | undefined;
  private renewer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly wanted: Digest,
    private readonly deps: FillDeps,
    private readonly source: () => Promise<RemoteBlob>,
    private readonly ended: () => void,
  ) {
    this.digest = wanted.value;
    this.leaseKey = `blob:${wanted.value}`;
    this.leaseOwner = `${deps.owner.slice(0, 100)}/${randomBytes(9).toString('base64url')}`;
    this.leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  }

  get started(): Promise<{ size: number | undefined }> {
    return this.startedD.promise;
  }

  get done(): Promise<number> {
    return this.doneD.promise;
  }

  get received(): number {
    return this.stored ?? this.spool?.accepted ?? 0;
  }

  start(): void {
    this.finished = this.run();
  }

  read(start = 0, end?: number): BlobStream {
    const now = this.fromSpool(start, end);
    if (now) return now;
    return new DeferredStream(async () => {
      await this.ready.promise;
      return this.fromSpool(start, end) ?? (await this.fromStore(start, end));
    });
  }

  /** Stops the fill: the upstream transfer is cut and readers error with `reason`. */
  abort(reason: Error): void {
    if (!this.aborter.signal.aborted) this.aborter.abort(reason);
    this.body?.destroy(reason);
    this.spool?.fail(reason);
  }

  private fromSpool(start: number, end: number | undefined): BlobStream | undefined {
    const stream = this.spool?.reader(start, end);
    if (!stream) return undefined;
    this.readers++;
    this.hadReaders = true;
    stream.once('close', () => {
      this.readers--;
      if (this.readers === 0 && !this.storing) this.abort(this.storeError ?? new Error('the blob cannot be stored and nobody reads it any more'));
    });
    return stream;
  }

  private async fromStore(start: number, end: number | undefined): Promise<BlobStream> {
    const size = await this.done;
    if (start === 0 && end === undefined) return this.deps.store.read(this.digest);
    const last = end ?? size - 1;
    if (start > last || last >= size) throw new RangeError(`range ${start}-${last} is outside the blob's ${size} bytes`);
    return this.deps.store.read(this.digest, { start, end: last });
  }

  private async run(): Promise<void> {
    const { meta, log } = this.deps;
    const owner = this.leaseOwner;
    let holding = false;
    try {
      holding = await meta.leases.acquire(this.leaseKey, owner, this.leaseMs);
      if (!holding) holding = await this.waitForOther();
      if (holding) {
        this.renewer = setInterval(() => void this.renew(), Math.max(this.leaseMs / 3, 10));
        this.renewer.unref();
        // Another replica may have committed it just before its lease was free for us to take.
        const size = await this.deps.store.stat(this.digest);
        if (size === undefined) await this.fill();
        else this.found(size);
      }
    } catch (err) {
      const error = this.aborter.signal.aborted ? asError(this.aborter.signal.reason) : asError(err);
      this.fail(error);
      log.warn({ digest: this.digest, err: error }, 'proxy fill failed');
    } finally {
      clearInterval(this.renewer);
      this.ended();
      if (holding) await meta.leases.release(this.leaseKey, owner).catch((err: unknown) => log.warn({ digest: this.digest, err }, 'could not release a proxy fill lease'));
    }
  }

  /**
   * Waits while another replica holds the lease: true once this one took it over (the holder let
   * it lapse), false once the blob is in the store (the fill is then `found`).
   */
  private async waitForOther(): Promise<boolean> {
    const { store, meta } = this.deps;
    const owner = this.leaseOwner;
    this.deps.log.debug({ digest: this.digest }, 'proxy fill waits for another replica');
    for (let delay = WAIT_FIRST_MS; ; delay = Math.min(delay * 2, WAIT_MAX_MS)) {
      await sleep(delay, undefined, { signal: this.aborter.signal });
      const size = await store.stat(this.digest);
      if (size !== undefined) {
        this.found(size);
        return false;
      }
      if (await meta.leases.acquire(this.leaseKey, owner, this.leaseMs)) {
        this.deps.log.info({ digest: this.digest }, 'proxy fill taken over from another replica');
        return true;
      }
    }
  }

  /** The blob is in the store (committed by another replica): reads go there. */
  private found(size: number): void {
    this.stored = size;
    this.ready.resolve();
    this.startedD.resolve({ size });
    this.doneD.resolve(size);
    this.ended();
  }

  private fail(err: Error): void {
    this.spool?.fail(err);
    this.ready.resolve();
    this.startedD.reject(err);
    this.doneD.reject(err);
    // At once, not after the clean-up: the next request tries again.
    this.ended();
  }

  /** Fetches the blob from the upstream into the spool and the store; see the class comment of BlobFills. */
  private async fill(): Promise<void> {
    const { store, meta, log } = this.deps;
    const spool = await Spool.create(this.deps.spoolDir);
    this.spool = spool;
    this.ready.resolve();
    const input = new PassThrough({ highWaterMark: STORE_QUEUE_BYTES });
    // Destroyed with an error by a failing store driver at worst: never an uncaught 'error' event.
    input.on('error', ignore);
    this.storeInput = input;
    const id = `fill-${randomBytes(16).toString('base64url')}`;
    const opened = this.openUpload(id);
    const appending = opened.then((ok) => (ok ? store.appendUpload(id, 0, input) : undefined)).catch((err: unknown) => void this.storeFailed(asError(err)));
    try {
      this.aborter.signal.throwIfAborted();
      const blob = await this.upstream();
      this.body = blob.body;
      if (blob.status !== 200) {
        blob.body.destroy();
        throw new RemoteError('protocol', `the upstream answered a blob request with status ${blob.status}, not 200`, blob.status);
      }
      const expected = blob.length ?? blob.totalSize;
      spool.expect(expected);
      this.startedD.resolve({ size: expected });
      const hash = newHash(this.wanted.algorithm);
      const received = await this.pump(blob.body, spool, input, hash, expected);
      if (expected !== undefined && received !== expected) {
        throw new RemoteError('protocol', `the upstream sent ${received} bytes of a blob it announced as ${expected} bytes`);
      }
      await spool.drained();
      const actual = `${this.wanted.algorithm}:${hash.digest('hex')}`;
      if (actual !== this.digest) throw new RemoteError('protocol', 'the upstream sent content that does not match its digest');
      // Verified: readers may have the last byte now, whatever becomes of the store.
      spool.complete(received);
      input.end();
      const size = await appending;
      if (!this.storing) throw this.storeError ?? new Error('the blob could not be stored');
      if (size !== received) throw new Error(`the store holds ${size} bytes of the ${received} received`);
      // Recorded before the bytes become visible, so garbage collection never deletes them under this fill (BlobRecords).
      await meta.blobs.claim(this.digest, received);
      await store.commitUpload(id, this.digest, received);
      this.stored = received;
      this.doneD.resolve(received);
      this.ended();
      log.info({ digest: this.digest, size: received }, 'proxy fill stored a blob');
      if (this.session) await meta.uploads.delete(id).catch((err: unknown) => log.warn({ digest: this.digest, err }, 'could not remove a proxy fill session'));
      this.session = undefined;
    } catch (err) {
      const error = this.aborter.signal.aborted ? asError(this.aborter.signal.reason) : asError(err);
      this.fail(error);
      this.body?.destroy();
      input.destroy();
      await appending;
      await this.discardUpload(id);
      throw error;
    } finally {
      spool.release();
    }
  }

  /** `source()`, unless the fill is aborted first (a response arriving afterwards is dropped). */
  private upstream(): Promise<RemoteBlob> {
    const signal = this.aborter.signal;
    signal.throwIfAborted();
    return new Promise<RemoteBlob>((resolve, reject) => {
      const onAbort = () => reject(asError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      this.source().then(
        (blob) => {
          signal.removeEventListener('abort', onAbort);
          // Whatever comes next, a failure of the body is never an uncaught 'error' event (the
          // pump sees it through its own listener, or through 'close' and `errored`).
          blob.body.on('error', ignore);
          if (!signal.aborted) return resolve(blob);
          blob.body.destroy();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(asError(err));
        },
      );
    });
  }

  /**
   * Streams the upstream `body` into the spool and the store's `input`, hashing it: resolves with
   * the number of bytes once it ended, rejects when it failed, closed early, or grew past `expected`.
   */
  private pump(body: Readable, spool: Spool, input: PassThrough, hash: Hash, expected: number | undefined): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let received = 0;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('close', onClose);
        // The body may still fail once abandoned: not an uncaught 'error' event.
        body.off('error', onError);
        body.on('error', ignore);
        this.holds.clear();
        if (err) reject(err);
        else resolve(received);
      };
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        this.deps.onUpstreamBytes?.(chunk.length);
        if (expected !== undefined && received > expected) {
          return finish(new RemoteError('protocol', `the upstream sent more than the ${expected} bytes it announced`));
        }
        hash.update(chunk);
        if (!spool.write(chunk)) {
          this.hold(body, 'spool');
          spool.room().then(() => this.release(body, 'spool'), (err: Error) => finish(err));
        }
        if (this.storing && !input.write(chunk)) {
          this.hold(body, 'store');
          input.once('drain', () => this.release(body, 'store'));
        }
      };
      const onEnd = () => finish();
      const onError = (err: Error) => finish(transferError(err));
      const onClose = () => void (body.readableEnded || finish(transferError(body.errored ?? new Error('the upstream closed the connection early'))));
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      body.on('close', onClose);
      if (body.destroyed && !body.readableEnded) onClose();
    });
  }

  private hold(body: Readable, why: 'spool' | 'store'): void {
    this.holds.add(why);
    body.pause();
  }

  private release(body: Readable, why: 'spool' | 'store'): void {
    if (!this.holds.delete(why) || this.holds.size > 0) return;
    body.resume();
  }

  /** The store failed: the fill goes on for its readers without caching, or stops if it has none. */
  private storeFailed(err: Error): void {
    if (!this.storing || this.doneD.settled) return;
    this.storing = false;
    this.storeError = err;
    this.deps.log.warn({ digest: this.digest, err }, 'proxy fill cannot store the blob; serving it uncached');
    this.storeInput?.destroy();
    if (this.body) this.release(this.body, 'store');
    // A fill nobody has read yet keeps going: its first reader is likely on its way (the caller
    // awaits `started` first). Once its readers are all gone it stops (see fromSpool).
    if (this.readers === 0 && this.hadReaders) this.abort(err);
  }

  /** Creates the upload's storage and its session; false (the store failed: see storeFailed) when it could not. */
  private async openUpload(id: string): Promise<boolean> {
    const { store, meta } = this.deps;
    try {
      await store.createUpload(id);
      const owner = randomBytes(12).toString('base64url');
      await meta.uploads.create(id, FILL_SESSION_REPOSITORY, null, null, { owner, until: Date.now() + this.leaseMs });
      this.session = { id, owner };
      return true;
    } catch (err) {
      this.storeFailed(asError(err));
      return false;
    }
  }

  /** Removes the upload's storage and session after a failure (errors logged: garbage collection removes what is left). */
  private async discardUpload(id: string): Promise<void> {
    const { store, meta, log } = this.deps;
    await store.deleteUpload(id).catch((err: unknown) => log.warn({ digest: this.digest, err }, 'could not remove a failed proxy fill upload'));
    if (this.session) await meta.uploads.delete(id).catch((err: unknown) => log.warn({ digest: this.digest, err }, 'could not remove a proxy fill session'));
    this.session = undefined;
  }

  /** Extends the fill's lease and its upload session's; a lease lost (taken over) is logged and the fill goes on. */
  private async renew(): Promise<void> {
    if (this.renewing) return;
    this.renewing = true;
    const { meta, log } = this.deps;
    const owner = this.leaseOwner;
    try {
      if (!(await meta.leases.renew(this.leaseKey, owner, this.leaseMs))) log.warn({ digest: this.digest }, 'proxy fill lease was taken over by another replica');
      const session = this.session;
      if (session) await meta.uploads.renew(session.id, { owner: session.owner, until: Date.now() + this.leaseMs }, Date.now());
    } catch (err) {
      // The database is unreachable for now: the next renewal tries again before the lease lapses.
      log.warn({ digest: this.digest, err }, 'could not renew a proxy fill lease');
    } finally {
      this.renewing = false;
    }
  }
}
