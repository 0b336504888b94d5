import { provesSignIn, type Binding } from './credentials.ts';

/**
 * Who is making a request, once authenticated. `binding` names the credential that proved it (see
 * credentials.ts): tokens and sessions made for this identity carry it and die with it.
 * `sessionOpenedAt` is set when the request came with an API session cookie (ms).
 */
export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string; isAdmin: boolean; binding?: Binding; sessionOpenedAt?: number }
  | { kind: 'robot'; name: string; id: number; binding?: Binding };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

/** Robot login names start with this (as Harbor's do), so a token's subject tells robots from users. */
export const ROBOT_PREFIX = 'robot$';

/** The name to show in logs and audit for an identity. */
export function identityName(identity: Identity): string | undefined {
  return identity.kind === 'anonymous' ? undefined : identity.name;
}

/** The identity a token's subject and binding name (tokens carry their grants; this is for decisions and logs). */
export function identityFromSubject(subject: string | undefined, binding?: Binding): Identity {
  if (subject === undefined) return ANONYMOUS;
  const base = subject.startsWith(ROBOT_PREFIX) ? ({ kind: 'robot', name: subject, id: 0 } as const) : ({ kind: 'user', name: subject, isAdmin: false } as const);
  return binding ? { ...base, binding } : base;
}

/** How long after a password login a session still counts as proof of the password (to create tokens). */
export const FRESH_SESSION_MS = 10 * 60_000;

/**
 * Whether this request proved the user's own sign-in: Basic with the password (local or
 * directory), or a session opened with the password or through the OpenID provider within
 * FRESH_SESSION_MS. Changing the password and creating personal access tokens need this (or the
 * current password in the request), so a stolen token cannot turn itself into the account.
 */
export function provesPassword(identity: Identity, now = Date.now()): boolean {
  if (identity.kind !== 'user' || !identity.binding || !provesSignIn(identity.binding.cred)) return false;
  return identity.sessionOpenedAt === undefined || now - identity.sessionOpenedAt <= FRESH_SESSION_MS;
}
