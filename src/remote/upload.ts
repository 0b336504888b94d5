// Pushing one blob to another registry: an optional cross-repository mount, then an upload session
// finished by one PUT (bodies up to the chunk size) or filled by PATCH chunks and closed by an
// empty PUT. A stream body is written exactly `size` bytes at a time, never buffered whole. With
// an opener for the body, a transfer that breaks is resumed where the registry says it stands.
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { discard, resolveLocation, type Call, type Transport } from './http.ts';
import { v2Path } from './paths.ts';
import { RemoteError } from './types.ts';

/**
 * Opens the blob's bytes from `offset` to its end. Called again after a transfer broke, with the
 * offset the registry kept (0 when the upload starts over).
 */
export type BlobOpener = (offset: number) => Promise<Readable>;

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
  body: Readable | Buffer | BlobOpener;
  mountFrom?: string;
  op: string;
}

/** Resumes of one blob's transfer before its failure is final. */
export const MAX_RESUMES = 5;

/**
 * Mounts or uploads the blob; resolves once the registry answered 201 for it, with the body bytes
 * written to the network (failed attempts included; 0 for a mount). Rejects with RemoteError (or the
 * body stream's own error). Only an opener body is resumed: after a transient failure (reset,
 * timeout, 5xx, 429) the session's status is asked and the transfer continues from there, or starts
 * over in a new session when the registry lost it; at most MAX_RESUMES times.
 */
export async function uploadBlob(ctx: UploadContext, blob: BlobUpload): Promise<number> {
  const upload = new Upload(ctx, blob);
  return upload.run();
}

/**
 * Tries only the cross-repository mount of `blob` from `from`: true when the registry mounted it
 * (201); false when it opened an upload session instead (the session is cancelled, best effort).
 * Rejects with RemoteError for an error answer.
 */
export async function mountOnly(ctx: UploadContext, blob: { repository: string; digest: string; op: string }, from: string): Promise<boolean> {
  const start = new URL(v2Path(blob.repository, 'blobs', 'uploads', ''), ctx.base);
  start.searchParams.set('mount', blob.digest);
  start.searchParams.set('from', from);
  const res = await ctx.send({ method: 'POST', url: start, op: blob.op, body: Buffer.alloc(0) });
  if (res.statusCode === 201) {
    const header = res.headers['docker-content-digest'];
    discard(res);
    if (header !== undefined && header !== blob.digest) throw ctx.transport.protocolError(blob.op, 'the registry mounted the blob under another digest');
    return true;
  }
  if (res.statusCode !== 202) throw await ctx.transport.statusError(res, blob.op, 'the mount failed');
  const location = res.headers.location;
  discard(res);
  try {
    const cancel = await ctx.send({ method: 'DELETE', url: resolveLocation(location, start, () => ctx.transport.protocolError(blob.op, 'the upload answer has no usable Location')), op: blob.op });
    discard(cancel);
  } catch {
    /* an abandoned session expires at the registry */
  }
  return false;
}

class Upload {
  readonly #ctx: UploadContext;
  readonly #blob: BlobUpload;
  #sent = 0;
  #feeder: Feeder | undefined;

  constructor(ctx: UploadContext, blob: BlobUpload) {
    this.#ctx = ctx;
    this.#blob = blob;
  }

