import { z } from 'zod';
import { provesPassword, type Identity } from '../../auth/identity.ts';
import type { PersonalTokenRow, UserRow } from '../../metadata/schema.ts';
import { audit, conflict, expiresInDays, expiryFrom, iso, isoTime, notFound, pageOf, pageQuery, paged, refuse, requireSignedIn, slice, type ApiServices } from './common.ts';
import { issuePersonalToken, personalTokenName } from './personal-tokens.ts';
import { invalid, operation, type Operation } from './route.ts';

const token = z.object({
  name: z.string(),
  prefix: z.string().describe('the first characters of the token, to recognise it'),
  expiresAt: isoTime.nullable(),
  revoked: z.boolean(),
  lastUsedAt: isoTime.nullable(),
  createdAt: isoTime,
});

function view(row: PersonalTokenRow) {
  return {
    name: row.name,
    prefix: row.prefix,
    expiresAt: iso(row.expires_at),
    revoked: row.revoked === 1,
    lastUsedAt: iso(row.last_used_at),
    createdAt: iso(row.created_at),
  };
}

/** `/users/me/tokens`: the caller's own personal access tokens (users only; robots have their secret). */
export function tokenOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function caller(identity: Identity): Promise<UserRow> {
    requireSignedIn(identity);
    if (identity.kind !== 'user') throw refuse(identity, 'robot accounts cannot have personal access tokens');
    const user = await meta.users.find(identity.name);
    if (!user) throw notFound(`user "${identity.name}" not found`);
    return user;
  }

  /** Refuses a token that would outlive the personal access token this request is authenticated by. */
  async function notLongerLived(identity: Identity, expiresAt: number | null): Promise<void> {
    // Only a request authenticated by an expiring personal access token has a limit (notAfter).
    const limit = identity.kind === 'user' && identity.binding ? await services.credentials.notAfter(identity.binding) : null;
    if (limit === null) return;
    if (expiresAt === null || expiresAt > limit) {
      throw invalid([{ path: 'expiresInDays', message: `must not outlive the personal access token this request is authenticated by (it expires ${iso(limit)})` }]);
    }
  }

  return [
    operation({
      id: 'listTokens',
      method: 'GET',
      path: '/users/me/tokens',
      tag: 'tokens',
      summary: "The caller's personal access tokens (never the tokens themselves)",
      query: z.object(pageQuery),
      response: pageOf(token),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        const all = await meta.tokens.list((await caller(identity)).id);
        return paged(ctx, query, slice(all, query).map(view), all.length);
      },
    }),
    operation({
      id: 'createToken',
      method: 'POST',
      path: '/users/me/tokens',
      tag: 'tokens',
      summary: 'Create a personal access token (berth_pat_…); it is in this answer only',
      description:
        'Needs proof of the password: Basic authentication with the password, a session opened with the password in the last 10 minutes, ' +
        'or `currentPassword` in the body. A request authenticated by a personal access token cannot create a token that outlives it.',
      body: z.strictObject({
        name: personalTokenName,
        expiresInDays: expiresInDays.optional(),
        currentPassword: z.string().max(1024).optional().describe('your password, unless this request already proves it'),
      }),
      status: 201,
      response: token.extend({ token: z.string() }),
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        const user = await caller(identity);
        if (!provesPassword(identity)) await services.sessions.requirePassword(ctx, user.username, body.currentPassword, 'to create a token without signing in with your password');
        const expiresAt = expiryFrom(body.expiresInDays);
        await notLongerLived(identity, expiresAt);
        const issued = await issuePersonalToken(meta, user.id, body.name, expiresAt);
        if (!issued) throw conflict(`you already have a token named "${body.name}" (revoked ones keep their name)`);
        await audit(services, ctx, identity, { action: 'token.create', resourceType: 'token', resource: `${user.username}/${body.name}`, detail: { expiresAt: iso(expiresAt) } });
        return { status: 201, body: { ...view(issued.row), token: issued.token } };
      },
    }),
    operation({
      id: 'revokeToken',
      method: 'DELETE',
      path: '/users/me/tokens/{name}',
      tag: 'tokens',
      summary: 'Revoke a personal access token: it stops working at once',
      params: z.object({ name: z.string().min(1).max(128) }),
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const user = await caller(identity);
        if (!(await meta.tokens.revoke(user.id, params.name))) throw notFound("you have no token of that name");
        services.credentials.forget(user.username);
        await audit(services, ctx, identity, { action: 'token.revoke', resourceType: 'token', resource: `${user.username}/${params.name}` });
        return { status: 204 };
      },
    }),
  ];
}
