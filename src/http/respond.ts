import type { ServerResponse } from 'node:http';
import { RegistryError, ERROR_CODES } from '../domain/errors.ts';
import { StorageError } from '../storage/blob-store.ts';
import type { Context } from './context.ts';
import { discardBody, type DiscardLimits } from './body.ts';

/** Sends a JSON body with an exact Content-Length. */
export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers });
  res.end(data);
}

/** Sends a response without a body. */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number | string[]> = {}): void {
  res.writeHead(status, { 'Content-Length': 0, ...headers });
  res.end();
}

/**
 * How much of a refused request's body is read before the refusal is sent (see `discardBody`).
 *
 * 16 MiB: four times the default manifest limit, so any refused manifest, token form or API body
 * (and the usual chunk of a chunked upload) is read whole and its connection kept; a refused layer
 * of gigabytes is never read whole: a body declared longer is not read at all, one of unknown length
 * is read to the bound. Reading discards at once, so the bound costs time, not memory: 16 MiB is
 * about 1.3 s at 100 Mbit/s, under the time bound.
 * 5 s: long enough for that on an ordinary link, short enough that a client trickling its body
 * cannot hold its refusal back (and its connection open) for long.
 */
export const DISCARD_LIMITS: DiscardLimits = { maxBytes: 16 * 1024 * 1024, maxMs: 5_000 };

/**
 * How long a connection closed after a refusal whose body was not read whole stays open for
 * reading (and discarding) once the refusal went out: closing a socket that still receives data
 * makes the kernel answer with a reset, which can destroy the refusal in the client's buffers before
 * the client read it (the "lingering close" of Apache and nginx). Ends early when the client closes.
 */
const LINGER_MS = 2_000;

/** An error as it goes on the wire, prepared before anything is written. */
interface Prepared {
  status: number;
  headers: Record<string, string | number>;
  data?: Buffer;
}

/**
 * The one place errors become responses: registry errors as the OCI error envelope with their own
 * status; anything else as a 500 that names only the request id (details go to the log).
 *
 * A request whose body was not read to its end (a refusal before or part-way through the body) has
 * the rest read and discarded first, within `DISCARD_LIMITS`, so that a client still sending
 * receives the answer instead of a broken pipe. When a bound is hit the answer is sent anyway,
 * with `Connection: close`, and the connection closes only after it went out (and lingered).
 *
 * Never rejects. An error whose envelope cannot be built or serialised (a detail holding a BigInt, a
 * cycle, or nesting deeper than the stack) becomes the fixed 500 of `sendInternal`; a response that
 * cannot be written at all, or whose headers already went out, ends with its connection.
 */
export async function sendError(ctx: Context, err: unknown): Promise<void> {
  try {
    if (ctx.res.headersSent) {
      // Part of a response went out: only closing the connection tells the client it is incomplete.
      // A client that went away mid-response is routine, anything else is a failure of Berth's.
      const gone = ctx.res.destroyed || ctx.req.socket.destroyed;
      logFailure(ctx, err, gone ? 'client went away mid-response' : 'request failed after the response started', gone ? 'debug' : 'error');
      destroy(ctx);
      return;
    }
    // Prepared first, so the access log names the error even if the client leaves while the body drains.
    let prepared: Prepared | undefined;
    try {
      prepared = prepare(ctx, err);
    } catch (failure) {
      logFailure(ctx, failure, 'error response could not be sent');
    }
    const whole = await discardBody(ctx.req, DISCARD_LIMITS);
    if (ctx.res.headersSent || ctx.res.destroyed) return;
    if (!whole) {
      // The rest of the body would be read as the next request: this connection ends with this response.
      ctx.res.setHeader('Connection', 'close');
      lingerAfterResponse(ctx);
    }
    if (prepared) {
      try {
        ctx.res.writeHead(prepared.status, prepared.headers);
        ctx.res.end(prepared.data);
        return;
      } catch (failure) {
        logFailure(ctx, failure, 'error response could not be sent');
      }
    }
    sendInternal(ctx);
  } catch (failure) {
    logFailure(ctx, failure, 'error response could not be sent');
    sendInternal(ctx);
  }
}

/**
 * Records the error on the context (code and diagnosis, for the access log) and builds its
 * response; undefined for anything but a registry error (a 500, logged here). Throws when the
 * envelope cannot be serialised.
 */
