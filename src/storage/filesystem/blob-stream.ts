import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import type { BlobStream } from '../blob-store.ts';
import { ignore, writeChunk } from '../sink.ts';

/** Bytes per read: one thread-pool round trip per megabyte. */
const CHUNK_BYTES = 1 << 20;

/**
 * A committed blob (or a range of it) read from an open file. As a Readable it hands out a fresh
 * buffer per read; `sendTo` instead alternates between two buffers, reading into one while the
 * other is being written, and reuses each once the sink has called back for it. Fresh megabyte
 * buffers are what made pulls slow: each one is new memory to fault in and, later, garbage to
 * collect — sometimes a third of the CPU of a pull went to that.
 */
export class FileBlobStream extends Readable implements BlobStream {
  private position: number;
  private closing: Promise<void> | undefined;

  /** `end` is exclusive. The stream owns `handle` and closes it when done, failed or destroyed. */
  constructor(
    private readonly handle: FileHandle,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: CHUNK_BYTES });
    this.position = start;
  }

  override _read(): void {
    const n = Math.min(CHUNK_BYTES, this.end - this.position);
    if (n <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafeSlow(n);
    this.handle.read(buffer, 0, n, this.position).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) return this.destroy(new Error('blob file ended early'));
        this.position += bytesRead;
        this.push(bytesRead === n ? buffer : buffer.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.closeHandle().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }

  async sendTo(sink: Writable): Promise<void> {
    const size = Math.min(CHUNK_BYTES, Math.max(this.end - this.position, 1));
    const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
    let turn = 0;
    let writing: Promise<void> | undefined;
    // A failed write is reported to its callback and then emitted as 'error' (an HTTP response does
    // both): without a listener that event would be an uncaught exception.
    sink.on('error', ignore);
    try {
      while (this.position < this.end) {
        // The buffer read into now was last written two turns ago, and that write has called back.
        const buffer = buffers[turn++ % 2]!;
        const n = Math.min(buffer.length, this.end - this.position);
        const { bytesRead } = await this.handle.read(buffer, 0, n, this.position);
        if (bytesRead === 0) throw new Error('blob file ended early');
        this.position += bytesRead;
        await writing;
        writing = writeChunk(sink, buffer.subarray(0, bytesRead));
        // Awaited on the next turn; until then a failure must not count as unhandled.
        writing.catch(ignore);
      }
      await writing;
    } finally {
      // Whatever happened, the buffer of a write still pending is not touched again.
      await writing?.catch(() => undefined);
      this.destroy();
    }
  }

  private closeHandle(): Promise<void> {
    this.closing ??= this.handle.close();
    return this.closing;
  }
}

