import type { Writable } from 'node:stream';

/**
 * Writes `chunk` to `sink` and resolves once `sink` is done with it (so the caller may reuse the
 * buffer); rejects if `sink` closes or fails first. What every driver's `BlobStream.sendTo` is built on.
 */
export function writeChunk(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (sink.destroyed || sink.writableEnded) return reject(new Error('the receiver went away'));
    const onClose = () => done(new Error('the receiver went away'));
    const done = (err?: Error | null) => {
      sink.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    sink.once('close', onClose);
    sink.write(chunk, done);
  });
}

/** For errors already handled elsewhere (a failure seen through another path). */
export function ignore(): void {}
