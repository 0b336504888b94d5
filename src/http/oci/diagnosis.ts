import { RegistryError } from '../../domain/errors.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Identity } from '../../auth/identity.ts';
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

/** What explanations need besides the request and the session. */
export interface RefusalDeps {
  /** Access token lifetime, seconds. */
  tokenTTL: number;
  /** The configured external URLs: public (the token realm names them), so any caller may be shown one. */
  externalURLs: readonly string[];
  authorizer: Pick<Authorizer, 'isAdmin'>;
}

/**
 * Whether `identity` may read how `session` was opened — who opened it, from which address, with
 * which client, through which proxies: its owner and system administrators. `identity` must be one
 * this request proved (accepted credentials); a request without credentials never qualifies.
 */
export async function maySeeSessionOrigin(identity: Identity | undefined, session: SessionRecord, authorizer: Pick<Authorizer, 'isAdmin'>): Promise<boolean> {
  if (identity?.kind !== 'user') return false;
  return identity.name === session.openedBy || (await authorizer.isAdmin(identity));
}

const DOCTOR_PLACEHOLDER = '<your registry URL>';

/**
 * Turns a refused request of an existing upload session into an explanation (PROXIES.md M1/M2/M5,
 * M9): a session opened with credentials whose next request arrives with none means something
 * between the client and Berth dropped them — the client itself, because it judged the URL to be
 * another host, or a proxy. Other errors pass through unchanged.
 *
 * The caller is told what happened, the likely causes and the `berth doctor` command to run. How
 * the session was opened (who, client address, user agent, forwarded headers) and the forwarded
 * headers of this request are shown only to the session's owner or an administrator: anyone holding
 * the upload URL can send this request, and one without credentials is the very case explained.
 * `ctx.diagnosis` (the access log) always gets the whole story.
 */
export async function explainRefusal(ctx: Context, err: unknown, session: SessionRecord | undefined, deps: RefusalDeps): Promise<unknown> {
  if (!(err instanceof RegistryError) || err.code !== 'UNAUTHORIZED' || !session) return err;
  const dropped = ctx.auth.scheme === 'none' && session.openedBy !== null;
  const expired = ctx.auth.scheme === 'bearer' && (err.detail as { token?: string } | undefined)?.token === 'expired';
  if (!dropped && !expired) return err;

  // Who the request proved to be. Without credentials: nobody. With an expired token: nobody either,
  // as admission stands (it does not take the subject of a token it refuses), so over HTTP both get
  // the short view, and the session's owner or an administrator reads the whole story in the log.
  const full = await maySeeSessionOrigin(ctx.auth.identity, session, deps.authorizer);
  const openedAt = new Date(session.openedAt).toISOString();
  const via = session.origin?.via ?? 'an unknown URL';
  const sessionDetail = full ? { id: session.id, openedBy: session.openedBy, openedAt, via: session.origin } : { id: session.id, openedAt };
  const logFields = { session: session.id, openedBy: session.openedBy, openedVia: via, openedFrom: session.origin };

  if (dropped) {
    const opened = `upload session ${session.id} was opened`;
    const tail = 'but this request arrived without an Authorization header';
    const logMessage = `credentials were dropped between the client and Berth: ${opened} by "${session.openedBy}" via ${via}, ${tail}`;
    const message = full ? logMessage : `credentials were dropped between the client and Berth: ${opened} with credentials, ${tail}`;
    const received = { host: ctx.req.headers.host, scheme: ctx.secure ? 'https' : 'http' };
    const likelyCauses: string[] = [];
    const before = session.origin;
    if (before && (before.host !== received.host || before.scheme !== received.scheme)) {
      const here = `this request reached Berth as ${received.scheme}://${received.host ?? '(no Host)'}`;
      likelyCauses.push(
        `${here}, ${full ? `the session's first request as ${before.scheme}://${before.host ?? '(no Host)'}` : "not as the session's first request did"}: ` +
          'the client was sent to, or a proxy rewrote, another host, port or scheme (M1/M2)',
      );
    }
    likelyCauses.push(
      'the client judged the upload URL to be another host than the one it logged in to and withheld its token (containerd compares host strings exactly, ' +
        'so `host:443` differs from `host`). Berth sends relative upload URLs, so a proxy in front rewrote them to absolute ones (nginx `proxy_redirect`, ' +
        'a CDN) or another registry answered the first request (M1/M2/M4)',
      'a proxy removes the Authorization header on some requests, e.g. `proxy_set_header Authorization "";` in one location block (M5)',
    );
    // The URL the session was opened through is derived from that request's Host and forwarded
    // headers unless it is a configured (public) one: only then may anyone be shown it.
    const showVia = full ? via.startsWith('http') : deps.externalURLs.includes(via);
    const doctor = `berth doctor ${showVia ? via : DOCTOR_PLACEHOLDER}`;
    ctx.diagnosis = { code: 'credentials-dropped', message: logMessage, ...logFields };
    return new RegistryError(
      'UNAUTHORIZED',
      `${message}. Run \`${doctor}\` from the client's machine to find the hop that drops them`,
      {
        diagnosis: 'credentials-dropped',
        session: sessionDetail,
        received: full ? { ...received, forwarded: forwardingHeaders(ctx.req), client: ctx.origin.client } : received,
        likelyCauses,
        doctor,
      },
      { headers: err.headers },
    );
  }

  const minutes = Math.round((Date.now() - session.openedAt) / 60_000);
  const advice = `tokens live auth.tokenTTL = ${deps.tokenTTL} s: raise it above the longest upload, or make the client fetch a new token`;
  const logMessage = `the access token expired during upload session ${session.id} (opened ${minutes} min ago by "${session.openedBy ?? 'anonymous'}"); ${advice}`;
  const message = full ? logMessage : `the access token expired during upload session ${session.id} (opened ${minutes} min ago); ${advice}`;
  ctx.diagnosis = { code: 'token-expired', message: logMessage, ...logFields, tokenTTLSeconds: deps.tokenTTL };
  return new RegistryError('UNAUTHORIZED', message, { diagnosis: 'token-expired', token: 'expired', session: sessionDetail, tokenTTLSeconds: deps.tokenTTL }, { headers: err.headers });
}
