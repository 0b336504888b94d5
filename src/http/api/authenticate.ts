import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../../domain/errors.ts';
import { INVALID_CREDENTIALS, type Authenticator } from '../../auth/authenticator.ts';
import type { Binding, CredentialCheck } from '../../auth/credentials.ts';
import { ANONYMOUS, type Identity } from '../../auth/identity.ts';
import { TOKEN_PREFIX, hashSecret, newSecret } from '../../auth/secrets.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { UserRow } from '../../metadata/schema.ts';
import type { Context } from '../context.ts';
import { readCredentials } from '../credentials.ts';
import { urlOrigin } from '../realm.ts';
import { invalid, type CallerIdentifier } from './route.ts';

/** The management API's login cookie (the web portal's). */
export const SESSION_COOKIE = 'berth_session';

const BASIC_CHALLENGE = 'Basic realm="berth", charset="UTF-8"';

/** A session just opened: the cookie to set and when it expires. */
export interface OpenedSession {
  username: string;
  expiresAt: number;
  setCookie: string;
}

export interface SessionSettings {
  /** Session lifetime, seconds. */
  sessionTTL: number;
  /** The configured external URLs: their origins may send state-changing requests with the cookie. */
  externalURLs: readonly string[];
}

/** Methods that change nothing: the only ones a cookie-authenticated request may make without a matching Origin. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Who calls the management API: `Authorization: Basic` with a password, a personal access token or
 * a robot secret (all checked by the Authenticator, which throttles and audits failures);
 * `Authorization: Bearer berth_pat_…` (the token names its user); or the session cookie. Nothing at
 * all is an anonymous caller; credentials that do not check out are a 401, never anonymous.
 *
 * A session is bound to the credential it was opened with (the password's generation, or a personal
 * access token) and ends with it. A state-changing request authenticated by the cookie must come
 * from Berth's own origin (`Origin` matching the request's host or an external URL), so another
 * site cannot make a signed-in browser act (CSRF); without an `Origin` header the request must carry
 * `X-Berth-Request: 1`, a header no cross-site form can send.
 */
export class ApiAuthenticator implements CallerIdentifier {
  private readonly externalOrigins: Set<string>;

  constructor(
    private readonly meta: Metadata,
    private readonly passwords: Authenticator,
    private readonly credentials: CredentialCheck,
    private readonly settings: SessionSettings,
  ) {
    this.externalOrigins = new Set(settings.externalURLs.map((url) => urlOrigin(new URL(url))));
  }

  async identify(ctx: Context): Promise<Identity> {
    const credentials = readCredentials(ctx.req);
    ctx.auth.scheme = credentials.scheme;
    const login = { client: ctx.origin.client, via: 'api' };
    switch (credentials.scheme) {
      case 'basic': {
        const { identity, reason } = await this.passwords.authenticate(credentials.username, credentials.password, login);
        if (!identity) throw unauthorized(reason);
        return identity;
      }
      case 'bearer': {
        if (!credentials.token.startsWith(TOKEN_PREFIX)) throw unauthorized('Bearer authentication on the API takes a personal access token (berth_pat_…)');
        const owner = await this.meta.tokens.findByHash(hashSecret(credentials.token));
        // An unknown token still goes through the Authenticator, so it is throttled and audited.
        const { identity, reason } = await this.passwords.authenticate(owner?.username ?? '(personal token)', credentials.token, login);
        if (!identity) throw unauthorized(reason === INVALID_CREDENTIALS ? 'invalid personal access token' : reason);
        return identity;
      }
      case 'other':
        throw unauthorized('unsupported Authorization header: use Basic, or Bearer with a personal access token');
      default:
        break;
    }
    const session = sessionId(ctx.req);
    if (session === undefined) return ANONYMOUS;
    const found = await this.meta.tokens.findSession(hashSecret(session));
    if (!found || Number(found.expires_at) <= Date.now()) throw unauthorized('session expired or unknown: log in again');
    const binding = found.credential === null ? undefined : { uid: found.uid, cred: found.credential };
    if (!(await this.credentials.valid('user', found.username, binding, { cached: false }))) {
      throw unauthorized('session ended: the password or personal access token it was opened with was changed, revoked or expired: log in again');
    }
    ctx.auth.scheme = 'other';
    if (!SAFE_METHODS.has(ctx.req.method ?? 'GET')) this.checkOrigin(ctx);
    return { kind: 'user', name: found.username, isAdmin: found.is_admin === 1, binding: binding!, sessionOpenedAt: Number(found.created_at) };
  }

  /** Refuses a cookie-authenticated change that another site's page could have sent. */
  private checkOrigin(ctx: Context): void {
    const header = ctx.req.headers.origin;
    if (header === undefined) {
      if (ctx.req.headers['x-berth-request'] === '1') return;
      throw new RegistryError('DENIED', 'a change made with the session cookie needs an Origin header of this site (or X-Berth-Request: 1)');
    }
    let origin: string | undefined;
    try {
      origin = urlOrigin(new URL(header));
    } catch {
      origin = undefined;
    }
    const own = ctx.origin.host ? urlOrigin(new URL(`${ctx.origin.scheme}://${ctx.origin.host}`)) : undefined;
    if (origin !== undefined && (origin === own || this.externalOrigins.has(origin))) return;
    throw new RegistryError('DENIED', 'cross-site request refused: the Origin header is not this registry (a change made with the session cookie must come from Berth\'s own pages)');
  }

