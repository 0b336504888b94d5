import { Readable, type Writable } from 'node:stream';
import type { BlobStream } from '../storage/blob-store.ts';
import { ignore, writeChunk } from '../storage/sink.ts';
import type { Spool } from './spool.ts';

/** Bytes per file read of a reader that fell behind: one thread-pool round trip per megabyte. */
const READ_BYTES = 1 << 20;

/** Resolves when `sink` drains or closes. */
function drainOf(sink: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

/**
 * A reader of a spool (see `Spool.reader`): a Readable, or `sendTo`. Either way it takes what is in
 * memory or the file, then waits for the next bytes.
 */
export class SpoolStream extends Readable implements BlobStream {
  private position: number;
  private cancelWait: (() => void) | undefined;
  private reading = false;
  private released = false;
  /** Ends `sendTo`'s wait for the next change (the stream was destroyed). */
  private wake: (() => void) | undefined;

  /** `end` is exclusive; undefined: the blob's end. */
  constructor(
    private readonly spool: Spool,
    start: number,
    private readonly end: number | undefined,
  ) {
    super({ highWaterMark: READ_BYTES });
    this.position = start;
  }

  override _read(): void {
    // A loop, not recursion: chunks in memory are pushed one after another while the buffer has room.
    for (;;) {
      if (this.reading || this.destroyed) return;
      let state: { limit: number; done: boolean };
      try {
        state = this.spool.state(this.position, this.end);
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      if (state.done) {
        this.push(null);
        return;
      }
      if (state.limit <= this.position) {
        // Node calls _read again after pushes made outside it: one wait at a time.
        this.cancelWait ??= this.spool.onChange(() => {
          this.cancelWait = undefined;
          this._read();
        });
        return;
      }
      const chunk = this.spool.fromMemory(this.position, state.limit);
      if (!chunk) break;
      this.position += chunk.length;
      if (!this.push(chunk)) return;
    }
    const n = Math.min(READ_BYTES, this.spool.state(this.position, this.end).limit - this.position);
    const buffer = Buffer.allocUnsafeSlow(n);
    this.reading = true;
    this.spool.readAt(buffer, n, this.position).then(
      (bytesRead) => {
        this.reading = false;
        if (this.destroyed) return;
        this.position += bytesRead;
        this.push(bytesRead === n ? buffer : buffer.subarray(0, bytesRead));
      },
      (err: Error) => {
        this.reading = false;
        this.destroy(err);
      },
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.cancelWait?.();
    this.cancelWait = undefined;
    this.wake?.();
    if (!this.released) {
      this.released = true;
      this.spool.release();
    }
    callback(err);
  }

  /**
   * Writes the bytes to `sink` without ending it, following the copy as it grows; resolves once
   * `sink` has called back for the last write. Rejects when the fill fails (the body is then
   * short: the caller cuts the connection) or when `sink` fails or closes first. Chunks still in
   * memory are written as they are; older bytes are read from the file into two buffers, each
   * reused once `sink` has called back for it.
   */
  async sendTo(sink: Writable): Promise<void> {
    const buffers: Buffer[] = [];
    const pending: (Promise<void> | undefined)[] = [];
    let turn = 0;
    // Chunks from memory are never reused: written without a promise each, counted until called back.
    let outstanding = 0;
    let failed: Error | undefined;
    let allWritten: (() => void) | undefined;
    const onWritten = (err?: Error | null) => {
      if (err) failed ??= err;
      if (--outstanding === 0) allWritten?.();
    };
    // A failed write is reported to its callback and then emitted as 'error': without a listener
    // that event would be an uncaught exception.
    sink.on('error', ignore);
    try {
      for (;;) {
        if (this.destroyed) throw this.errored ?? new Error('the reader was closed');
        if (failed) throw failed;
        if (sink.destroyed || sink.writableEnded) throw new Error('the receiver went away');
        if (sink.writableNeedDrain) {
          await drainOf(sink);
          continue;
        }
        const state = this.spool.state(this.position, this.end);
        if (state.done) break;
        if (state.limit <= this.position) {
          await this.nextChange(sink);
          continue;
        }
        const chunk = this.spool.fromMemory(this.position, state.limit);
        if (chunk) {
          this.position += chunk.length;
          outstanding++;
          sink.write(chunk, onWritten);
          continue;
        }
        // The buffer read into now was last written two turns ago: wait for that write's callback.
        const slot = turn++ % 2;
        await pending[slot];
        const buffer = (buffers[slot] ??= Buffer.allocUnsafeSlow(READ_BYTES));
        const bytesRead = await this.spool.readAt(buffer, Math.min(buffer.length, state.limit - this.position), this.position);
        this.position += bytesRead;
        const written = writeChunk(sink, buffer.subarray(0, bytesRead));
        // Awaited two turns later or at the end; until then a failure must not count as unhandled.
        written.catch(ignore);
        pending[slot] = written;
      }
      await Promise.all(pending);
      if (outstanding > 0) {
        await new Promise<void>((resolve) => {
          const done = () => {
            sink.off('close', done);
            resolve();
          };
          allWritten = done;
          sink.once('close', done);
        });
        if (outstanding > 0) failed ??= new Error('the receiver went away');
      }
      if (failed) throw failed;
    } finally {
      // Whatever happened, the buffer of a write still pending is not touched again.
      await Promise.all(pending.map((p) => p?.catch(ignore)));
      this.destroy();
    }
  }

  /** Resolves at the spool's next change, or when `sink` closes or this stream is destroyed (a receiver gone need not wait for the upstream). */
  private nextChange(sink: Writable): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        cancel();
        sink.off('close', done);
        this.wake = undefined;
        resolve();
      };
      const cancel = this.spool.onChange(done);
      sink.once('close', done);
      this.wake = done;
    });
  }
}
