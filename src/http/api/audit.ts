import { z } from 'zod';
import type { Identity } from '../../auth/identity.ts';
import type { AuditRow } from '../../metadata/schema.ts';
import { iso, isoTime, pageOf, pageQuery, paged, projectAccess, projectName, requireSignedIn, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** An ISO 8601 time or milliseconds since the epoch, as milliseconds. */
const time = z
  .string()
  .refine((value) => /^\d{1,15}$/.test(value) || (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))), 'an ISO 8601 time (2025-06-01T12:00:00Z) or milliseconds since the epoch')
  .transform((value) => (/^\d+$/.test(value) ? Number(value) : Date.parse(value)));

const event = z.object({
  id: z.number().int(),
  time: isoTime,
  actor: z.string(),
  action: z.string(),
  resourceType: z.string(),
  resource: z.string(),
  project: z.string().nullable(),
  client: z.string().nullable(),
  success: z.boolean(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});

function view(row: AuditRow) {
  return {
    id: row.id,
    time: iso(row.time),
    actor: row.actor,
    action: row.action,
    resourceType: row.resource_type,
    resource: row.resource,
    project: row.project,
    client: row.client,
    success: row.success === 1,
    detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null,
  };
}

/** `/audit`: search the audit log. Administrators see everything; others the events of projects where they have log.list. */
export function auditOperations(services: ApiServices): Operation[] {
  const { meta, authorizer } = services;

  /** Names of the projects whose log `identity` may read. */
  async function readableProjects(identity: Identity): Promise<string[]> {
    const visible = await authorizer.visibility(identity);
    const { items } = await meta.projects.list({ all: visible.all, memberOf: visible.all ? [] : visible.projectIds, offset: 0, limit: 100_000 });
    const names: string[] = [];
    for (const project of items) if ((await authorizer.permissions(identity, project)).has('log.list')) names.push(project.name);
    return names;
  }

  return [
    operation({
      id: 'searchAudit',
      method: 'GET',
      path: '/audit',
      tag: 'audit',
      summary: 'Search the audit log, newest first',
      description: 'Administrators see every event; other callers only events of projects where they have log.list (project=… needs it there).',
      query: z.object({
        actor: z.string().max(255).optional().describe('exact actor: a user name or robot$…'),
        action: z.string().max(64).optional().describe('exact action, e.g. push, delete, login.failed, project.create'),
        project: projectName.optional(),
        resource: z.string().max(512).optional().describe('substring of the resource'),
        from: time.optional().describe('earliest time, inclusive: ISO 8601 or milliseconds'),
        to: time.optional().describe('latest time, inclusive: ISO 8601 or milliseconds'),
        ...pageQuery,
      }),
      response: pageOf(event),
      errors: [403, 404],
      handler: async ({ ctx, identity, query }) => {
        requireSignedIn(identity);
        let projects: string[] | undefined;
        if (!(await authorizer.isAdmin(identity))) {
          if (query.project !== undefined) projects = [(await projectAccess(services, identity, query.project, 'log.list')).project.name];
          else projects = await readableProjects(identity);
        }
        const found = await meta.audit.search({
          ...(query.actor ? { actor: query.actor } : {}),
          ...(query.action ? { action: query.action } : {}),
          ...(query.project ? { project: query.project } : {}),
          ...(query.resource ? { resource: query.resource } : {}),
          ...(query.from !== undefined ? { from: query.from } : {}),
          ...(query.to !== undefined ? { to: query.to } : {}),
          ...(projects ? { projects } : {}),
          ...window(query),
        });
        return paged(ctx, query, found.items.map(view), found.total);
      },
    }),
  ];
}
