// What every resource module of the management API shares: its dependencies, the project gate
// (404 / 401 / 403 decided one way everywhere), audit writing, pagination and common schemas.
import { z } from 'zod';
import { RegistryError } from '../../domain/errors.ts';
import type { ProjectAuthorizer } from '../../auth/authorizer.ts';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { ExternalGroup } from '../../auth/external.ts';
import type { CredentialCheck } from '../../auth/credentials.ts';
import type { OidcFlows } from '../../auth/oidc/flows.ts';
import type { Onboarding } from '../../auth/onboarding.ts';
import type { IdentitySources } from '../../auth/sources.ts';
import { identityName, type Identity } from '../../auth/identity.ts';
import { PERMISSIONS, type Permission } from '../../auth/roles.ts';
import type { Config } from '../../config/schema.ts';
import type { Metadata } from '../../metadata/index.ts';
import type { JobRow, ProjectRow } from '../../metadata/schema.ts';
import type { Registry } from '../../registry/index.ts';
import type { BlobStore } from '../../storage/blob-store.ts';
import type { EndpointService } from '../../remote/endpoints.ts';
import type { WebhookService } from '../../webhooks/policies.ts';
import type { Context } from '../context.ts';
import type { ApiAuthenticator } from './authenticate.ts';
import { unauthorized } from './authenticate.ts';
import type { ApiResult } from './route.ts';

/** What the management API needs from the composition root. */
export interface ApiDeps {
  meta: Metadata;
  registry: Registry;
  /** For reading index manifests (the platforms they list). */
  store: BlobStore;
  passwords: Authenticator;
  authorizer: ProjectAuthorizer;
  /** Whether the credential behind a session or token still works; `forget` after changing one. */
  credentials: CredentialCheck;
  config: Config;
  /** Registry endpoints (upstreams of proxy-cache projects): settings, sealed credentials, connection tests. */
  endpoints: EndpointService;
  /** Webhook policies of projects: settings validated, secrets sealed, test events. */
  webhookPolicies: WebhookService;
  /**
   * With `auth.mode` ldap: the directory's groups whose name or DN is `nameOrDN` (none: an empty
   * list), for naming a group as a project member before any of its members signed in. Rejects
   * with IdentitySourceUnavailableError when the directory cannot answer.
   */
  directoryGroups?: (nameOrDN: string) => Promise<ExternalGroup[]>;
  /** Sign-in flows through the OpenID provider (`auth.mode: oidc`); unset otherwise. */
  oidc?: OidcFlows;
  /** Turns a person an identity source vouched for into a user (LDAP and OIDC modes). */
  /** Asks the identity source now (administrators connecting Berth to a directory or provider). */
  testIdentity?: IdentitySources['test'];
  onboarding?: Onboarding;
}

/** The dependencies plus what the API builds for itself. */
export interface ApiServices extends ApiDeps {
  sessions: ApiAuthenticator;
}

// ---- schemas shared by several resources ----

/** A project name: one repository path component. */
export const projectName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/, 'lower-case letters and digits, separated by ".", "_", "__" or "-" (one repository path component)');

/** An ISO 8601 time in a response; null when absent. */
export const isoTime = z.string().meta({ format: 'date-time' });

/** `?page=&pageSize=` of every list. */
export const pageQuery = {
  page: z.coerce.number().int().min(1).default(1).describe('page number, from 1'),
  pageSize: z.coerce.number().int().min(1).max(500).default(50).describe('items per page, at most 500'),
};

/** The answer of every list endpoint, for the OpenAPI document. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), total: z.number().int(), page: z.number().int(), pageSize: z.number().int() });
}

/** `expiresInDays`: -1 (or absent) for never, else 1 to 36500 days. */
export const expiresInDays = z
  .number()
  .int()
  .refine((days) => days === -1 || (days >= 1 && days <= 36_500), 'must be -1 (never) or 1 to 36500 days')
  .describe('days until expiry; -1 or absent: never');

/** Milliseconds of an `expiresInDays` value from now; null for never. */
export function expiryFrom(days: number | undefined): number | null {
  return days === undefined || days === -1 ? null : Date.now() + days * 86_400_000;
}

/** An ISO time of a stored millisecond value; null stays null. */
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
}

/** The states of a job (src/jobs/), as run views show them. */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

