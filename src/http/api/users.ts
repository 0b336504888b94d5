import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isUsername } from '../../auth/external.ts';
import { hashPassword } from '../../auth/passwords.ts';
import type { Identity } from '../../auth/identity.ts';
import { USER_SORTS, UserExistsError } from '../../metadata/users.ts';
import type { UserRow } from '../../metadata/schema.ts';
import { audit, conflict, isoTime, iso, notFound, pageOf, pageQuery, paged, refuse, requireSignedIn, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** The same rule as `berth user add` for local users. */
const LOCAL_USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const password = z.string().min(8, 'at least 8 characters').max(1024);

const SOURCES = ['local', 'ldap', 'oidc'] as const;
const SOURCE_NAMES: Record<string, string> = { ldap: 'LDAP', oidc: 'OpenID Connect' };

const user = z.object({
  username: z.string(),
  admin: z.boolean(),
  createdAt: isoTime,
  source: z.string().describe('where the account lives: local, ldap or oidc'),
  email: z.string().nullable(),
  lastLoginAt: isoTime.nullable().describe('the last sign-in through LDAP or OIDC; null for local users and before the first'),
});
const nameParam = z.object({ name: z.string().min(1).max(255).describe('a user name, or "me" for the caller') });

function view(row: UserRow) {
  return { username: row.username, admin: row.is_admin === 1, createdAt: iso(row.created_at), source: row.source, email: row.email, lastLoginAt: iso(row.last_login_at) };
}

/** Why a user of an identity source has no password to set in Berth. */
function noPasswordHere(row: UserRow): string {
  const where = row.source === 'ldap' ? 'change the password in the directory' : 'change the password at the OpenID provider';
  return `${row.username} signs in through ${SOURCE_NAMES[row.source] ?? row.source}: ${where}`;
}

/** `/users`: administrators manage users; every user may read themself and change their password (`me`). */
export function userOperations(services: ApiServices): Operation[] {
  const { meta, authorizer } = services;

  /** The user a `{name}` path names (`me`: the caller), if the caller may act on it. */
  async function target(identity: Identity, name: string, action: 'read' | 'change'): Promise<{ row: UserRow; self: boolean; admin: boolean }> {
    requireSignedIn(identity);
    if (name === 'me' && identity.kind !== 'user') throw refuse(identity, 'robot accounts are not users: they have no profile or password');
    const resolved = name === 'me' && identity.kind === 'user' ? identity.name : name;
    const self = identity.kind === 'user' && identity.name === resolved;
    const admin = await authorizer.isAdmin(identity);
    if (!self && !admin) throw refuse(identity, `system administrator needed to ${action} other users`);
    const row = await meta.users.find(resolved);
    if (!row) throw notFound(`user "${resolved}" not found`);
    return { row, self, admin };
  }

  /** Refuses a change that would leave the registry without an administrator. */
  async function keepAnAdmin(row: UserRow, what: string): Promise<void> {
    if (row.is_admin === 1 && (await meta.users.countAdmins()) <= 1) throw conflict(`cannot ${what} "${row.username}": it is the last system administrator`);
  }

  return [
    operation({
      id: 'listUsers',
      method: 'GET',
      path: '/users',
      tag: 'users',
      summary: 'List users (administrators)',
      query: z.object({
        q: z.string().max(255).optional().describe('substring of the user name (ASCII case ignored)'),
        source: z.enum(SOURCES).optional().describe('only users whose account lives there'),
        sort: z.enum(USER_SORTS).optional().describe('order, descending with a leading "-": username (default), createdAt, lastLoginAt (never counts as longest ago)'),
        ...pageQuery,
      }),
      response: pageOf(user),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        if (!(await authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
        const { items, total } = await meta.users.search({ q: query.q, source: query.source, sort: query.sort, offset: (query.page - 1) * query.pageSize, limit: query.pageSize });
        return paged(ctx, query, items.map(view), total);
      },
    }),
    operation({
      id: 'createUser',
      method: 'POST',
      path: '/users',
      tag: 'users',
      summary: 'Create a user (administrators); a generated password is shown once when none is given',
      description:
        'A local user (the default) has a Berth password. A user of `source` ldap or oidc is registered ahead of their first sign-in ' +
        '(needed when auth.oidc.autoOnboard is off) and has no password here: the name must be the one the source will give. ' +
        'Local names: 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit; ldap/oidc names: 1-255 characters without "/", ":" or control characters. "me" is reserved.',
      body: z
        .strictObject({
          username: z.string().min(1).max(255),
          password: password.optional(),
          admin: z.boolean().optional(),
          source: z.enum(SOURCES).optional().describe('where the account lives (default local)'),
        })
        .superRefine((b, check) => {
          const local = (b.source ?? 'local') === 'local';
          if (b.username === 'me') check.addIssue({ code: 'custom', path: ['username'], message: '"me" is reserved (it names the caller in paths)' });
          else if (local && !LOCAL_USERNAME.test(b.username)) {
            check.addIssue({ code: 'custom', path: ['username'], message: '1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit' });
          } else if (!local && !isUsername(b.username)) {
            check.addIssue({ code: 'custom', path: ['username'], message: 'at most 255 characters, without "/", ":", control characters, surrounding spaces or the "robot$" prefix' });
          }
          if (!local && b.password !== undefined) {
            check.addIssue({ code: 'custom', path: ['password'], message: `a ${b.source} user signs in through ${SOURCE_NAMES[b.source!]} and has no password in Berth` });
          }
        }),
      status: 201,
      response: user.extend({ password: z.string().optional().describe('the generated password, only when none was given (local users)') }),
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        if (!(await authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
        const source = body.source ?? 'local';
        const generated = source === 'local' && body.password === undefined ? randomBytes(15).toString('base64url') : undefined;
        try {
          if (source === 'local') await meta.users.create(body.username, await hashPassword(body.password ?? generated!), body.admin ?? false);
          // The person's id at the source is learnt, and tied to the row, at their first sign-in.
          else await meta.users.createExternal({ username: body.username, source, externalId: null, isAdmin: body.admin ?? false });
        } catch (err) {
          if (err instanceof UserExistsError) throw conflict(`user "${body.username}" already exists`);
          throw err;
        }
        await audit(services, ctx, identity, { action: 'user.create', resourceType: 'user', resource: body.username, detail: { admin: body.admin ?? false, source } });
        authorizer.forget(body.username);
        services.credentials.forget(body.username);
        const row = (await meta.users.find(body.username))!;
        return { status: 201, body: { ...view(row), ...(generated ? { password: generated } : {}) } };
      },
    }),
    operation({
      id: 'getUser',
      method: 'GET',
      path: '/users/{name}',
      tag: 'users',
      summary: 'A user with the groups of their identity source (administrators; anyone for "me")',
      params: nameParam,
      response: user.extend({ groups: z.array(z.string()).describe('names of the LDAP or OIDC groups the user was in at their last sign-in') }),
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        const { row } = await target(identity, params.name, 'read');
        return { body: { ...view(row), groups: (await meta.groups.ofUser(row.id)).map((g) => g.name) } };
      },
    }),
    operation({
      id: 'updateUser',
      method: 'PATCH',
      path: '/users/{name}',
      tag: 'users',
      summary: 'Change a password or the administrator flag (a user may change only their own password)',
      description:
        'Changing your own password needs `currentPassword`. An administrator resetting another user\'s password does not. ' +
        'Either way every session of that user ends and every refresh token from the old password stops working; personal access tokens keep working. ' +
        'Users of LDAP or OIDC have no password in Berth: setting one is refused (409).',
      params: nameParam,
      body: z.strictObject({
        password: password.optional(),
        currentPassword: z.string().max(1024).optional().describe('your current password: required to change your own password'),
        admin: z.boolean().optional(),
      }),
      response: user,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const { row, self, admin } = await target(identity, params.name, 'change');
        if (body.admin !== undefined && !admin) throw refuse(identity, 'system administrator needed to change "admin"');
        if (body.admin !== undefined && services.onboarding?.adminManaged(row.source)) {
          throw conflict(`"${row.username}" is an administrator or not as the ${row.source === 'ldap' ? 'directory' : 'OpenID provider'}'s admin group says, at each sign-in: change the group membership there`);
        }
        if (body.admin === false) await keepAnAdmin(row, 'take administration from');
        if (body.password !== undefined && row.source !== 'local') throw conflict(noPasswordHere(row));
        // A stolen token or session must not be able to take the account over by changing its password.
        if (body.password !== undefined && self) await services.sessions.requirePassword(ctx, row.username, body.currentPassword, 'to change your password');
        if (body.password !== undefined) {
          await meta.users.setPassword(row.username, await hashPassword(body.password));
          await meta.tokens.deleteSessionsOf(row.id);
        }
        if (body.admin !== undefined) await meta.users.setAdmin(row.username, body.admin);
        authorizer.forget(row.username);
        services.credentials.forget(row.username);
        const detail: Record<string, unknown> = {};
        if (body.password !== undefined) detail.passwordChanged = true;
        if (body.password !== undefined && !self) detail.reset = true;
        if (body.admin !== undefined) detail.admin = body.admin;
        if (Object.keys(detail).length > 0) await audit(services, ctx, identity, { action: 'user.update', resourceType: 'user', resource: row.username, detail });
        return { body: view((await meta.users.find(row.username))!) };
      },
    }),
    operation({
      id: 'deleteUser',
      method: 'DELETE',
      path: '/users/{name}',
      tag: 'users',
      summary: 'Delete a user with their memberships, tokens and sessions (administrators)',
      params: nameParam,
      status: 204,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        if (!(await authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
        const { row } = await target(identity, params.name, 'change');
        await keepAnAdmin(row, 'delete');
        await meta.users.delete(row.username);
        authorizer.forget(row.username);
        services.credentials.forget(row.username);
        await audit(services, ctx, identity, { action: 'user.delete', resourceType: 'user', resource: row.username });
        return { status: 204 };
      },
    }),
  ];
}
