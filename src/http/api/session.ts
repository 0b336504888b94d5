import { z } from 'zod';
import type { ApiServices } from './common.ts';
import { isoTime } from './common.ts';
import { operation, type Operation } from './route.ts';

const whoami = z.object({
  kind: z.enum(['user', 'robot', 'anonymous']),
  name: z.string().nullable().describe('null for anonymous callers'),
  isAdmin: z.boolean(),
});

/** `/auth/session` (the portal's cookie login and logout) and `/auth/whoami`. */
export function sessionOperations(services: ApiServices): Operation[] {
  return [
    operation({
      id: 'createSession',
      method: 'POST',
      path: '/auth/session',
      tag: 'auth',
      summary: 'Log in: check a user\'s password and set the session cookie',
      description: 'Sets berth_session (HttpOnly, SameSite=Strict, Path=/api; Secure over https). Robot accounts cannot open sessions.',
      auth: 'none',
      body: z.strictObject({ username: z.string().min(1).max(255), password: z.string().min(1).max(1024) }),
      status: 201,
      response: z.object({ username: z.string(), expiresAt: isoTime }),
      errors: [401, 403, 429],
      handler: async ({ ctx, body }) => {
        const session = await services.sessions.open(ctx, body.username, body.password);
        return { status: 201, body: { username: session.username, expiresAt: new Date(session.expiresAt).toISOString() }, headers: { 'Set-Cookie': session.setCookie } };
      },
    }),
    operation({
      id: 'deleteSession',
      method: 'DELETE',
      path: '/auth/session',
      tag: 'auth',
      summary: 'Log out: end the session and clear its cookie',
      auth: 'none',
      status: 204,
      handler: async ({ ctx }) => ({ status: 204, headers: { 'Set-Cookie': await services.sessions.close(ctx) } }),
    }),
    operation({
      id: 'whoami',
      method: 'GET',
      path: '/auth/whoami',
      tag: 'auth',
      summary: 'Who the credentials of this request belong to',
      response: whoami,
      handler: async ({ identity }) => ({
        body:
          identity.kind === 'anonymous'
            ? { kind: 'anonymous', name: null, isAdmin: false }
            : { kind: identity.kind, name: identity.name, isAdmin: await services.authorizer.isAdmin(identity) },
      }),
    }),
  ];
}