/** How far a job got: the fields every view of a run (a job of some kind) shows, for the OpenAPI document. */
export const jobLifecycle = {
  state: z.enum(JOB_STATES),
  cancelRequested: z.boolean(),
  error: z.string().nullable(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
};

/** A job's `jobLifecycle` fields. */
export function lifecycleOf(row: JobRow) {
  return {
    state: row.state,
    cancelRequested: row.cancel_requested === 1,
    error: row.error,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

// ---- pagination ----

export interface PageParams {
  page: number;
  pageSize: number;
}

/** Offset and limit of a page. */
export function window(p: PageParams): { offset: number; limit: number } {
  return { offset: (p.page - 1) * p.pageSize, limit: p.pageSize };
}

/** A list answer with a relative `Link: <…>; rel="next"` when items follow this page. */
export function paged(ctx: Context, p: PageParams, items: unknown[], total: number): ApiResult {
  const headers: Record<string, string> = {};
  if (p.page * p.pageSize < total) {
    const next = new URLSearchParams(ctx.query);
    next.set('page', String(p.page + 1));
    next.set('pageSize', String(p.pageSize));
    headers.Link = `<${ctx.path}?${next.toString()}>; rel="next"`;
  }
  return { body: { items, total, page: p.page, pageSize: p.pageSize }, headers };
}

/** JSON Berth stored itself (a job's payload or progress); what does not parse shows as null. */
export function storedJSON(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** A page of an in-memory list. */
export function slice<T>(all: T[], p: PageParams): T[] {
  const { offset, limit } = window(p);
  return all.slice(offset, offset + limit);
}

// ---- refusals ----

export function notFound(message: string): RegistryError {
  return new RegistryError('NOT_FOUND', message);
}

export function conflict(message: string, detail?: unknown): RegistryError {
  return new RegistryError('CONFLICT', message, detail);
}

/** 401 for anonymous callers (they may simply not have logged in), 403 DENIED otherwise. */
export function refuse(identity: Identity, message: string): RegistryError {
  return identity.kind === 'anonymous' ? unauthorized(`authentication required: ${message}`) : new RegistryError('DENIED', message);
}

/** Refuses anonymous callers. */
export function requireSignedIn(identity: Identity): void {
  if (identity.kind === 'anonymous') throw unauthorized();
}

/** Refuses everyone but system administrators. */
export async function requireAdmin(services: ApiServices, identity: Identity): Promise<void> {
  if (!(await services.authorizer.isAdmin(identity))) throw refuse(identity, 'system administrator needed');
}

/** A project and what the caller may do there. */
export interface ProjectAccess {
  project: ProjectRow;
  permissions: Set<Permission>;
}

/**
 * The project `name` as `identity` sees it. A project the caller has no permission in at all is
 * answered exactly like one that does not exist (404; 401 to anonymous callers), so private names
 * do not leak; with
 * `needed`, a caller who sees the project but lacks the permission gets 403 DENIED naming it.
 */
export async function projectAccess(services: ApiServices, identity: Identity, name: string, needed?: Permission): Promise<ProjectAccess> {
  const project = await services.meta.projects.find(name);
  const permissions = project ? await services.authorizer.permissions(identity, project) : new Set<Permission>();
  if (!project || permissions.size === 0) {
    // Anonymous callers get a 401 for existing and missing projects alike: it leaks nothing, and
    // tells a client that forgot to log in what to do.
    if (identity.kind === 'anonymous') throw unauthorized(`authentication required for project "${name}"`);
    throw notFound(`project "${name}" not found`);
  }
  if (needed !== undefined && !permissions.has(needed)) throw refuse(identity, `${needed} needed in project "${name}"`);
  return { project, permissions };
}

/** Permissions in the table's order, for answers. */
export function permissionList(permissions: Set<Permission>): Permission[] {
  return PERMISSIONS.filter((p) => permissions.has(p));
}

// ---- audit ----

export interface Change {
  action: string;
  resourceType: string;
  resource: string;
  project?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * Writes a change to the audit log. Awaited, so the log is complete when the answer arrives; a
 * failure to write is logged and does not undo or fail the change already made.
 */
export async function audit(services: ApiServices, ctx: Context, identity: Identity, change: Change): Promise<void> {
  try {
    await services.meta.audit.record({
      actor: identityName(identity) ?? 'anonymous',
      action: change.action,
      resourceType: change.resourceType,
      resource: change.resource,
      project: change.project ?? null,
      client: ctx.origin.client,
      success: true,
      ...(change.detail ? { detail: change.detail } : {}),
    });
  } catch (err) {
    ctx.log.error({ err, action: change.action }, 'audit write failed');
  }
}
