import { z } from 'zod';
import { PERMISSIONS } from '../../auth/roles.ts';
import { isForeignKeyViolation } from '../../metadata/conflicts.ts';
import { PROJECT_SORTS } from '../../metadata/projects.ts';
import type { ProjectRow } from '../../metadata/schema.ts';
import type { RetentionRule } from '../../lifecycle/retention/rules.ts';
import {
  audit,
  conflict,
  iso,
  isoTime,
  pageOf,
  pageQuery,
  paged,
  permissionList,
  projectAccess,
  projectName,
  refuse,
  requireSignedIn,
  window,
  type ApiServices,
} from './common.ts';
import { registryName } from './registries.ts';
import { currentSettings } from './settings.ts';
import { invalid, operation, type Operation } from './route.ts';

const quotaBytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().describe('bytes; null: unlimited');
const freshness = z.number().int().min(0).max(31_536_000).describe('seconds a cached tag is served before asking the upstream again (0: every pull asks with a HEAD)');

/**
 * The retention policy a proxy-cache project starts with: artifacts pulled — or cached, which an
 * artifact not pulled since would otherwise not count as — within 7 days stay; the rest age out in a
 * daily run. Every repository, every tag, untagged artifacts too (what was pulled by digest).
 */
const PROXY_RETENTION: { rules: RetentionRule[]; cron: string } = {
  rules: (['pulledWithinDays', 'pushedWithinDays'] as const).map((kind) => ({
    repositories: { pattern: '**', exclude: false },
    tags: { pattern: '**', exclude: false },
    untagged: true,
    retain: { kind, days: 7 },
  })),
  cron: '0 4 * * *',
};

/** What makes a project a proxy cache: the registry endpoint it pulls from. */
const proxyCache = z.object({
  registry: z.string().describe('the registry endpoint it pulls from'),
  freshness: z.number().int().describe('seconds a cached tag is served before asking the upstream again (the project\'s own, or proxy.freshness)'),
});

const project = z.object({
  name: z.string(),
  public: z.boolean(),
  quotaBytes: z.number().int().nullable(),
  usageBytes: z.number().int(),
  repositoryCount: z.number().int(),
  createdAt: isoTime,
  createdBy: z.string().nullable(),
  proxyCache: proxyCache.nullable().describe('a proxy-cache project: pulls of what it lacks are fetched from this registry endpoint; null: an ordinary project'),
});
const projectDetail = project.extend({ permissions: z.array(z.enum(PERMISSIONS)).describe('what the caller may do in the project') });
const projectParam = z.object({ project: projectName });

