import { RegistryError } from '../../domain/errors.ts';
import type { SessionOrigin, SessionRecord } from '../../registry/uploads.ts';
import type { Context } from '../context.ts';
import { forwardingHeaders } from '../forwarded.ts';

/** How the current request arrived, recorded with an upload session it opens. */
export function sessionOrigin(ctx: Context, via: string): SessionOrigin {
  const userAgent = ctx.req.headers['user-agent'];
  return {
    host: ctx.req.headers.host,
    scheme: ctx.secure ? 'https' : 'http',
    via,
    forwarded: forwardingHeaders(ctx.req),
    client: ctx.origin.client,
    userAgent: userAgent?.slice(0, 200),
  };
}

/**
 * Turns a refused request of an existing upload session into an explanation (PROXIES.md M1/M2/M5,
 * M9): a session opened with credentials whose next request arrives with none means something
 * between the client and Berth dropped them — the client itself, because it judged the URL to be
 * another host, or a proxy. Other errors pass through unchanged. Sets `ctx.diagnosis` for the log.
 */
export function explainRefusal(ctx: Context, err: unknown, session: SessionRecord | undefined, tokenTTLSeconds: number): unknown {
  if (!(err instanceof RegistryError) || err.code !== 'UNAUTHORIZED' || !session) return err;
  const openedAt = new Date(session.openedAt).toISOString();
  const via = session.origin?.via ?? 'an unknown URL';
  const sessionDetail = { id: session.id, openedBy: session.openedBy, openedAt, via: session.origin };
  const received = { host: ctx.req.headers.host, scheme: ctx.secure ? 'https' : 'http', forwarded: forwardingHeaders(ctx.req), client: ctx.origin.client };
  const logFields = { session: session.id, openedBy: session.openedBy, openedVia: via };

  if (ctx.auth.scheme === 'none' && session.openedBy !== null) {
    const message =
      `credentials were dropped between the client and Berth: upload session ${session.id} was opened by "${session.openedBy}" ` +
      `via ${via}, but this request arrived without an Authorization header`;
    const likelyCauses: string[] = [];
    const before = session.origin;
    if (before && (before.host !== received.host || before.scheme !== received.scheme)) {
      likelyCauses.push(
        `this request reached Berth as ${received.scheme}://${received.host ?? '(no Host)'}, the session's first request as ${before.scheme}://${before.host ?? '(no Host)'}: ` +
          'the client was sent to, or a proxy rewrote, another host, port or scheme (M1/M2)',
      );
    }
    likelyCauses.push(
      'the client judged the upload URL to be another host than the one it logged in to and withheld its token (containerd compares host strings exactly, ' +
        'so `host:443` differs from `host`). Berth sends relative upload URLs, so a proxy in front rewrote them to absolute ones (nginx `proxy_redirect`, ' +
        'a CDN) or another registry answered the first request (M1/M2/M4)',
      'a proxy removes the Authorization header on some requests, e.g. `proxy_set_header Authorization "";` in one location block (M5)',
    );
    const doctor = `berth doctor ${via.startsWith('http') ? via : '<your registry URL>'}`;
    ctx.diagnosis = { code: 'credentials-dropped', message, ...logFields };
    return new RegistryError(
      'UNAUTHORIZED',
      `${message}. Run \`${doctor}\` from the client's machine to find the hop that drops them`,
      { diagnosis: 'credentials-dropped', session: sessionDetail, received, likelyCauses, doctor },
      { headers: err.headers },
    );
  }

  const detail = err.detail as { token?: string } | undefined;
  if (ctx.auth.scheme === 'bearer' && detail?.token === 'expired') {
    const minutes = Math.round((Date.now() - session.openedAt) / 60_000);
    const message =
      `the access token expired during upload session ${session.id} (opened ${minutes} min ago by "${session.openedBy ?? 'anonymous'}"); ` +
      `tokens live auth.tokenTTL = ${tokenTTLSeconds} s: raise it above the longest upload, or make the client fetch a new token`;
    ctx.diagnosis = { code: 'token-expired', message, ...logFields, tokenTTLSeconds };
    return new RegistryError('UNAUTHORIZED', message, { diagnosis: 'token-expired', token: 'expired', session: sessionDetail, tokenTTLSeconds }, { headers: err.headers });
  }
  return err;
}
