// Pushing one blob to another registry: an optional cross-repository mount, then an upload session
// finished by one PUT (bodies up to the chunk size) or filled by PATCH chunks and closed by an
// empty PUT. A stream body is written exactly `size` bytes at a time, never buffered whole.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { discard, resolveLocation, type Call, type Transport } from './http.ts';
import { v2Path } from './paths.ts';
import type { RemoteError } from './types.ts';

/** What an upload needs from the client: authenticated sends for its scopes, and the transport. */
export interface UploadContext {
  send(call: Call): Promise<IncomingMessage>;
  transport: Transport;
  base: URL;
  chunkBytes: number;
}

/** One blob to push. */
export interface BlobUpload {
  repository: string;
  digest: string;
  size: number;
  body: Readable | Buffer;
  mountFrom?: string;
  op: string;
}

/** Mounts or uploads the blob; resolves once the registry answered 201 for it. Rejects with RemoteError (or the body stream's own error). */
export async function uploadBlob(ctx: UploadContext, blob: BlobUpload): Promise<void> {
  const { transport, base } = ctx;
  const start = new URL(v2Path(blob.repository, 'blobs', 'uploads', ''), base);
  if (blob.mountFrom) {
    start.searchParams.set('mount', blob.digest);
    start.searchParams.set('from', blob.mountFrom);
  }
  const res = await ctx.send({ method: 'POST', url: start, op: blob.op, body: Buffer.alloc(0) });
  if (res.statusCode === 201 && blob.mountFrom) {
    checkDigestHeader(transport, blob, res);
    discard(res);
    return;
  }
  if (res.statusCode !== 202) throw await transport.statusError(res, blob.op, 'starting the upload failed');
  let location = sessionURL(transport, blob, res, start);
  discard(res);

  const feeder = Buffer.isBuffer(blob.body) ? undefined : new Feeder(blob.body, (problem) => transport.protocolError(blob.op, problem));
  try {
    const piece = (from: number, length: number): Buffer | ((req: ClientRequest) => Promise<void>) =>
      Buffer.isBuffer(blob.body) ? blob.body.subarray(from, from + length) : (req) => feeder!.write(req, length, from + length === blob.size);
    let sent = 0;
    if (blob.size > ctx.chunkBytes) {
      while (sent < blob.size) {
        const length = Math.min(ctx.chunkBytes, blob.size - sent);
        const patch = await ctx.send({
          method: 'PATCH',
          url: location,
          op: blob.op,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${sent}-${sent + length - 1}`, 'Content-Length': String(length) },
          body: piece(sent, length),
        });
        if (patch.statusCode !== 202) throw await transport.statusError(patch, blob.op, 'uploading a chunk failed');
        location = sessionURL(transport, blob, patch, location);
        discard(patch);
        sent += length;
      }
    }
    if (feeder && sent === blob.size) await feeder.expectEnd();
    const finish = new URL(location);
    finish.searchParams.append('digest', blob.digest);
    const length = blob.size - sent;
    const put = await ctx.send({
      method: 'PUT',
      url: finish,
      op: blob.op,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length) },
      body: length === 0 ? Buffer.alloc(0) : piece(sent, length),
    });
    if (put.statusCode !== 201) throw await transport.statusError(put, blob.op, 'finishing the upload failed');
    checkDigestHeader(transport, blob, put);
    discard(put);
  } catch (error) {
    feeder?.abandon();
    throw error;
  }
}

function sessionURL(transport: Transport, blob: BlobUpload, res: IncomingMessage, base: URL): URL {
  return resolveLocation(res.headers.location, base, () => transport.protocolError(blob.op, 'the upload answer has no usable Location'));
}

function checkDigestHeader(transport: Transport, blob: BlobUpload, res: IncomingMessage): void {
  const header = res.headers['docker-content-digest'];
  if (header !== undefined && header !== blob.digest) throw transport.protocolError(blob.op, 'the registry stored the blob under another digest');
}

/** Hands out a stream's bytes in exact lengths, keeping what a chunk boundary cut off for the next. */
class Feeder {
  readonly #source: Readable;
  readonly #iterator: AsyncIterator<unknown>;
  readonly #fail: (problem: string) => RemoteError;
  #carry: Buffer | undefined;
  #done = false;

  constructor(source: Readable, fail: (problem: string) => RemoteError) {
    this.#source = source;
    this.#iterator = source[Symbol.asyncIterator]();
    this.#fail = fail;
  }

  /**
   * Writes exactly `length` bytes to `req`, honouring back-pressure, then ends it. With `last`, the
   * source must end there: a longer one fails the request before it ends, so nothing is committed.
   */
  async write(req: ClientRequest, length: number, last: boolean): Promise<void> {
    let left = length;
    while (left > 0) {
      let chunk = await this.#next();
      if (!chunk) throw this.#fail('the body ended before its declared size');
      if (req.destroyed) throw this.#fail('the request was aborted');
      if (chunk.length > left) {
        this.#carry = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      if (!req.write(chunk)) await drained(req);
    }
    if (last) await this.expectEnd();
    req.end();
  }

  /** Rejects when the source has bytes left. */
  async expectEnd(): Promise<void> {
    if ((await this.#next()) !== undefined) throw this.#fail('the body is longer than its declared size');
  }

  /** Stops reading the source (destroying it) after a failure. */
  abandon(): void {
    if (!this.#done) this.#source.destroy();
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#carry) {
      const chunk = this.#carry;
      this.#carry = undefined;
      return chunk;
    }
    if (this.#done) return undefined;
    for (;;) {
      const step = await this.#iterator.next();
      if (step.done) {
        this.#done = true;
        return undefined;
      }
      const chunk = Buffer.isBuffer(step.value) ? step.value : Buffer.from(step.value as string);
      if (chunk.length > 0) return chunk;
    }
  }
}

/** Resolves when `req` can take more, or when it is gone (its own error then surfaces elsewhere). */
function drained(req: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}
