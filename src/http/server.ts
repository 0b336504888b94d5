import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../domain/errors.ts';
import { identityName } from '../auth/identity.ts';
import type { Context, Route } from './context.ts';
import type { Metrics } from './metrics.ts';
import type { AddressSet } from '../domain/cidr.ts';
import { forwardingHeaders, resolveOrigin } from './forwarded.ts';
import { sendError } from './respond.ts';

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
 */
export function createHandler(routes: readonly Route[], { log, metrics, secure, trustedProxies }: HandlerOptions) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const ctx: Context = {
      req,
      res,
      id,
      path,
      query: new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1)),
      log: log.child({ reqId: id }),
      auth: { scheme: 'none' },
      route: 'unmatched',
      secure,
      origin: resolveOrigin(req, secure, trustedProxies),
    };
    const socket = req.socket;
    const mark = socketMarks.get(socket) ?? { read: 0, written: 0 };
    res.setHeader('X-Request-Id', id);
    if (path.startsWith('/v2')) res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');

    let logged = false;
    const finish = () => {
      if (logged) return;
      logged = true;
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
          query: q < 0 ? undefined : rawUrl.slice(q + 1, q + 513),
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
    };
    res.once('finish', finish);
    res.once('close', finish);

    const found = match(routes, path, req.method ?? 'GET');
    const run = async () => {
      if (!found) throw new RegistryError('NOT_FOUND', 'no such endpoint', { path: path.slice(0, 300) });
      if ('allow' in found) {
        throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed here`, { allow: found.allow }, { headers: { Allow: found.allow.join(', ') } });
      }
      ctx.route = found.route.name;
      await found.route.handler(ctx, found.params);
    };
    run().catch((err: unknown) => sendError(ctx, err));
  };
}
