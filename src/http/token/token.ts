import type { Authorizer } from '../../auth/authorizer.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { CredentialCheck } from '../../auth/credentials.ts';
import { ANONYMOUS, identityFromSubject, identityName, type Identity } from '../../auth/identity.ts';
import { parseScopes, formatScope, type Access } from '../../auth/scope.ts';
import { TokenError, type TokenService } from '../../auth/tokens.ts';
import { RegistryError } from '../../domain/errors.ts';
import type { Context, Route } from '../context.ts';
import { readSmallBody } from '../body.ts';
import { readCredentials } from '../credentials.ts';
import { sendJSON } from '../respond.ts';

export interface TokenDeps {
  tokens: TokenService;
  passwords: Authenticator;
  authorizer: Authorizer;
  credentials: CredentialCheck;
}

const FORM_LIMIT = 64 * 1024;

/**
 * The token service at `/service/token`: `GET` with Basic credentials (Docker token spec) and
 * `POST` with an OAuth2 form (`password` and `refresh_token` grants), which containerd tries first.
 * Tokens grant the intersection of the scopes asked for and what the caller may do; anonymous
 * callers get a token too (granting what anonymous access allows, possibly nothing).
 */
export function tokenRoutes(deps: TokenDeps): Route[] {
  async function grant(identity: Identity, scopes: Access[]): Promise<Access[]> {
    const granted: Access[] = [];
    for (const scope of scopes) {
      const actions = await deps.authorizer.allowedActions(identity, scope.type, scope.name, scope.actions);
      if (actions.length > 0) granted.push({ ...scope, actions });
    }
    return granted;
  }

  /**
   * A refresh token bound to the credential that proved the user (it dies with that password or
   * personal access token, and never outlives the token); none for robots.
   */
  async function refreshTokenFor(identity: Identity): Promise<string | undefined> {
    if (identity.kind !== 'user' || !identity.binding) return undefined;
    return deps.tokens.issueRefresh(identity.name, identity.binding, await deps.credentials.notAfter(identity.binding));
  }

  async function issue(identity: Identity, access: Access[]) {
    return deps.tokens.issueAccess(identityName(identity), access, identity.kind === 'anonymous' ? undefined : identity.binding);
  }

  function loginFailed(ctx: Context, username: string): void {
    ctx.log.warn({ username: username.slice(0, 255), client: ctx.origin.client }, 'login failed');
  }

  async function get(ctx: Context): Promise<void> {
    const credentials = readCredentials(ctx.req);
    ctx.auth.scheme = credentials.scheme;
    let identity: Identity = ANONYMOUS;
    if (credentials.scheme === 'basic') {
      const { identity: user, reason } = await deps.passwords.authenticate(credentials.username, credentials.password, {
        client: ctx.origin.client,
        via: 'token',
        scope: ctx.query.getAll('scope').join(' '),
      });
      if (!user) {
        loginFailed(ctx, credentials.username);
        throw new RegistryError('UNAUTHORIZED', reason, undefined, {
          headers: { 'WWW-Authenticate': `Basic realm="${deps.tokens.service}", charset="UTF-8"` },
        });
      }
      identity = user;
    }
    ctx.auth.identity = identity;
    const access = await grant(identity, parseScopes(ctx.query.getAll('scope')));
    const issued = await issue(identity, access);
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    if (ctx.query.get('offline_token') === 'true') {
      const refresh = await refreshTokenFor(identity);
      if (refresh) body.refresh_token = refresh;
    }
    sendJSON(ctx.res, 200, body, { 'Cache-Control': 'no-store' });
  }

  async function post(ctx: Context): Promise<void> {
    const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      oauthError(ctx, 400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
      return;
    }
    const form = new URLSearchParams((await readSmallBody(ctx.req, FORM_LIMIT)).toString('utf8'));
    const grantType = form.get('grant_type');
    let identity: Identity;
    if (grantType === 'password') {
      const username = form.get('username');
      const password = form.get('password');
      if (!username || password === null) return oauthError(ctx, 400, 'invalid_request', 'username and password are required');
      const { identity: user, reason } = await deps.passwords.authenticate(username, password, { client: ctx.origin.client, via: 'token', scope: form.getAll('scope').join(' ') });
      if (!user) {
        loginFailed(ctx, username);
        return oauthError(ctx, 400, 'invalid_grant', reason);
      }
      identity = user;
    } else if (grantType === 'refresh_token') {
      const refreshToken = form.get('refresh_token');
      if (!refreshToken) return oauthError(ctx, 400, 'invalid_request', 'refresh_token is required');
      let claims;
      try {
        claims = await deps.tokens.verifyRefresh(refreshToken);
      } catch (err) {
        const reason = err instanceof TokenError && err.reason === 'expired' ? 'refresh token expired' : 'refresh token invalid';
        return oauthError(ctx, 400, 'invalid_grant', reason);
      }
      identity = identityFromSubject(claims.subject, claims.binding);
      if (identity.kind === 'anonymous' || !(await deps.credentials.valid(identity.kind, identity.name, claims.binding, { cached: false }))) {
        return oauthError(ctx, 400, 'invalid_grant', 'refresh token revoked: the password or personal access token it came from was changed, revoked or expired, or the account was removed');
      }
    } else {
      return oauthError(ctx, 400, 'unsupported_grant_type', 'grant_type must be password or refresh_token');
    }
    ctx.auth.identity = identity;
    const access = await grant(identity, parseScopes(form.getAll('scope')));
    const issued = await issue(identity, access);
    const body: Record<string, unknown> = {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
      scope: access.map(formatScope).join(' '),
    };
    if (grantType === 'password' && form.get('access_type') === 'offline') {
      const refresh = await refreshTokenFor(identity);
      if (refresh) body.refresh_token = refresh;
    }
    sendJSON(ctx.res, 200, body, { 'Cache-Control': 'no-store' });
  }

  return [
    {
      name: 'token',
      methods: ['GET', 'POST'],
      pattern: /^\/service\/token\/?$/,
      handler: (ctx) => (ctx.req.method === 'POST' ? post(ctx) : get(ctx)),
    },
  ];
}

function oauthError(ctx: Context, status: number, error: string, description: string): void {
  sendJSON(ctx.res, status, { error, error_description: description }, { 'Cache-Control': 'no-store' });
}
