import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../../domain/errors.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import { ANONYMOUS, type Identity } from '../../auth/identity.ts';
import { TOKEN_PREFIX, hashSecret, newSecret } from '../../auth/secrets.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { Context } from '../context.ts';
import { readCredentials } from '../credentials.ts';
import type { CallerIdentifier } from './route.ts';

/** The management API's login cookie (the web portal's). */
export const SESSION_COOKIE = 'berth_session';

const BASIC_CHALLENGE = 'Basic realm="berth", charset="UTF-8"';

/** A session just opened: the cookie to set and when it expires. */
export interface OpenedSession {
  username: string;
  expiresAt: number;
  setCookie: string;
}

/**
 * Who calls the management API: `Authorization: Basic` with a password, a personal access token or
 * a robot secret (all checked by the Authenticator, which throttles and audits failures);
 * `Authorization: Bearer berth_pat_…` (the token names its user); or the session cookie. Nothing at
 * all is an anonymous caller; credentials that do not check out are a 401, never anonymous.
 */
export class ApiAuthenticator implements CallerIdentifier {
  constructor(
    private readonly meta: Metadata,
    private readonly passwords: Authenticator,
    /** Session lifetime, seconds. */
    private readonly sessionTTL: number,
  ) {}

  async identify(ctx: Context): Promise<Identity> {
    const credentials = readCredentials(ctx.req);
    ctx.auth.scheme = credentials.scheme;
    const login = { client: ctx.origin.client, via: 'api' };
    switch (credentials.scheme) {
      case 'basic': {
        const identity = await this.passwords.authenticate(credentials.username, credentials.password, login);
        if (!identity) throw unauthorized('invalid username or password');
        return identity;
      }
      case 'bearer': {
        if (!credentials.token.startsWith(TOKEN_PREFIX)) throw unauthorized('Bearer authentication on the API takes a personal access token (berth_pat_…)');
        const owner = await this.meta.tokens.findByHash(hashSecret(credentials.token));
        // An unknown token still goes through the Authenticator, so it is throttled and audited.
        const identity = await this.passwords.authenticate(owner?.username ?? '(personal token)', credentials.token, login);
        if (!identity) throw unauthorized('invalid, expired or revoked personal access token');
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
    ctx.auth.scheme = 'other';
    return { kind: 'user', name: found.username, isAdmin: found.is_admin === 1 };
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
    const identity = await this.passwords.authenticate(username, password, { client: ctx.origin.client, via: 'session' });
    if (!identity) throw unauthorized('invalid username or password');
    if (identity.kind !== 'user') throw new RegistryError('DENIED', 'robot accounts cannot open sessions: send the robot secret with Basic authentication instead');
    const user = await this.meta.users.find(identity.name);
    if (!user) throw unauthorized('invalid username or password');
    await this.meta.tokens.deleteExpiredSessions();
    const id = newSecret();
    const expiresAt = Date.now() + this.sessionTTL * 1000;
    await this.meta.tokens.createSession(hashSecret(id), user.id, expiresAt);
    ctx.auth.identity = identity;
    return { username: user.username, expiresAt, setCookie: cookie(ctx, id, this.sessionTTL) };
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
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (/^[A-Za-z0-9_-]{20,100}$/.test(value)) return value;
  }
  return undefined;
}

/** `Set-Cookie` for the session: HttpOnly, SameSite=Strict, Path=/api, Secure when the client came by https. */
function cookie(ctx: Context, value: string, maxAge: number): string {
  const secure = ctx.origin.scheme === 'https' ? '; Secure' : '';
  return `${SESSION_COOKIE}=${value}; Path=/api; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure}`;
}
