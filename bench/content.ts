// Blob contents for the push figures: every pushed blob must be new to the registry (both skip or
// shortcut blobs they already hold), yet the client must not spend the run hashing. Each blob is a
// fixed random body with a unique 16-byte tail, so its digest is one hash state copy plus 16 bytes.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import type { Body } from './http.ts';

const TAIL = 16;

/** A reusable in-memory blob of `size` bytes whose last 16 bytes change on every next(). */
export class UniqueBlob {
  readonly bytes: Buffer;
  readonly #prefix: Hash;

  constructor(size: number) {
    if (size <= TAIL) throw new Error(`blob too small: ${size}`);
    this.bytes = randomBytes(size);
    this.#prefix = createHash('sha256').update(this.bytes.subarray(0, size - TAIL));
  }

  /** Makes the buffer a new blob (overwriting the tail in place) and returns its digest. */
  next(): string {
    const tail = randomBytes(TAIL);
    tail.copy(this.bytes, this.bytes.length - TAIL);
    return `sha256:${this.#prefix.copy().update(tail).digest('hex')}`;
  }
}

/**
 * A large blob produced on the fly — one random 8 MiB block repeated, then a unique tail — so a
 * 2 GiB upload needs no 2 GiB buffer in the client.
 */
export class StreamedBlob {
  readonly #block = randomBytes(8 << 20);
  readonly #prefix: Hash;

  constructor(readonly size: number) {
    if (size <= TAIL) throw new Error(`blob too small: ${size}`);
    this.#prefix = createHash('sha256');
    for (const chunk of this.chunks(Buffer.alloc(0), size - TAIL)) this.#prefix.update(chunk);
  }

  private *chunks(tail: Buffer, size: number): Generator<Buffer> {
    for (let sent = 0; sent < size; sent += this.#block.length) yield this.#block.subarray(0, Math.min(this.#block.length, size - sent));
    if (tail.length) yield tail;
  }

  /** A new blob: its body (generated when sent) and its digest. */
  next(): { body: Body; digest: string } {
    const tail = randomBytes(TAIL);
    const size = this.size;
    const digest = `sha256:${this.#prefix.copy().update(tail).digest('hex')}`;
    return { body: { length: size, chunks: () => this.chunks(tail, size - TAIL) }, digest };
  }
}
