import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';

/** A pass-through stream that feeds every byte into a hash and counts them: one pass, no copies. */
export class HashTap extends Transform {
  bytes = 0;

  constructor(private readonly hash: Hash) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
