import type { ServerResponse } from 'node:http';
import { RegistryError, ERROR_CODES } from '../domain/errors.ts';
import type { Context } from './context.ts';

/** Sends a JSON body with an exact Content-Length. */
export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers });
  res.end(data);
}

/** Sends a response without a body. */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { 'Content-Length': 0, ...headers });
  res.end();
}

/**
 * The one place errors become responses: registry errors as the OCI error envelope with their own
 * status; anything else as a 500 that names only the request id (details go to the log).
 *
 * Never throws. An error whose envelope cannot be built or serialised (a detail holding a BigInt, a
 * cycle, or nesting deeper than the stack) becomes the fixed 500 of `sendInternal`; a response that
 * cannot be written at all, or whose headers already went out, ends with its connection.
 */
export function sendError(ctx: Context, err: unknown): void {
  try {
    if (ctx.res.headersSent) {
      // Part of a response went out: only closing the connection tells the client it is incomplete.
      // A client that went away mid-response is routine, anything else is a failure of Berth's.
      const gone = ctx.res.destroyed || ctx.req.socket.destroyed;
      logFailure(ctx, err, gone ? 'client went away mid-response' : 'request failed after the response started', gone ? 'debug' : 'error');
      destroy(ctx);
      return;
    }
    send(ctx, err);
  } catch (failure) {
    logFailure(ctx, failure, 'error response could not be sent');
    sendInternal(ctx);
  }
}

function send(ctx: Context, err: unknown): void {
  const { res } = ctx;
  // Answering before the whole request body arrived: the rest of it would be read as the next
  // request, so the connection must close after this response.
  if (!ctx.req.complete) res.setHeader('Connection', 'close');
  if (err instanceof RegistryError) {
    ctx.errorCode = err.code;
    const diagnosis = (err.detail as { diagnosis?: unknown } | undefined)?.diagnosis;
    if (typeof diagnosis === 'string') ctx.diagnosis ??= { code: diagnosis, message: err.message };
    const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
    if (err.detail !== undefined) entry.detail = err.detail;
    // Serialised before anything is written, so a detail that cannot be still leaves room for a 500.
    const data = ctx.req.method === 'HEAD' ? undefined : Buffer.from(JSON.stringify({ errors: [entry] }));
    if (err.status >= 500) ctx.log.error({ err }, 'request failed');
    res.writeHead(err.status, { 'Content-Type': 'application/json', 'Content-Length': data?.length ?? 0, ...err.headers });
    res.end(data);
    return;
  }
  logFailure(ctx, err, 'unexpected error');
  sendInternal(ctx);
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
    const data = Buffer.from(JSON.stringify({ errors: [{ code: 'INTERNAL', message: ERROR_CODES.INTERNAL.message, detail: { requestId: ctx.id } }] }));
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