function prepare(ctx: Context, thrown: unknown): Prepared | undefined {
  const err = thrown instanceof StorageError && thrown.kind === 'unavailable' ? unavailable() : thrown;
  if (!(err instanceof RegistryError)) {
    ctx.errorCode = 'INTERNAL';
    logFailure(ctx, err, 'unexpected error');
    return undefined;
  }
  ctx.errorCode = err.code;
  const diagnosis = (err.detail as { diagnosis?: unknown } | undefined)?.diagnosis;
  if (typeof diagnosis === 'string') ctx.diagnosis ??= { code: diagnosis, message: err.message };
  // The error as thrown: for storage that stayed unavailable, the driver's error and its cause.
  if (err.status >= 500) ctx.log.error({ err: thrown }, 'request failed');
  const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  // Serialised before anything is written, so a detail that cannot be still leaves room for a 500.
  const data = ctx.req.method === 'HEAD' ? undefined : Buffer.from(JSON.stringify({ errors: [entry] }));
  return { status: err.status, headers: { 'Content-Type': 'application/json', 'Content-Length': data?.length ?? 0, ...err.headers }, ...(data ? { data } : {}) };
}

/** Storage that stayed unavailable through the driver's retries: a 503 the client may retry. */
function unavailable(): RegistryError {
  return new RegistryError('UNAVAILABLE', 'storage is temporarily unavailable; try again later', undefined, { headers: { 'Retry-After': '10' } });
}

/**
 * Once the response went out, keeps the connection open for reading (discarding) for up to
 * `LINGER_MS`, or until the client closes its side, instead of closing it at once. Node half-closes
 * the socket after a `Connection: close` response and destroys it when that is flushed; the destroy
 * is what is put off here.
 */
function lingerAfterResponse(ctx: Context): void {
  const { req, res } = ctx;
  const socket = req.socket;
  res.once('finish', () => {
    try {
      if (socket.destroyed) return;
      // Registered by Node's server (socket.destroySoon) just before this listener ran.
      socket.removeListener('finish', socket.destroy);
      const close = () => {
        clearTimeout(timer);
        socket.destroy();
      };
      const timer = setTimeout(close, LINGER_MS);
      timer.unref();
      socket.once('end', close);
      socket.once('close', () => clearTimeout(timer));
      // Whatever still arrives is parsed as the rest of the body and thrown away.
      req.resume();
    } catch {
      destroy(ctx);
    }
  });
}

/**
 * The fixed 500 envelope naming the request id; closes the connection when even that cannot be
 * written (or a response already started).
 */
function sendInternal(ctx: Context): void {
  const { res } = ctx;
  try {
    ctx.errorCode = 'INTERNAL';
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // The id is Berth's own or passed a strict pattern (see createHandler), so this cannot fail.
    const data = internalErrorBody(ctx.id);
    for (const name of res.getHeaderNames()) {
      if (name !== 'x-request-id' && name !== 'docker-distribution-api-version' && name !== 'connection') res.removeHeader(name);
    }
    res.writeHead(ERROR_CODES.INTERNAL.status, { 'Content-Type': 'application/json', 'Content-Length': ctx.req.method === 'HEAD' ? 0 : data.length });
    res.end(ctx.req.method === 'HEAD' ? undefined : data);
  } catch (failure) {
    logFailure(ctx, failure, 'error response could not be written');
    destroy(ctx);
  }
}

/** The fixed body of a 500: the INTERNAL envelope naming only the request id (when there is one). */
export function internalErrorBody(requestId: string | undefined): Buffer {
  const entry = { code: 'INTERNAL', message: ERROR_CODES.INTERNAL.message, ...(requestId ? { detail: { requestId } } : {}) };
  return Buffer.from(JSON.stringify({ errors: [entry] }));
}

/** Closes the response and its connection, whatever state they are in. */
function destroy(ctx: Context): void {
  try {
    ctx.res.destroy();
  } catch {
    // Nothing left to try but the socket itself.
  }
  try {
    ctx.req.socket.destroy();
  } catch {
    // Already gone.
  }
}

/**
 * Logs a failure (at error level unless told) on the request's logger, which carries the request
 * id. What was thrown may itself defeat serialisation (a cycle, a BigInt, a Proxy whose every trap
 * throws), so then a plain description is logged instead; a logger failing even so is ignored.
 */
export function logFailure(ctx: Pick<Context, 'log' | 'id'>, err: unknown, message: string, level: 'error' | 'debug' = 'error'): void {
  try {
    ctx.log[level]({ err }, message);
    return;
  } catch {
    // Fall through to a description built from strings only.
  }
  try {
    ctx.log[level]({ error: describeThrown(err), requestId: ctx.id }, message);
  } catch {
    // The log itself is failing; the response still goes out.
  }
}

/** A short, always-serialisable description of anything thrown. */
function describeThrown(err: unknown): { type: string; name?: string; message?: string; stack?: string } {
  try {
    if (err instanceof Error) {
      return { type: 'error', name: String(err.name), message: String(err.message).slice(0, 1000), ...(typeof err.stack === 'string' ? { stack: err.stack.slice(0, 4000) } : {}) };
    }
    return { type: typeof err };
  } catch {
    return { type: 'uninspectable' };
  }
}
