import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../domain/errors.ts';

/**
 * Reads a small request body (manifests, token forms) up to `limit` bytes. A larger body, declared or
 * actual, is refused with 413 before it is buffered.
 */
export async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  const tooLarge = () => new RegistryError('SIZE_INVALID', `body larger than the limit of ${limit} bytes`, { limit }, { status: 413 });
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  // Leave the request alone when stopping early: the error path reads and discards the rest.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** How much of a refused request's body is read (and thrown away) before the refusal is sent. */
export interface DiscardLimits {
  /** Bytes read at most; a body declared longer is not read at all. */
  maxBytes: number;
  /** Milliseconds waited at most for the body to end. */
  maxMs: number;
}

/**
 * Reads and discards what is left of a request's body, wherever a handler stopped reading it
 * (before the first byte, or part-way, paused or not), so that an answer given before the body
 * ended reaches a client that is still sending: a server that closes the connection instead makes
 * the client's next write fail (EPIPE, or a reset that also destroys the unread answer).
 *
 * Resolves true once the body was read to its end (the connection can then serve the next request),
 * false when a bound was hit first, the declared `Content-Length` alone exceeds `maxBytes`, or the
 * request failed. When false, the request is left flowing: whatever still arrives is thrown away
 * until the connection closes. Never rejects.
 *
 * The request must no longer be read by anyone else (a handler that stopped reading has removed its
 * `readable` listeners, as async iterators and pipes do when they stop).
 */
export function discardBody(req: IncomingMessage, limits: DiscardLimits): Promise<boolean> {
  try {
    if (req.complete || req.readableEnded) {
      // All of it arrived; what a handler left unread is released, or the socket stays stopped.
      if (!req.readableEnded) req.resume();
      return Promise.resolve(true);
    }
    if (req.destroyed) return Promise.resolve(false);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limits.maxBytes) {
      req.resume();
      return Promise.resolve(false);
    }
  } catch {
    return Promise.resolve(false);
  }
  return new Promise<boolean>((resolve) => {
    let seen = 0;
    let settled = false;
    const done = (whole: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onGone);
      req.off('error', onGone);
      resolve(whole);
    };
    const onData = (chunk: Buffer | string) => {
      seen += chunk.length;
      if (seen > limits.maxBytes) done(false);
    };
    const onEnd = () => done(true);
    const onGone = () => done(req.complete && req.readableEnded);
    const timer = setTimeout(() => done(false), limits.maxMs);
    try {
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('close', onGone);
      req.once('error', onGone);
      req.resume();
    } catch {
      done(false);
    }
  });
}
