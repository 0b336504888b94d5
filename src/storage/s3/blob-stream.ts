import { Readable, type Writable } from 'node:stream';
import type { BlobStream } from '../blob-store.ts';
import { ignore, writeChunk } from '../sink.ts';

/** Opens bytes `start` to the blob's end (exclusive) of the same object version again. */
export type Reopen = (start: number) => Promise<Readable>;

/**
 * A committed blob (or a range of it) streamed from a GetObject response. The SDK retries a request
 * until its response starts; a response body that breaks later (a reset connection, a socket idle
 * while a slow receiver held it back) is resumed here with a ranged GET of the same object version
 * (If-Match on its ETag) from the first byte not yet passed on, up to `attempts` times in all.
 */
export class S3BlobStream extends Readable implements BlobStream {
  private body: Readable | undefined;
  private position: number;
  private attemptsLeft: number;
  private reopening = false;

  /** `end` is exclusive: the byte after the last one this stream yields. */
  constructor(
    body: Readable,
    start: number,
    private readonly end: number,
    private readonly reopen: Reopen,
    attempts: number,
  ) {
    // Bodies hand out fresh buffers of socket-read size; a few of them queued is enough.
    super({ highWaterMark: 1 << 20 });
    this.position = start;
    this.attemptsLeft = attempts - 1;
    this.attach(body);
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const body = this.body;
    this.body = undefined;
    body?.destroy();
    callback(err);
  }

  /**
   * Writes the bytes to `sink` with at most one write awaiting its callback while the next chunk
   * is read; each chunk is a fresh buffer, never reused. Leaves `sink` open.
   */
  async sendTo(sink: Writable): Promise<void> {
    let writing: Promise<void> | undefined;
    // A failed write is reported to its callback and then emitted as 'error' (an HTTP response does
    // both): without a listener that event would be an uncaught exception.
    sink.on('error', ignore);
    try {
      for await (const chunk of this) {
        await writing;
        writing = writeChunk(sink, chunk as Buffer);
        writing.catch(ignore);
      }
      await writing;
    } finally {
      await writing?.catch(ignore);
      this.destroy();
    }
  }

  private attach(body: Readable): void {
    this.body = body;
    body.on('data', (chunk: Buffer) => {
      if (this.body !== body) return;
      const room = this.end - this.position;
      // A server sending more than asked for is cut off at the range's end.
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.position += part.length;
      if (part.length > 0 && !this.push(part)) body.pause();
    });
    body.once('end', () => {
      if (this.body !== body) return;
      if (this.position >= this.end) this.push(null);
      else this.carryOn(new Error(`the object ended ${this.end - this.position} bytes early`));
    });
    body.once('error', (err: Error) => {
      if (this.body === body) this.carryOn(err);
    });
  }

  /** Carries on from `position` after the body failed, or fails the stream when attempts are used up. */
  private carryOn(cause: Error): void {
    const old = this.body;
    this.body = undefined;
    old?.destroy();
    if (this.destroyed || this.reopening) return;
    if (this.attemptsLeft <= 0) return void this.destroy(cause);
    this.attemptsLeft--;
    this.reopening = true;
    this.reopen(this.position).then(
      (body) => {
        this.reopening = false;
        if (this.destroyed) return void body.destroy();
        this.attach(body);
      },
      (err: Error) => {
        this.reopening = false;
        this.destroy(err);
      },
    );
  }
}

