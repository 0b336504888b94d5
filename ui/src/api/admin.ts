// Shapes of the administration API the portal uses: users (src/http/api/users.ts), groups
// (groups.ts), registry endpoints (registries.ts), run-time settings (settings.ts) and the
// connection check (connection.ts). Kept in step with those zod schemas by hand.

export type UserSource = 'local' | 'ldap' | 'oidc';

/** An item of GET /users. */
export interface User {
  username: string;
  admin: boolean;
  createdAt: string;
  source: UserSource | string;
  email: string | null;
  /** The last sign-in through LDAP or OIDC; null for local users and before the first. */
  lastLoginAt: string | null;
}

/** GET /users/{name}: with the names of the groups of their identity source. */
export interface UserDetail extends User {
  groups: string[];
}

/** POST /users: `password` is there only when the server generated it (shown once). */
export interface CreatedUser extends User {
  password?: string;
}

/** An item of GET /groups. */
export interface Group {
  id: number;
  name: string;
  source: 'ldap' | 'oidc' | string;
  /** LDAP: the DN; OIDC: the claim value. */
  externalId: string;
  createdAt: string;
  members: number;
}

/** GET /groups/{id}: members (at most 1000, `memberCount` says how many) and project roles. */
export interface GroupDetail extends Omit<Group, 'members'> {
  memberCount: number;
  members: { username: string; email: string | null; lastLoginAt: string | null }[];
  projects: { project: string; role: string; createdAt: string }[];
}

export const REGISTRY_TYPES = ['berth', 'distribution', 'harbor', 'dockerhub', 'ghcr', 'quay', 'generic'] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

/** An item of GET /registries: the password is never returned (`hasCredential`). */
export interface Registry {
  name: string;
  type: RegistryType;
  url: string;
  username: string | null;
  hasCredential: boolean;
  caFile: string | null;
  insecure: boolean;
  description: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

/** GET /registries/{name}: with what uses it (a delete is refused while anything does). */
export interface RegistryDetail extends Registry {
  usedBy: string[];
  usedByRules: string[];
}

/** The body of POST /registries and /registries/test (PATCH takes the same fields, all optional). */
export interface RegistrySettings {
  name?: string;
  type?: RegistryType;
  url?: string;
  username?: string | null;
  password?: string;
  caFile?: string | null;
  insecure?: boolean;
  description?: string | null;
}

/** The answer of POST /registries/test and /registries/{name}/test. */
export interface RegistryTestResult {
  ok: boolean;
  auth: 'none' | 'basic' | 'bearer' | null;
  realm: string | null;
  authenticated: boolean;
  elapsedMs: number;
  error?: string;
}

/** One run-time setting: its value in effect and where it comes from. */
export interface Setting<T> {
  value: T;
  source: 'config' | 'runtime';
  /** The configuration file's value: what a reset (null) returns to. */
  configValue: T;
  updatedBy: string | null;
  updatedAt: string | null;
}

/** GET/PATCH /system/settings. */
export interface SystemSettings {
  projectCreation: Setting<'admins' | 'everyone'>;
  auditPulls: Setting<boolean>;
  announcement: Setting<string | null>;
}

/** The body of PATCH /system/settings: keys left out are unchanged, null resets to the configuration. */
export interface SettingsChange {
  projectCreation?: 'admins' | 'everyone' | null;
  auditPulls?: boolean | null;
  announcement?: string | null;
}

/** Longest announcement the server takes (settings.ts ANNOUNCEMENT_MAX). */
export const ANNOUNCEMENT_MAX = 500;

export type ConnectionProblemId = 'forwarded-untrusted' | 'forwarded-conflict' | 'scheme-mismatch' | 'host-mismatch' | 'external-url-missing';

/** GET /system/connection: how this page's own request reached Berth. */
export interface ConnectionCheck {
  request: {
    host: string | null;
    scheme: 'http' | 'https';
    forwarded: Record<string, string>;
    peer: string;
    client: string;
    trustedProxy: boolean;
    source: 'connection' | 'forwarded' | 'x-forwarded';
  };
  origin: string;
  externalURLs: string[];
  agrees: boolean;
  problems: { id: ConnectionProblemId; mechanism: 'M1' | 'M2' | 'M3' | null; message: string; fix: string }[];
  doctorCommand: string;
}