/** `/projects`: list (what the caller may see), create, show with quota and usage, update, delete. */
export function projectOperations(services: ApiServices): Operation[] {
  const { meta, authorizer, config } = services;

  async function view(row: ProjectRow) {
    return {
      name: row.name,
      public: row.public === 1,
      quotaBytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
      usageBytes: await meta.projects.usage(row.id),
      repositoryCount: await meta.projects.repositoryCount(row.id),
      createdAt: iso(row.created_at),
      createdBy: row.created_by,
      proxyCache: await proxyView(row),
    };
  }

  async function proxyView(row: ProjectRow): Promise<z.output<typeof proxyCache> | null> {
    if (row.proxy_registry_id === null) return null;
    const upstream = await meta.registries.findById(Number(row.proxy_registry_id));
    return { registry: upstream?.name ?? `#${row.proxy_registry_id}`, freshness: Number(row.proxy_freshness ?? config.proxy.freshness) };
  }

  return [
    operation({
      id: 'listProjects',
      method: 'GET',
      path: '/projects',
      tag: 'projects',
      summary: 'Projects the caller may see (public ones, their own; every one for administrators)',
      query: z.object({
        q: z.string().max(255).optional().describe('substring of the project name'),
        sort: z.enum(PROJECT_SORTS).default('name').describe('order, descending with a leading "-": name, createdAt, usage (bytes stored); ties by name'),
        ...pageQuery,
      }),
      response: pageOf(project),
      handler: async ({ ctx, identity, query }) => {
        const visible = await authorizer.visibility(identity);
        const found = await meta.projects.list({
          all: visible.all,
          memberOf: visible.all ? [] : visible.projectIds,
          ...window(query),
          sort: query.sort,
          ...(query.q ? { nameLike: query.q } : {}),
        });
        return paged(ctx, query, await Promise.all(found.items.map(view)), found.total);
      },
    }),
    operation({
      id: 'createProject',
      method: 'POST',
      path: '/projects',
      tag: 'projects',
      summary: 'Create a project (administrators, or any user when the setting projectCreation is everyone); the creator becomes its projectAdmin',
      description:
        'With proxyCache (system administrators only), a proxy-cache project: pulls of what it lacks are fetched from the registry endpoint and cached; pushes are refused. ' +
        'It gets the retention policy "retain artifacts pulled or cached within 7 days", run daily, so what is no longer pulled ages out (change it with PUT /projects/{project}/retention).',
      body: z.strictObject({
        name: projectName,
        public: z.boolean().optional(),
        quotaBytes: quotaBytes.optional(),
        proxyCache: z.strictObject({ registry: registryName.describe('the registry endpoint to pull from'), freshness: freshness.optional().describe(`${freshness.description}; default: proxy.freshness`) }).optional(),
      }),
      status: 201,
      response: projectDetail,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        requireSignedIn(identity);
        const admin = await authorizer.isAdmin(identity);
        if (!admin && !(identity.kind === 'user' && (await currentSettings(services)).projectCreation === 'everyone')) {
          throw refuse(identity, 'system administrator needed to create projects (the setting projectCreation is admins)');
        }
        const creator = identity.kind === 'anonymous' ? undefined : identity.name;
        let proxy: { registryId: number; freshness: number | null } | undefined;
        if (body.proxyCache) {
          if (!admin) throw refuse(identity, 'system administrator needed to create proxy-cache projects');
          const upstream = await meta.registries.find(body.proxyCache.registry);
          if (!upstream) throw invalid([{ path: 'proxyCache.registry', message: 'no registry endpoint of this name (see GET /registries)' }]);
          proxy = { registryId: upstream.id, freshness: body.proxyCache.freshness ?? null };
        }
        let created: boolean;
        try {
          created = await meta.projects.create(body.name, { public: body.public ?? false, quotaBytes: body.quotaBytes ?? null, ...(creator ? { createdBy: creator } : {}), ...(proxy ? { proxy } : {}) });
        } catch (err) {
          // The endpoint was deleted between the lookup and the insert.
          if (proxy && isForeignKeyViolation(err)) throw invalid([{ path: 'proxyCache.registry', message: 'no registry endpoint of this name (see GET /registries)' }]);
          throw err;
        }
        if (!created) throw conflict(`project "${body.name}" already exists`);
        const row = (await meta.projects.find(body.name))!;
        // Cached artifacts age out through retention, as anything else does: the admin may change it later.
        if (proxy) await meta.retention.set(row, PROXY_RETENTION, creator ?? null);
        const user = identity.kind === 'user' ? await meta.users.find(identity.name) : undefined;
        if (user) await meta.members.setUser(row.id, user.id, 'projectAdmin');
        await audit(services, ctx, identity, {
          action: 'project.create',
          resourceType: 'project',
          resource: row.name,
          project: row.name,
          detail: { public: row.public === 1, quotaBytes: row.quota_bytes, ...(body.proxyCache ? { proxyCache: { registry: body.proxyCache.registry, freshness: body.proxyCache.freshness ?? null } } : {}) },
        });
        const { permissions } = await projectAccess(services, identity, row.name);
        return { status: 201, body: { ...(await view(row)), permissions: permissionList(permissions) } };
      },
    }),
    operation({
      id: 'getProject',
      method: 'GET',
      path: '/projects/{project}',
      tag: 'projects',
      summary: 'A project with its quota, usage and what the caller may do there',
      params: projectParam,
      response: projectDetail,
      errors: [404],
      handler: async ({ identity, params }) => {
        const { project: row, permissions } = await projectAccess(services, identity, params.project);
        return { body: { ...(await view(row)), permissions: permissionList(permissions) } };
      },
    }),
    operation({
      id: 'updateProject',
      method: 'PATCH',
      path: '/projects/{project}',
      tag: 'projects',
      summary: "Change visibility, quota, or a proxy-cache project's freshness (project.update)",
      params: projectParam,
      body: z.strictObject({
        public: z.boolean().optional(),
        quotaBytes: quotaBytes.optional(),
        proxyCache: z
          .strictObject({
            registry: registryName.optional().describe('cannot change: only the current endpoint is accepted'),
            freshness: freshness.nullable().optional().describe(`${freshness.description}; null: proxy.freshness`),
          })
          .optional()
          .describe('only for a proxy-cache project'),
      }),
      response: projectDetail,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const { project: row } = await projectAccess(services, identity, params.project, 'project.update');
        if (body.proxyCache) {
          if (row.proxy_registry_id === null) throw invalid([{ path: 'proxyCache', message: 'the project is not a proxy cache (a project becomes one only when it is created)' }]);
          const current = await meta.registries.findById(Number(row.proxy_registry_id));
          if (body.proxyCache.registry !== undefined && body.proxyCache.registry !== current?.name) {
            throw invalid([{ path: 'proxyCache.registry', message: "a proxy-cache project's registry endpoint cannot change: create another project" }]);
          }
        }
        const changes = {
          ...(body.public !== undefined ? { public: body.public } : {}),
          ...(body.quotaBytes !== undefined ? { quotaBytes: body.quotaBytes } : {}),
          ...(body.proxyCache?.freshness !== undefined ? { proxyFreshness: body.proxyCache.freshness } : {}),
        };
        await meta.projects.update(row.name, changes);
        if (Object.keys(changes).length > 0) {
          await audit(services, ctx, identity, { action: 'project.update', resourceType: 'project', resource: row.name, project: row.name, detail: changes });
        }
        const { project: updated, permissions } = await projectAccess(services, identity, row.name);
        return { body: { ...(await view(updated)), permissions: permissionList(permissions) } };
      },
    }),
    operation({
      id: 'deleteProject',
      method: 'DELETE',
      path: '/projects/{project}',
      tag: 'projects',
      summary: 'Delete an empty project (project.delete); 409 while it holds repositories',
      params: projectParam,
      status: 204,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        const { project: row } = await projectAccess(services, identity, params.project, 'project.delete');
        const repositories = await meta.projects.repositoryCount(row.id);
        if (repositories > 0) {
          throw conflict(`project "${row.name}" still holds ${repositories} ${repositories === 1 ? 'repository' : 'repositories'}: delete them first`, { repositoryCount: repositories });
        }
        // Its retention schedule first: the policy goes with the project row, the schedule would not.
        await meta.retention.projectDeleted(row.name);
        await meta.projects.delete(row.name);
        await audit(services, ctx, identity, { action: 'project.delete', resourceType: 'project', resource: row.name, project: row.name });
        return { status: 204 };
      },
    }),
  ];
}
