import { z } from 'zod';

// The configuration of external identity sources (`auth.ldap`, `auth.oidc`): kept apart from the
// main schema for size; every option is in the README's configuration table.

/** Seconds from a number or a `15m`-style string (the main schema's duration). */
export type DurationSchema = z.ZodType<number, number | string>;

function parseURL(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/** `auth.ldap`: search-and-bind against a directory (OpenLDAP, Active Directory, FreeIPA…). */
export function ldapSchema(duration: DurationSchema) {
  return z
    .strictObject({
      /** `ldap://host[:389]` or `ldaps://host[:636]`. */
      url: z.string().refine((u) => /^ldaps?:$/.test(parseURL(u)?.protocol ?? ''), 'must be an ldap:// or ldaps:// URL, e.g. ldaps://ldap.example.com'),
      /** Upgrade an ldap:// connection with StartTLS before anything is sent. */
      startTLS: z.boolean().default(false),
      /** PEM file of the CA that signed the directory's certificate (unset: the system's CAs). */
      caFile: z.string().min(1).optional(),
      /** Skip verifying the directory's certificate (tests only: anyone in between can read passwords). */
      insecure: z.boolean().default(false),
      /** The service account searches are made as; unset: anonymous searches. */
      bindDN: z.string().min(1).optional(),
      bindPassword: z.string().min(1).optional(),
      /** Where users are searched. */
      baseDN: z.string().min(1),
      /** Which entries are users who may sign in (e.g. `(&(objectClass=person)(!(employeeType=disabled)))`). */
      userFilter: z.string().min(1).default('(objectClass=person)'),
      /** The attribute holding the user name (`uid` for OpenLDAP, `sAMAccountName` for Active Directory). */
      uidAttribute: z.string().min(1).default('uid'),
      emailAttribute: z.string().min(1).default('mail'),
      /** `sub`: the whole subtree under baseDN; `one`: its direct children only. */
      scope: z.enum(['sub', 'one']).default('sub'),
      /** Where groups are searched; unset: groups are not read (no group members, no admin group). */
      groupBaseDN: z.string().min(1).optional(),
      groupFilter: z.string().min(1).default('(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))'),
      /** The group attribute that lists its members' DNs (`member`, `uniqueMember`). */
      groupMembershipAttribute: z.string().min(1).default('member'),
      /**
       * What the membership attribute holds: `dn` (the member's DN: groupOfNames, groupOfUniqueNames,
       * Active Directory) or `uid` (the member's user name: posixGroup's `memberUid`).
       */
      groupMemberValue: z.enum(['dn', 'uid']).default('dn'),
      /** The group attribute used as the group's name in Berth. */
      groupNameAttribute: z.string().min(1).default('cn'),
      /**
       * Groups inside groups: `none`; `activeDirectory` (one search with the matching-rule-in-chain
       * filter, Active Directory only); `search` (walk up level by level, any directory, at most 10).
       */
      nestedGroups: z.enum(['none', 'activeDirectory', 'search']).default('none'),
      /** DN of the group whose members are system administrators. */
      adminGroup: z.string().min(1).optional(),
      /** How long to wait for the directory to connect or answer. */
      timeout: duration.default(5),
      /** Service-account connections kept open for searches. */
      poolSize: z.number().int().min(1).max(64).default(4),
      /**
       * How long a successful sign-in is remembered (a busy CI does not bind for every token
       * request), and how often group membership is read again for token requests. 0: never cached.
       */
      cacheTTL: z.union([z.literal(0), duration]).default(60),
    })
    .refine((l) => Boolean(l.bindDN) === Boolean(l.bindPassword), 'auth.ldap.bindDN and auth.ldap.bindPassword must be given together')
    .refine((l) => !(l.startTLS && l.url.startsWith('ldaps:')), 'auth.ldap.startTLS is for ldap:// URLs (ldaps:// is TLS from the start)')
    .refine((l) => !(l.groupMemberValue === 'uid' && l.nestedGroups !== 'none'), 'auth.ldap.nestedGroups needs groupMemberValue dn (groups listing user names cannot list groups)');
}

/** `auth.oidc`: sign-in through an OpenID Connect provider (Keycloak, Dex, Azure AD, Google, GitLab…). */
export function oidcSchema(duration: DurationSchema) {
  return z.strictObject({
    /** The issuer URL; its `/.well-known/openid-configuration` is read at start. */
    issuer: z.string().refine((u) => /^https?:$/.test(parseURL(u)?.protocol ?? ''), 'must be an https:// URL (http:// only for a provider on this machine)'),
    clientId: z.string().min(1),
    /** Unset: a public client (PKCE alone). */
    clientSecret: z.string().min(1).optional(),
    /** Scopes asked for; add the one that makes your provider send groups (Dex, Keycloak: `groups`). */
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope token')).default(['openid', 'profile', 'email']),
    /** The claim that becomes the Berth user name. */
    usernameClaim: z.string().min(1).default('preferred_username'),
    /** The claim listing the user's groups. */
    groupsClaim: z.string().min(1).default('groups'),
    /** Members of this group (a value of the groups claim) are system administrators. */
    adminGroup: z.string().min(1).optional(),
    /** Create users at their first sign-in; false: an administrator creates them first (`berth user create --source oidc`). */
    autoOnboard: z.boolean().default(true),
    /**
     * The redirect URI registered at the provider, `https://registry.example.com/api/v1/auth/oidc/callback`.
     * Unset: built from `externalURL`'s first entry.
     */
    redirectURL: z.string().refine((u) => /^https?:$/.test(parseURL(u)?.protocol ?? ''), 'must be an http(s):// URL').optional(),
    /** The name shown on the sign-in button and in messages, e.g. `Keycloak`. */
    displayName: z.string().min(1).max(64).default('single sign-on'),
    /** PEM file of the CA that signed the provider's certificate (unset: the system's CAs). */
    caFile: z.string().min(1).optional(),
    /** How long to wait for the provider. */
    timeout: duration.default(10),
    /** Clock skew allowed when checking ID tokens' times. */
    clockTolerance: duration.default(30),
    /**
     * How often a person using personal access tokens or a portal session is checked with the
     * provider (a refresh-token grant: still accepted, current groups); 0: never. Needs a provider
     * that issues refresh tokens (add `offline_access` to scopes where it asks for it).
     */
    recheckInterval: z.union([z.literal(0), duration]).default(300),
  });
}
