/** Who is making a request, once authenticated. */
export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string; isAdmin: boolean }
  | { kind: 'robot'; name: string; id: number };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

/** Robot login names start with this (as Harbor's do), so a token's subject tells robots from users. */
export const ROBOT_PREFIX = 'robot$';

/** The name to show in logs and audit for an identity. */
export function identityName(identity: Identity): string | undefined {
  return identity.kind === 'anonymous' ? undefined : identity.name;
}

/** The identity a token's subject names (tokens carry their grants; this is for decisions and logs). */
export function identityFromSubject(subject: string | undefined): Identity {
  if (subject === undefined) return ANONYMOUS;
  return subject.startsWith(ROBOT_PREFIX) ? { kind: 'robot', name: subject, id: 0 } : { kind: 'user', name: subject, isAdmin: false };
}
