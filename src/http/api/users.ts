import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { hashPassword } from '../../auth/passwords.ts';
import type { Identity } from '../../auth/identity.ts';
import { UserExistsError } from '../../metadata/users.ts';
import type { UserRow } from '../../metadata/schema.ts';
import { audit, conflict, isoTime, iso, notFound, pageOf, pageQuery, paged, refuse, requireSignedIn, slice, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** The same rule as `berth user add`. */
const username = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, '1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit')
  .refine((name) => name !== 'me', '"me" is reserved (it names the caller in paths)');
const password = z.string().min(8, 'at least 8 characters').max(1024);

const user = z.object({ username: z.string(), admin: z.boolean(), createdAt: isoTime });
const nameParam = z.object({ name: z.string().min(1).max(255).describe('a user name, or "me" for the caller') });

function view(row: UserRow) {
  return { username: row.username, admin: row.is_admin === 1, createdAt: iso(row.created_at) };
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
      query: z.object({ q: z.string().max(255).optional().describe('substring of the user name'), ...pageQuery }),
      response: pageOf(user),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        if (!(await authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
        const all = (await meta.users.list()).filter((u) => !query.q || u.username.includes(query.q));
        return paged(ctx, query, slice(all, query).map(view), all.length);
      },
    }),
    operation({
      id: 'createUser',
      method: 'POST',
      path: '/users',
      tag: 'users',
      summary: 'Create a user (administrators); a generated password is shown once when none is given',
      body: z.strictObject({ username, password: password.optional(), admin: z.boolean().optional() }),
      status: 201,
      response: user.extend({ password: z.string().optional().describe('the generated password, only when none was given') }),
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        if (!(await authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
        const generated = body.password === undefined ? randomBytes(15).toString('base64url') : undefined;
        try {
          await meta.users.create(body.username, await hashPassword(body.password ?? generated!), body.admin ?? false);
        } catch (err) {
          if (err instanceof UserExistsError) throw conflict(`user "${body.username}" already exists`);
          throw err;
        }
        await audit(services, ctx, identity, { action: 'user.create', resourceType: 'user', resource: body.username, detail: { admin: body.admin ?? false } });
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
      summary: 'A user (administrators; anyone for "me")',
      params: nameParam,
      response: user,
      errors: [403, 404],
      handler: async ({ identity, params }) => ({ body: view((await target(identity, params.name, 'read')).row) }),
    }),
    operation({
      id: 'updateUser',
      method: 'PATCH',
      path: '/users/{name}',
      tag: 'users',
      summary: 'Change a password or the administrator flag (a user may change only their own password)',
      description:
        'Changing your own password needs `currentPassword`. An administrator resetting another user\'s password does not. ' +
        'Either way every session of that user ends and every refresh token from the old password stops working; personal access tokens keep working.',
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
        if (body.admin === false) await keepAnAdmin(row, 'take administration from');
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
