import { RegistryError } from '../../domain/errors.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { CredentialCheck } from '../../auth/credentials.ts';
import { ANONYMOUS, identityFromSubject, type Identity } from '../../auth/identity.ts';
import { formatScope, grants, type Access } from '../../auth/scope.ts';
import { TokenError, type TokenService } from '../../auth/tokens.ts';
import type { Context } from '../context.ts';
import { readCredentials } from '../credentials.ts';
import { externalBase } from '../realm.ts';

/** What a request may do once admitted. */
export interface Grant {
  identity: Identity;
  /** Whether the request may also perform `action` on another resource (e.g. pull from a mount source). */
  can(type: string, name: string, action: string): Promise<boolean>;
}

export interface AccessDeps {
  tokens: TokenService;
  passwords: Authenticator;
  authorizer: Authorizer;
  credentials: CredentialCheck;
  externalURLs: readonly string[];
  anonymousPull: boolean;
}

/**
 * Admission to `/v2`: Bearer tokens from the token service (whose credential must still work), or
 * Basic credentials checked directly (as Harbor allows, handy for curl). Every refusal for missing or insufficient credentials is a 401
 * with a complete Bearer challenge — realm, service and the scope needed — so a client can always get
 * the right token (M11); a caller whose identity lacks the permission gets 403 DENIED instead.
 */
export class OciAccess {
  constructor(private readonly deps: AccessDeps) {}

  /** Admits the request if it may perform every action in `needs`; otherwise throws the right error. */
  async require(ctx: Context, needs: Access[]): Promise<Grant> {
    const credentials = readCredentials(ctx.req);
    ctx.auth.scheme = credentials.scheme;
    if (credentials.scheme === 'bearer') {
      let claims;
      try {
        claims = await this.deps.tokens.verifyAccess(credentials.token);
      } catch (err) {
        const reason = err instanceof TokenError ? err.reason : 'invalid';
        throw this.challenge(ctx, needs, reason === 'expired' ? 'token expired: request a new one' : 'token invalid', 'invalid_token', { token: reason });
      }
      const identity: Identity = identityFromSubject(claims.subject, claims.binding);
      ctx.auth.identity = identity;
      // A token lives minutes, but the credential behind it may be revoked sooner: a disabled or
      // deleted robot, a refreshed secret, a revoked personal token, a changed password, a deleted user.
      if (identity.kind !== 'anonymous' && !(await this.deps.credentials.valid(identity.kind, identity.name, claims.binding))) {
        throw this.challenge(ctx, needs, 'token revoked: the account or credential it was issued for was disabled, removed or changed', 'invalid_token', { token: 'revoked' });
      }
      for (const need of needs) {
        for (const action of need.actions) {
          if (grants(claims.access, need.type, need.name, action)) continue;
          // An anonymous token is never "denied": the caller may simply not have logged in yet.
          const allowed = await this.deps.authorizer.allowedActions(identity, need.type, need.name, [action]);
          if (allowed.length === 0 && identity.kind !== 'anonymous') throw denied(need, action);
          throw this.challenge(ctx, needs, identity.kind === 'anonymous' ? 'authentication required' : 'token does not grant the required scope', 'insufficient_scope');
        }
      }
      return { identity, can: async (type, name, action) => grants(claims.access, type, name, action) };
    }
    let identity: Identity = ANONYMOUS;
    if (credentials.scheme === 'basic') {
      const { identity: user, reason } = await this.deps.passwords.authenticate(credentials.username, credentials.password, { client: ctx.origin.client, via: 'registry' });
      if (!user) throw this.challenge(ctx, needs, reason);
      identity = user;
    } else if (needs.length === 0 || !this.deps.anonymousPull) {
      // No (usable) credentials: always challenge, so clients learn where to get a token.
      throw this.challenge(ctx, needs, 'authentication required');
    }
    ctx.auth.identity = identity;
    const can = async (type: string, name: string, action: string) =>
      (await this.deps.authorizer.allowedActions(identity, type, name, [action])).length > 0;
    for (const need of needs) {
      for (const action of need.actions) {
        if (await can(need.type, need.name, action)) continue;
        if (identity.kind === 'anonymous') throw this.challenge(ctx, needs, 'authentication required');
        throw denied(need, action);
      }
    }
    return { identity, can };
  }

  /** Whether a bearer token is valid, expired or invalid (for diagnostics; grants nothing). */
  async inspectBearer(token: string): Promise<'valid' | 'expired' | 'invalid'> {
    try {
      await this.deps.tokens.verifyAccess(token);
      return 'valid';
    } catch (err) {
      return err instanceof TokenError ? err.reason : 'invalid';
    }
  }

  /** The external URL this request came through: the matching configured one, or derived from the request. */
  externalURL(ctx: Context): string {
    const socket = ctx.req.socket;
    return externalBase(ctx.origin, this.deps.externalURLs, socket.localAddress ?? '127.0.0.1', socket.localPort ?? 0);
  }

  private challenge(ctx: Context, needs: Access[], message: string, error?: string, detail?: Record<string, unknown>): RegistryError {
    const realm = `${this.externalURL(ctx)}/service/token`;
    let value = `Bearer realm="${realm}",service="${this.deps.tokens.service}"`;
    if (needs.length > 0) value += `,scope="${needs.map(formatScope).join(' ')}"`;
    if (error) value += `,error="${error}"`;
    const errorDetail = needs.length > 0 ? { ...detail, scope: needs.map(formatScope) } : detail;
    return new RegistryError('UNAUTHORIZED', message, errorDetail, { headers: { 'WWW-Authenticate': value } });
  }
}

function denied(need: Access, action: string): RegistryError {
  return new RegistryError('DENIED', `requested access to the resource is denied: ${action} on ${need.type} ${need.name}`, {
    type: need.type,
    name: need.name,
    action,
  });
}
