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
 */
export function sendError(ctx: Context, err: unknown): void {
  const { res } = ctx;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // Answering before the whole request body arrived: the rest of it would be read as the next
  // request, so the connection must close after this response.
  if (!ctx.req.complete) res.setHeader('Connection', 'close');
  if (err instanceof RegistryError) {
    ctx.errorCode = err.code;
    const diagnosis = (err.detail as { diagnosis?: unknown } | undefined)?.diagnosis;
    if (typeof diagnosis === 'string') ctx.diagnosis ??= { code: diagnosis, message: err.message };
    const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
    if (err.detail !== undefined) entry.detail = err.detail;
    const body = ctx.req.method === 'HEAD' ? undefined : { errors: [entry] };
    if (err.status >= 500) ctx.log.error({ err }, 'request failed');
    if (body) sendJSON(res, err.status, body, err.headers);
    else sendEmpty(res, err.status, { 'Content-Type': 'application/json', ...err.headers });
    return;
  }
  ctx.errorCode = 'INTERNAL';
  ctx.log.error({ err }, 'unexpected error');
  const status = ERROR_CODES.INTERNAL.status;
  const body = { errors: [{ code: 'INTERNAL', message: ERROR_CODES.INTERNAL.message, detail: { requestId: ctx.id } }] };
  if (ctx.req.method === 'HEAD') sendEmpty(res, status);
  else sendJSON(res, status, body);
}
