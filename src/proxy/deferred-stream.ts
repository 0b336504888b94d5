import { Readable, type Writable } from 'node:stream';
import type { BlobStream } from '../storage/blob-store.ts';

/**
 * Bytes that cannot be read yet: a BlobStream returned at once, whose source is
 * opened on first use — once a fill elsewhere committed the blob, say. When `open` rejects, the
 * stream errors with its reason.
 */
export class DeferredStream extends Readable implements BlobStream {
  private inner: BlobStream | undefined;
  private opening: Promise<BlobStream> | undefined;

  constructor(private readonly open: () => Promise<BlobStream>) {
    super({ highWaterMark: 1 << 20 });
  }

  override _read(): void {
    if (this.inner) {
      this.inner.resume();
      return;
    }
    if (this.opening) return;
    this.source().then(
      (inner) => {
        if (this.destroyed) return void inner.destroy();
        this.inner = inner;
        inner.on('data', (chunk: Buffer) => {
          if (!this.push(chunk)) inner.pause();
        });
        inner.once('end', () => this.push(null));
        inner.once('error', (err) => this.destroy(err));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.inner?.destroy();
    // Opened after the destroy: closed as soon as it arrives (see _read and sendTo).
    callback(err);
  }

  /** Opens the source, then writes it to `sink` as `BlobStream.sendTo` does; rejects when the source cannot be opened. */
  async sendTo(sink: Writable): Promise<void> {
    let inner: BlobStream | undefined;
    try {
      inner = await this.source();
      if (this.destroyed) throw this.errored ?? new Error('the reader was closed');
      this.inner = inner;
      await inner.sendTo(sink);
    } finally {
      inner?.destroy();
      this.destroy();
    }
  }

  private source(): Promise<BlobStream> {
    this.opening ??= this.open();
    return this.opening;
  }
}
