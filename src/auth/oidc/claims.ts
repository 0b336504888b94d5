import type { ExternalGroup, ExternalIdentity } from '../external.ts';
import { isUsername } from '../external.ts';
import { OidcError } from './errors.ts';

/** At most this many groups are taken from a claim; the rest are ignored (and logged). */
export const MAX_GROUPS = 500;
const MAX_GROUP_LENGTH = 255;

/** The claim options of `auth.oidc` that shape an identity. */
export interface ClaimOptions {
  usernameClaim: string;
  groupsClaim: string;
  adminGroup?: string;
}

/** What {@link groupsFrom} found, with how many values it dropped (for a log line). */
export interface GroupsResult {
  groups: string[];
  dropped: number;
}

/**
 * The groups in a claim's value: an array of strings (a single string is one group; absent or
 * null is none). Non-strings, empty or over-long names and names with control characters are
 * dropped, duplicates removed, and at most {@link MAX_GROUPS} kept, in the provider's order.
 */
export function groupsFrom(value: unknown): GroupsResult {
  const values = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
  const seen = new Set<string>();
  let dropped = 0;
  for (const item of values) {
    // eslint-disable-next-line no-control-regex
    if (typeof item !== 'string' || item === '' || item.length > MAX_GROUP_LENGTH || /[\u0000-\u001f\u007f]/.test(item) || seen.size >= MAX_GROUPS) {
      dropped++;
      continue;
    }
    seen.add(item);
  }
  return { groups: [...seen], dropped };
}

/**
 * Builds the identity from validated claims (the ID token's, completed from userinfo).
 * Throws {@link OidcError} (`claims`) when the user name claim is missing, not a string, or not a
 * valid Berth user name; the message names the claim but never echoes its value.
 */
export function identityFromClaims(issuer: string, claims: Record<string, unknown>, options: ClaimOptions, provider: string): { identity: ExternalIdentity; droppedGroups: number } {
  const sub = claims['sub'];
  if (typeof sub !== 'string' || sub === '') throw new OidcError('claims', `${provider} sent no subject (sub) claim`);
  const username = claims[options.usernameClaim];
  if (username === undefined || username === null) {
    throw new OidcError('claims', `${provider} sent no "${options.usernameClaim}" claim for the user name (check auth.oidc.usernameClaim and the scopes)`);
  }
  if (typeof username !== 'string' || !isUsername(username)) {
    throw new OidcError(
      'claims',
      `the "${options.usernameClaim}" claim from ${provider} is not a usable user name (1–255 characters, no '/', ':', control characters or surrounding spaces)`,
    );
  }
  const { groups, dropped } = groupsFrom(claims[options.groupsClaim]);
  const rawEmail = claims['email'];
  // eslint-disable-next-line no-control-regex
  const email = typeof rawEmail === 'string' && rawEmail.length <= 320 && rawEmail.includes('@') && !/[\u0000-\u001f\u007f\s]/.test(rawEmail) ? rawEmail : undefined;
  const identity: ExternalIdentity = {
    source: 'oidc',
    externalId: `${issuer} ${sub}`,
    username,
    groups: groups.map((name): ExternalGroup => ({ externalId: name, name })),
    admin: options.adminGroup !== undefined && groups.includes(options.adminGroup),
  };
  if (email !== undefined) identity.email = email;
  return { identity, droppedGroups: dropped };
}
