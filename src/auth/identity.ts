/** Who is making a request, once authenticated. Robots and tokens join this union later. */
export type Identity =
  | { kind: 'anonymous' }
  | { kind: 'user'; name: string; isAdmin: boolean };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

/** The name to show in logs and audit for an identity. */
export function identityName(identity: Identity): string | undefined {
  return identity.kind === 'anonymous' ? undefined : identity.name;
}
