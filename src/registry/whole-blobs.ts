import type { Readable } from 'node:stream';
import { RegistryError } from '../domain/errors.ts';

// Small whole blobs (see `UploadService`): how many bytes of them requests may hold in memory, and
// reading one request body into memory without destroying it when it fails.

/** Which whole blobs arriving in one request are read into memory (see `UploadService`). */
export interface SmallBlobLimits {
  /** Largest such blob, bytes, by its declared Content-Length. */
  maxSize: number;
  /**
   * Bytes all requests of the process may hold at once: beyond it a blob is streamed, so many
   * concurrent pushes cannot take more memory than this.
   */
  budget: number;
}

/**
 * 1 MiB covers configs and most small layers (the pushes where per-request costs dominate);
 * 32 MiB is what 32 concurrent such pushes take, a small share of a server's memory.
 */
export const DEFAULT_SMALL_BLOBS: SmallBlobLimits = { maxSize: 1024 * 1024, budget: 32 * 1024 * 1024 };

/** Memory that small whole blobs hold across all requests of a process, within `SmallBlobLimits`. */
export class SmallBlobBudget {
  /** Bytes reserved now. */
  private held = 0;

  constructor(private readonly limits: SmallBlobLimits) {}

  /**
   * Reserves room for a blob whose declared length is `contentLength`: returns that length, to
   * `release` once the blob's buffer is dropped, or undefined when it is unknown (chunked
   * transfer), too large, or the budget has no room — the caller then streams it.
   */
  reserve(contentLength: number | undefined): number | undefined {
    if (contentLength === undefined || contentLength > this.limits.maxSize || this.held + contentLength > this.limits.budget) return undefined;
    this.held += contentLength;
    return contentLength;
  }

  release(reserved: number): void {
    this.held -= reserved;
  }
}

/**
 * Reads a request body of `length` bytes (its Content-Length) into one buffer. Rejects when the body
 * fails or closes early, or is longer (a stream that is not an HTTP request's: Node's parser never
 * delivers more than Content-Length). A body left unread is paused, not destroyed: the caller's
 * error response still goes out on its connection.
 */
export function readWhole(body: Readable, length: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const data = Buffer.allocUnsafe(length);
    let received = 0;
    const finish = (err?: unknown) => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      if (err === undefined) return resolve(data);
      // A later failure of the unread rest must not go unhandled.
      body.on('error', () => undefined);
      body.pause();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      if (received + chunk.length > length) return finish(new RegistryError('SIZE_INVALID', 'body longer than its Content-Length', { field: 'Content-Length', declared: length }));
      chunk.copy(data, received);
      received += chunk.length;
    };
    const onEnd = () => finish(received === length ? undefined : new RegistryError('SIZE_INVALID', 'body shorter than its Content-Length', { field: 'Content-Length', received, declared: length }));
    const onError = (err: Error) => finish(err);
    // 'close' follows 'end' on every request: it only counts when the body had not ended.
    const onClose = () => void (body.readableEnded || finish(Object.assign(new Error('the request body closed before it ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
    if (body.readableEnded) return onEnd();
    if (body.destroyed) return finish(body.errored ?? Object.assign(new Error('the request body closed before it ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.resume();
  });
}