  async run(): Promise<number> {
    const { blob } = this;
    let location = await this.#start(blob.mountFrom);
    if (!location) return 0;
    const opener = typeof blob.body === 'function' ? blob.body : undefined;
    let offset = 0;
    let recovering = false;
    for (let resumes = 0; ; resumes++) {
      try {
        if (recovering) {
          // Inside the try: a failure to learn where the upload stands costs a resume too.
          const kept = blob.size > this.#ctx.chunkBytes ? await this.#status(location) : undefined;
          if (kept !== undefined) offset = kept;
          // The session is gone (or a single PUT failed): the blob may have been committed anyway.
          else if ((await this.#present()) === blob.size) return this.#sent;
          else {
            location = (await this.#start(undefined))!;
            offset = 0;
          }
          recovering = false;
        }
        if (!Buffer.isBuffer(blob.body)) {
          // Every byte already at the registry: only the closing PUT is left, nothing is read.
          const source = !opener ? (blob.body as Readable) : offset === blob.size ? Readable.from([]) : await opener(offset);
          this.#feeder = new Feeder(source, (p) => this.#protocol(p), (p) => this.#broken(p));
        }
        await this.#transfer(location, offset);
        return this.#sent;
      } catch (error) {
        this.#feeder?.abandon();
        this.#feeder = undefined;
        if (!opener || !resumable(error) || resumes >= MAX_RESUMES) throw error;
        recovering = true;
        // Lets the registry notice the broken request and release the session before it is asked.
        await sleep(150 * (resumes + 1));
      }
    }
  }

  get blob(): BlobUpload {
    return this.#blob;
  }

  /** Opens a session (trying the mount first); undefined when the mount succeeded. */
  async #start(mountFrom: string | undefined): Promise<URL | undefined> {
    const { blob } = this;
    const start = new URL(v2Path(blob.repository, 'blobs', 'uploads', ''), this.#ctx.base);
    if (mountFrom) {
      start.searchParams.set('mount', blob.digest);
      start.searchParams.set('from', mountFrom);
    }
    const res = await this.#ctx.send({ method: 'POST', url: start, op: blob.op, body: Buffer.alloc(0) });
    if (res.statusCode === 201 && mountFrom) {
      this.#checkDigestHeader(res);
      discard(res);
      return undefined;
    }
    if (res.statusCode !== 202) throw await this.#ctx.transport.statusError(res, blob.op, 'starting the upload failed');
    const location = this.#session(res, start);
    discard(res);
    return location;
  }

  /** Sends bytes `offset`… (chunks, then the closing PUT), starting from session `location`. */
  async #transfer(location: URL, offset: number): Promise<void> {
    const { blob } = this;
    const { transport, chunkBytes } = this.#ctx;
    let sent = offset;
    if (blob.size > chunkBytes) {
      while (sent < blob.size) {
        const length = Math.min(chunkBytes, blob.size - sent);
        const patch = await this.#ctx.send({
          method: 'PATCH',
          url: location,
          op: blob.op,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${sent}-${sent + length - 1}`, 'Content-Length': String(length) },
          body: this.#piece(sent, length),
        });
        if (patch.statusCode !== 202) throw await transport.statusError(patch, blob.op, 'uploading a chunk failed');
        location = this.#session(patch, location);
        discard(patch);
        sent += length;
      }
    }
    if (this.#feeder && sent === blob.size) await this.#feeder.expectEnd();
    const finish = new URL(location);
    finish.searchParams.append('digest', blob.digest);
    const length = blob.size - sent;
    const put = await this.#ctx.send({
      method: 'PUT',
      url: finish,
      op: blob.op,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(length) },
      body: length === 0 ? Buffer.alloc(0) : this.#piece(sent, length),
    });
    if (put.statusCode !== 201) throw await transport.statusError(put, blob.op, 'finishing the upload failed');
    this.#checkDigestHeader(put);
    discard(put);
  }

  #piece(from: number, length: number): Buffer | ((req: ClientRequest) => Promise<void>) {
    const body = this.blob.body;
    if (Buffer.isBuffer(body)) {
      this.#sent += length;
      return body.subarray(from, from + length);
    }
    const feeder = this.#feeder!;
    return (req) => feeder.write(req, length, from + length === this.blob.size, (n) => (this.#sent += n));
  }

  /**
   * How many bytes the session holds (`GET` its Location: 204 with `Range: 0-N`); undefined when the
   * registry no longer knows it or cannot say for sure (`0-0` is both "empty" and "one byte").
   */
  async #status(location: URL): Promise<number | undefined> {
    const { blob } = this;
    const res = await this.#ctx.send({ method: 'GET', url: location, op: blob.op });
    const status = res.statusCode ?? 0;
    if (status === 404 || status === 400) {
      discard(res);
      return undefined;
    }
    if (status !== 204 && status !== 200) throw await this.#ctx.transport.statusError(res, blob.op, 'asking for the upload status failed');
    discard(res);
    const m = /^0-(\d{1,15})$/.exec(String(res.headers['range'] ?? ''));
    if (!m || m[1] === '0') return undefined;
    const kept = Number(m[1]) + 1;
    if (kept > blob.size) throw this.#protocol('the registry holds more bytes than the blob has');
    return kept;
  }

  /** The blob's size at the registry (HEAD), undefined when it does not have it. */
  async #present(): Promise<number | undefined> {
    const { blob } = this;
    const res = await this.#ctx.send({ method: 'HEAD', url: new URL(v2Path(blob.repository, 'blobs', blob.digest), this.#ctx.base), op: blob.op, redirects: 5 });
    discard(res);
    const length = res.headers['content-length'];
    return res.statusCode === 200 && length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
  }

  #session(res: IncomingMessage, base: URL): URL {
    return resolveLocation(res.headers.location, base, () => this.#protocol('the upload answer has no usable Location'));
  }

  #checkDigestHeader(res: IncomingMessage): void {
    const header = res.headers['docker-content-digest'];
    if (header !== undefined && header !== this.blob.digest) throw this.#protocol('the registry stored the blob under another digest');
  }

  #protocol(problem: string): RemoteError {
    return this.#ctx.transport.protocolError(this.blob.op, problem);
  }

  /** The connection went while the body was being written: the network's failure, so transient. */
  #broken(problem: string): RemoteError {
    const error = this.#protocol(problem);
    return new RemoteError('unreachable', error.message);
  }
}

function resumable(error: unknown): boolean {
  return error instanceof RemoteError && error.transient;
}

/** Hands out a stream's bytes in exact lengths, keeping what a chunk boundary cut off for the next. */
class Feeder {
  readonly #source: Readable;
  readonly #iterator: AsyncIterator<unknown>;
  readonly #fail: (problem: string) => RemoteError;
  readonly #broken: (problem: string) => RemoteError;
  #carry: Buffer | undefined;
  #done = false;

  constructor(source: Readable, fail: (problem: string) => RemoteError, broken: (problem: string) => RemoteError) {
    this.#source = source;
    this.#iterator = source[Symbol.asyncIterator]();
    this.#fail = fail;
    this.#broken = broken;
  }

  /**
   * Writes exactly `length` bytes to `req`, honouring back-pressure, then ends it. With `last`, the
   * source must end there: a longer one fails the request before it ends, so nothing is committed.
   * `written` hears of every chunk handed to the request.
   */
  async write(req: ClientRequest, length: number, last: boolean, written: (n: number) => void): Promise<void> {
    let left = length;
    while (left > 0) {
      let chunk = await this.#next();
      if (!chunk) throw this.#fail('the body ended before its declared size');
      if (req.destroyed) throw this.#broken('the connection broke while the body was sent');
      if (chunk.length > left) {
        this.#carry = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      written(chunk.length);
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
