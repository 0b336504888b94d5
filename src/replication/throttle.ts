// Bandwidth limit of one replication execution: a token bucket all its transfers draw from, so
// several blobs in flight share the rule's rate instead of each getting it.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** How far ahead of the rate a transfer may run after idling: a burst of this many seconds' worth. */
const BURST_SECONDS = 0.25;

/**
 * A shared byte-rate limit. `rate` bytes per second; undefined or 0: unlimited (wrap() returns the
 * stream itself). Never buffers: each chunk is held until the bucket can pay for it.
 */
export class Throttle {
  /** Bytes per second, or undefined when unlimited. */
  readonly rate: number | undefined;
  readonly #burst: number;
  /** When the bucket is next even (ms, performance.now()): it runs ahead of now by what was spent early. */
  #clock = 0;

  /** Throws RangeError when `rate` is negative or not a finite number. */
  constructor(rate?: number) {
    if (rate !== undefined && (!Number.isFinite(rate) || rate < 0)) throw new RangeError('the throttle rate must be a non-negative number of bytes per second');
    this.rate = rate ? rate : undefined;
    this.#burst = this.rate ? Math.max(1, this.rate * BURST_SECONDS) : 0;
  }

  /**
   * Waits until `bytes` may pass (immediately when unlimited), or rejects with `signal`'s reason
   * when it aborts first. Concurrent callers are served in order of their calls.
   */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!this.rate || bytes <= 0) return;
    const now = performance.now();
    // A bucket left idle refills only up to the burst: spending starts at most that far back.
    const start = Math.max(this.#clock, now - (this.#burst / this.rate) * 1000);
    this.#clock = start + (bytes / this.rate) * 1000;
    const wait = this.#clock - now - (this.#burst / this.rate) * 1000;
    if (wait > 0) await sleep(wait, undefined, signal ? { signal } : undefined);
  }

  /**
   * `stream` with its chunks paced by the bucket: a Transform holding at most one chunk. Unlimited:
   * `stream` itself. Errors and destruction travel both ways (destroying the result destroys the source).
   */
  wrap(stream: Readable, signal?: AbortSignal): Readable {
    if (!this.rate) return stream;
    const paced = new Transform({
      highWaterMark: 1,
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        this.take(chunk.length, signal).then(
          () => done(null, chunk),
          (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
        );
      },
    });
    stream.on('error', (error) => paced.destroy(error));
    paced.on('close', () => {
      if (!stream.destroyed) stream.destroy();
    });
    return stream.pipe(paced);
  }
}
