/**
 * What Berth learns about a person from an external identity source (an LDAP directory or an
 * OpenID provider) when they sign in. The source-specific code (src/auth/ldap/, src/auth/oidc/)
 * produces it; src/auth/onboarding.ts turns it into a Berth user with its groups and admin flag.
 */
export interface ExternalIdentity {
  source: ExternalSource;
  /**
   * The person's stable id at the source: the entry's DN (LDAP), `<issuer> <sub>` (OIDC). A user
   * row is tied to it at first sign-in; a later sign-in under the same name with another id is
   * refused (a re-used name is not the same person).
   */
  externalId: string;
  /** The Berth user name (LDAP: the uid attribute; OIDC: the username claim), already checked by isUsername. */
  username: string;
  email?: string;
  /** The groups the person belongs to now (nested ones included where configured). */
  groups: ExternalGroup[];
  /** Whether the source's administrators' group is among them (then a system administrator in Berth). */
  admin: boolean;
  /**
   * OIDC: the provider's refresh token, when it sent one: kept sealed to ask the provider later
   * whether the person is still accepted. A secret: never logged, never returned.
   */
  refreshToken?: string;
}

export type ExternalSource = 'ldap' | 'oidc';

/** A group at the source: LDAP: the group entry's DN and its name attribute; OIDC: the claim's value for both. */
export interface ExternalGroup {
  externalId: string;
  name: string;
}

/**
 * The identity source cannot answer (down, timed out, TLS refused, a malformed answer). Callers
 * get 503 UNAVAILABLE with this message, never a 500; the message names the source and the cause
 * but never a password or token.
 */
export class IdentitySourceUnavailableError extends Error {
  override name = 'IdentitySourceUnavailableError';
}

/**
 * Whether `name` may be a Berth user name taken from a source: 1–255 characters, no control
 * characters, no `/` or `:` (they would break Basic credentials and URL paths), not the robot
 * prefix.
 */
export function isUsername(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= 255 && !/[\u0000-\u001f\u007f/:]/.test(name) && !name.startsWith('robot$') && name.trim() === name;
}