  /**
   * The Basic challenge on API 401s — except for requests that carry the session cookie (a browser
   * running the portal would otherwise pop up its own login dialog) and for the login itself.
   */
  challenge(ctx: Context): string | undefined {
    if (sessionId(ctx.req) !== undefined) return undefined;
    if (ctx.route === 'api.createSession') return undefined;
    return BASIC_CHALLENGE;
  }

  /** Checks a user's credentials and opens a session; 401 for bad credentials, 403 for robots. */
  async open(ctx: Context, username: string, password: string): Promise<OpenedSession> {
    const { identity, reason } = await this.passwords.authenticate(username, password, { client: ctx.origin.client, via: 'session' });
    if (!identity) throw unauthorized(reason);
    if (identity.kind !== 'user') throw new RegistryError('DENIED', 'robot accounts cannot open sessions: send the robot secret with Basic authentication instead');
    const user = await this.meta.users.find(identity.name);
    if (!user || !identity.binding) throw unauthorized('invalid username or password');
    return this.openFor(ctx, user, identity.binding);
  }

  /**
   * Opens a session for `user`, whose sign-in the caller has already proven (a password, an OpenID
   * provider's callback), bound to the credential that proved it (`binding`, see credentials.ts):
   * the session ends when that credential does, and never outlives a personal access token.
   */
  async openFor(ctx: Context, user: UserRow, binding: Binding): Promise<OpenedSession> {
    await this.meta.tokens.deleteExpiredSessions();
    const id = newSecret();
    const notAfter = await this.credentials.notAfter(binding);
    const now = Date.now();
    const maxAge = notAfter === null ? this.settings.sessionTTL : Math.max(0, Math.min(this.settings.sessionTTL, Math.floor((notAfter - now) / 1000)));
    const expiresAt = now + maxAge * 1000;
    await this.meta.tokens.createSession(hashSecret(id), user.id, binding.cred, expiresAt);
    ctx.auth.identity = { kind: 'user', name: user.username, isAdmin: user.is_admin === 1, binding };
    return { username: user.username, expiresAt, setCookie: cookie(ctx, id, maxAge) };
  }

  /**
   * Proof of the password for a sensitive change (a new password, a new personal access token):
   * `currentPassword` from the request body, checked like a login (throttled, audited). INVALID
   * naming the field when it is missing or wrong.
   */
  async requirePassword(ctx: Context, username: string, currentPassword: string | undefined, why: string): Promise<void> {
    if (currentPassword === undefined) throw invalid([{ path: 'currentPassword', message: `required ${why}` }]);
    const proven = await this.passwords.authenticate(username, currentPassword, { client: ctx.origin.client, via: 'api' }, 'password');
    if (!proven.identity) throw invalid([{ path: 'currentPassword', message: 'is not your current password' }]);
  }

  /** Ends the session the request carries (if any); returns the header that clears the cookie. */
  async close(ctx: Context): Promise<string> {
    const id = sessionId(ctx.req);
    if (id !== undefined) await this.meta.tokens.deleteSession(hashSecret(id));
    return cookie(ctx, '', 0);
  }
}

/** A 401 UNAUTHORIZED (the router adds the challenge). */
export function unauthorized(message = 'authentication required'): RegistryError {
  return new RegistryError('UNAUTHORIZED', message);
}

/** The session id from the request's cookies, if it carries a well-formed one. */
export function sessionId(req: IncomingMessage): string | undefined {
  return cookieValue(req, SESSION_COOKIE);
}

/** The value of cookie `name` in the request, if it is a well-formed Berth secret (newSecret's alphabet and length). */
export function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    if (/^[A-Za-z0-9_-]{20,100}$/.test(value)) return value;
  }
  return undefined;
}

/**
 * `Set-Cookie` for one of Berth's HttpOnly cookies, Secure when the client came by https (an
 * empty value with maxAge 0 clears it).
 */
export function setCookie(ctx: Context, name: string, value: string, options: { path: string; maxAge: number; sameSite: 'Strict' | 'Lax' }): string {
  const secure = ctx.origin.scheme === 'https' ? '; Secure' : '';
  return `${name}=${value}; Path=${options.path}; Max-Age=${options.maxAge}; HttpOnly; SameSite=${options.sameSite}${secure}`;
}

/** `Set-Cookie` for the session: Path=/api, SameSite=Strict. */
function cookie(ctx: Context, value: string, maxAge: number): string {
  return setCookie(ctx, SESSION_COOKIE, value, { path: '/api', maxAge, sameSite: 'Strict' });
}
