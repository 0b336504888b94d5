import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ERROR_CODES, RegistryError } from '../domain/errors.ts';
import { identityName } from '../auth/identity.ts';
import type { Context, Route } from './context.ts';
import type { Metrics } from './metrics.ts';
import type { AddressSet } from '../domain/cidr.ts';
import { forwardingHeaders, resolveOrigin } from './forwarded.ts';
import { internalErrorBody, logFailure, sendError } from './respond.ts';

/**
 * Wire bytes per request: counted from where the previous request on the same keep-alive socket
 * ended, so a body that arrived in the same packet as the headers is not missed.
 */
const socketMarks = new WeakMap<object, { read: number; written: number }>();

function match(routes: readonly Route[], path: string, method: string): { route: Route; params: string[] } | { allow: string[] } | undefined {
  let allow: string[] | undefined;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    if (route.methods.includes(method)) return { route, params: m.slice(1) };
    allow = [...new Set([...(allow ?? []), ...route.methods])];
  }
  return allow ? { allow } : undefined;
}

export interface HandlerOptions {
  log: Logger;
  metrics: Metrics;
  /** Whether Berth itself terminates TLS. */
  secure: boolean;
  /** Proxies whose forwarded headers are believed. */
  trustedProxies: AddressSet;
}

/**
 * Builds the request listener: request id, origin, routing, the one error mapping, one access-log
 * line per request and metrics. Knows nothing about what the routes do.
 *
 * Nothing a request does can end the process: whatever the handler or the error path throws or
 * rejects with fails that request alone (a 500, or a closed connection once the response started)
 * and is logged; stream errors on the request and response are observed, never left uncaught.
 */
export function createHandler(routes: readonly Route[], options: HandlerOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    let ctx: Context;
    try {
      ctx = begin(req, res, options);
    } catch (err) {
      lastResort(req, res, options.log, err, false);
      return;
    }
    dispatch(routes, ctx)
      .catch((err: unknown) => sendError(ctx, err))
      .catch((err: unknown) => lastResort(req, res, ctx.log, err, true));
  };
}

/** Sets up one request: its context, common headers, stream-error observers and the access log. */
function begin(req: IncomingMessage, res: ServerResponse, { log, metrics, secure, trustedProxies }: HandlerOptions): Context {
  const started = process.hrtime.bigint();
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
  const rawUrl = req.url ?? '/';
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  // First, so that even a request failing below is answered (and logged) with its id.
  res.setHeader('X-Request-Id', id);
  const reqLog = log.child({ reqId: id });
  // A response written after it ended, or a failed write, is emitted as 'error': without a listener
  // that is an uncaught exception. The request emits 'error' only to listeners (a client abort).
  res.on('error', (err: unknown) => logFailure({ log: reqLog, id }, err, 'response stream error', 'debug'));
  req.on('error', (err: unknown) => logFailure({ log: reqLog, id }, err, 'request stream error', 'debug'));
  const ctx: Context = {
    req,
    res,
    id,
    path,
    query: new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1)),
    log: reqLog,
    auth: { scheme: 'none' },
    route: 'unmatched',
    secure,
    origin: resolveOrigin(req, secure, trustedProxies),
  };
  const socket = req.socket;
  const mark = socketMarks.get(socket) ?? { read: 0, written: 0 };
  if (path.startsWith('/v2')) res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');

  let logged = false;
  const finish = () => {
    if (logged) return;
    logged = true;
    // Runs from an event: a throw here would be an uncaught exception.
    try {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const method = req.method ?? '';
      const status = res.writableFinished ? res.statusCode : 0; // 0: the connection closed before the response was complete
      const bytesIn = socket.bytesRead - mark.read;
      const bytesOut = socket.bytesWritten - mark.written;
      socketMarks.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
      metrics.requests.inc({ method, route: ctx.route, status: String(status) });
      metrics.duration.observe({ method, route: ctx.route }, seconds);
      ctx.log.info(
        {
          method,
          path,
          query: q < 0 ? undefined : loggedQuery(rawUrl.slice(q + 1, q + 513)),
          route: ctx.route,
          status,
          bytesIn,
          bytesOut,
          durationMs: Math.round(seconds * 1e6) / 1e3,
          host: req.headers.host,
          scheme: secure ? 'https' : 'http',
          forwarded: forwardingHeaders(req),
          client: ctx.origin.client,
          peer: ctx.origin.peer,
          userAgent: req.headers['user-agent'],
          auth: ctx.auth.scheme,
          user: ctx.auth.identity ? identityName(ctx.auth.identity) ?? 'anonymous' : undefined,
          error: ctx.errorCode,
          diagnosis: ctx.diagnosis,
        },
        'request',
      );
    } catch (err) {
      logFailure(ctx, err, 'access log line could not be written');
    }
  };
  res.once('finish', finish);
  res.once('close', finish);
  return ctx;
}

/** Routes a request and runs its handler; anything it throws comes back as a rejection. */
async function dispatch(routes: readonly Route[], ctx: Context): Promise<void> {
  const method = ctx.req.method ?? 'GET';
  const found = match(routes, ctx.path, method);
  // The path is not echoed: it is whatever the client sent, and the client knows it.
  if (!found) throw new RegistryError('NOT_FOUND', 'no such endpoint', { reason: 'no route matches the request path' });
  if ('allow' in found) {
    // The method passed Node's HTTP parser, which knows only the registered method names.
    throw new RegistryError('UNSUPPORTED', `method ${method} not allowed here`, { allow: found.allow }, { headers: { Allow: found.allow.join(', ') } });
  }
  ctx.route = found.route.name;
  await found.route.handler(ctx, found.params);
}

/**
 * When even the error path failed (or the request could not be set up): a fixed 500 if nothing
 * was sent yet, else the connection closes. Logged with the request id when there is one
 * (`bound`: `log` already carries it).
 */
function lastResort(req: IncomingMessage, res: ServerResponse, log: Logger, err: unknown, bound: boolean): void {
  let id: string | undefined;
  let reqLog = log;
  try {
    // Set by `begin` only, from a strict pattern or randomUUID().
    const header = res.getHeader('x-request-id');
    id = typeof header === 'string' ? header : undefined;
    if (id && !bound) reqLog = log.child({ reqId: id });
  } catch {
    // Log without the id.
  }
  logFailure({ log: reqLog, id: id ?? '' }, err, 'request failed and its error could not be sent');
  try {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const data = internalErrorBody(id);
    res.writeHead(ERROR_CODES.INTERNAL.status, { 'Content-Type': 'application/json', 'Content-Length': req.method === 'HEAD' ? 0 : data.length, Connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : data);
  } catch {
    try {
      res.destroy();
      req.socket.destroy();
    } catch {
      // Nothing left to close.
    }
  }
}

/**
 * Query parameters whose values are credentials or one-time proofs (an OpenID provider's code and
 * state on the sign-in callback, tokens some clients put in URLs): the access log shows them as
 * `REDACTED`.
 */
const SECRET_PARAMETERS = /(^|&)(code|state|session_state|id_token|access_token|refresh_token|token|password|client_secret|device_code)=[^&]*/gi;

/** The query string as the access log records it: secret parameters' values replaced. */
export function loggedQuery(query: string): string {
  return query.replace(SECRET_PARAMETERS, '$1$2=REDACTED');
}
