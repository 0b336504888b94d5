import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { AppendOptions } from '../blob-store.ts';

/**
 * Writes are gathered into batches of about this size, one `pwritev` each: a thread-pool round trip
 * per 64 KiB socket read costs main-thread time and wakes a pool thread 16 times a megabyte.
 */
const BATCH_BYTES = 2 << 20;
/**
 * Arrived-but-unwritten bytes above which the source is paused (TCP then slows the client), so a
 * disk slower than the network never makes the upload pile up in memory: at most this much waits
 * while one batch is being written.
 */
const QUEUE_LIMIT = 2 * BATCH_BYTES;
/**
 * Unflushed bytes after which a background `fdatasync` starts (one at a time), so the disk writes
 * while the rest still arrives and the flush that acknowledges the blob has only the tail left.
 * Measured on ext4 with 256 MiB arriving at 450 MB/s: that flush took about 30 ms at 16 MiB,
 * 70 ms at 64 MiB and 285 ms without background flushes, and the appends were no slower.
 */
const FLUSH_EVERY = 16 << 20;

/**
 * An open upload file: its handle, how many bytes it holds, and the background flush. Appends go to
 * explicit positions, never truncate, and one runs at a time; the driver owns the file while the
 * handle is open (no other process writes uploads/ of a running Berth).
 */
export class UploadFile {
  /** Bytes in the file: every append's bytes below this have been written (not yet flushed). */
  size: number;
  /** An append is running; another one is refused rather than interleaved. */
  busy = false;
  /** When the handle was last used (the driver closes idle ones). */
  lastUsed = Date.now();
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  /**
   * A failed background flush. Linux reports a writeback error to each descriptor once, so the
   * final fsync could succeed after losing data: the error is kept and fails the commit instead.
   */
  private flushError: unknown;

  constructor(
    readonly handle: FileHandle,
    size: number,
  ) {
    this.size = size;
  }

  /**
   * Streams `source` to the end of the file: each chunk goes to `onChunk` as it arrives, then into a
   * batch; one batch is written while the next gathers, and the source is paused while too much
   * waits. Resolves once every byte is written. When the source fails (a client gone mid-body) or
   * `signal` aborts, what had arrived is still written, then it rejects with that failure; on a
   * write error it rejects at once and stops reading (the source is left paused, unconsumed).
   */
  append(source: Readable, options: AppendOptions = {}): Promise<void> {
    const { signal, onChunk } = options;
    return new Promise<void>((resolve, reject) => {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let writing = false;
      let paused = false;
      let done = false; // the source ended or failed: nothing more will be taken from it
      let failure: unknown; // why the source stopped early
      let writeError: unknown;
      let settled = false;

      const detach = () => {
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
        source.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const settle = () => {
        if (settled || writing) return;
        if (writeError !== undefined) {
          settled = true;
          detach();
          // The source is left unconsumed for the caller's error response; a later failure of it
          // must not become an unhandled 'error' event.
          source.on('error', () => undefined);
          source.pause();
          reject(writeError);
        } else if (done && pendingBytes === 0) {
          settled = true;
          detach();
          if (failure !== undefined) reject(failure);
          else resolve();
        }
      };
      const writeBatch = () => {
        writing = true;
        const batch = pending;
        const bytes = pendingBytes;
        pending = [];
        pendingBytes = 0;
        if (paused && !done) {
          paused = false;
          source.resume();
        }
        this.writeAll(batch, bytes).then(
          () => {
            writing = false;
            if (writeError === undefined && (pendingBytes >= BATCH_BYTES || (done && pendingBytes > 0))) writeBatch();
            else settle();
          },
          (err: unknown) => {
            writing = false;
            writeError = err;
            settle();
          },
        );
      };
      const stop = (reason: unknown) => {
        if (done) return;
        done = true;
        failure = reason;
        source.off('data', onData);
        if (!writing && pendingBytes > 0) writeBatch();
        else settle();
      };
      const onData = (chunk: Uint8Array | string) => {
        if (done || writeError !== undefined) return;
        const buffer = asBuffer(chunk);
        try {
          onChunk?.(buffer);
        } catch (err) {
          writeError = err;
          source.pause();
          settle();
          return;
        }
        pending.push(buffer);
        pendingBytes += buffer.length;
        if (!writing && pendingBytes >= BATCH_BYTES) writeBatch();
        else if (pendingBytes >= QUEUE_LIMIT && !paused) {
          paused = true;
          source.pause();
        }
      };
      const onEnd = () => {
        if (done) return;
        done = true;
        if (!writing && pendingBytes > 0) writeBatch();
        else settle();
      };
      const onError = (err: Error) => stop(err);
      // 'close' follows 'end' on every request: build the error (and its stack) only when it counts.
      const onClose = () => void (done || stop(prematureClose()));
      const onAbort = () => stop(signal?.reason ?? new Error('append aborted'));

      if (signal?.aborted) return void reject(signal.reason ?? new Error('append aborted'));
      // A source that failed before we got to it (a client gone while the request waited its turn).
      if (source.destroyed && !source.readableEnded) return void reject(source.errored ?? prematureClose());
      if (source.readableEnded) return void resolve();
      source.on('data', onData);
      source.on('end', onEnd);
      source.on('error', onError);
      source.on('close', onClose);
      signal?.addEventListener('abort', onAbort);
      if (source.isPaused()) source.resume();
    });
  }

  /** Makes every written byte durable: waits for a background flush (and fails if it did), then fsync. */
  async sync(): Promise<void> {
    await this.flushing;
    if (this.flushError !== undefined) throw this.flushError;
    await this.handle.sync();
  }

  /** Closes the handle once a background flush has finished. */
  async close(): Promise<void> {
    await this.flushing;
    await this.handle.close();
  }

  /** Writes all of `buffers` at the end of the file; `size` counts each byte once it is written. */
  private async writeAll(buffers: Buffer[], bytes: number): Promise<void> {
    let rest = buffers;
    let left = bytes;
    while (left > 0) {
      const { bytesWritten } = await this.handle.writev(rest, this.size);
      this.size += bytesWritten;
      left -= bytesWritten;
      this.unflushed += bytesWritten;
      if (left > 0) {
        if (bytesWritten === 0) throw new Error('write made no progress');
        rest = skip(rest, bytesWritten);
      }
    }
    this.maybeFlush();
  }

  private maybeFlush(): void {
    if (this.flushing || this.unflushed < FLUSH_EVERY) return;
    this.unflushed = 0;
    this.flushing = this.handle.datasync().then(
      () => {
        this.flushing = undefined;
      },
      (err: unknown) => {
        this.flushError ??= err;
        this.flushing = undefined;
      },
    );
  }
}

/** `buffers` without their first `count` bytes (after a short write). */
function skip(buffers: Buffer[], count: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && count >= buffers[i]!.length) count -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (count > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(count);
  return rest;
}

/** A chunk as a Buffer without copying it (object-mode sources may yield plain Uint8Arrays). */
function asBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function prematureClose(): Error {
  return Object.assign(new Error('the stream closed before it ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
