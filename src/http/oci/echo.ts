import { VERSION } from '../../version.ts';
import type { Route } from '../context.ts';
import { readCredentials } from '../credentials.ts';
import { forwardingHeaders } from '../forwarded.ts';
import { sendEmpty, sendJSON } from '../respond.ts';
import type { OciDeps } from './deps.ts';

/**
 * `/v2/_berth/echo`: what Berth received, for `berth doctor`. It lives under `/v2/` so it travels the
 * same proxy path as pushes. Never asks for credentials and never shows a credential's value: only
 * whether `Authorization` arrived, its scheme, and for a bearer token whether it verifies. Everything
 * else is what the caller (or the proxies it passed) sent, plus Berth's own external URLs.
 * (`_` cannot start a repository name, so this never shadows a repository.)
 */
export function echoRoutes(deps: OciDeps): Route[] {
  return [
    {
      name: 'echo',
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      pattern: /^\/v2\/_berth\/echo\/?$/,
      handler: async (ctx) => {
        const { req } = ctx;
        let receivedBytes = 0;
        for await (const chunk of req) receivedBytes += (chunk as Buffer).length;
        const credentials = readCredentials(req);
        ctx.auth.scheme = credentials.scheme;
        const declared = req.headers['content-length'];
        const body = {
          berth: { version: VERSION, externalURLs: deps.externalURLs, tokenTTLSeconds: deps.tokenTTL },
          time: new Date().toISOString(),
          received: {
            method: req.method,
            path: ctx.path,
            query: ctx.query.toString(),
            httpVersion: req.httpVersion,
            host: req.headers.host ?? null,
            scheme: ctx.secure ? 'https' : 'http',
            peer: ctx.origin.peer,
            trustedProxy: ctx.origin.trustedProxy,
            client: ctx.origin.client,
            origin: { scheme: ctx.origin.scheme, host: ctx.origin.host ?? null, source: ctx.origin.source },
            forwarded: forwardingHeaders(req) ?? {},
            authorization: {
              present: credentials.scheme !== 'none',
              scheme: credentials.scheme === 'none' ? null : credentials.scheme,
              ...(credentials.scheme === 'bearer' ? { token: await deps.access.inspectBearer(credentials.token) } : {}),
            },
            userAgent: req.headers['user-agent'] ?? null,
            body: {
              declaredLength: declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null,
              chunked: /chunked/i.test(req.headers['transfer-encoding'] ?? ''),
              receivedBytes,
            },
          },
        };
        if (req.method === 'HEAD') sendEmpty(ctx.res, 200, { 'Content-Type': 'application/json' });
        else sendJSON(ctx.res, 200, body, { 'Cache-Control': 'no-store' });
      },
    },
  ];
}
