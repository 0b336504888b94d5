import { z } from 'zod';
import { PERMISSIONS } from '../../auth/roles.ts';
import type { ProjectRow } from '../../metadata/schema.ts';
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
import { operation, type Operation } from './route.ts';

const quotaBytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().describe('bytes; null: unlimited');

const project = z.object({
  name: z.string(),
  public: z.boolean(),
  quotaBytes: z.number().int().nullable(),
  usageBytes: z.number().int(),
  repositoryCount: z.number().int(),
  createdAt: isoTime,
  createdBy: z.string().nullable(),
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
    };
  }

  return [
    operation({
      id: 'listProjects',
      method: 'GET',
      path: '/projects',
      tag: 'projects',
      summary: 'Projects the caller may see (public ones, their own; every one for administrators)',
      query: z.object({ q: z.string().max(255).optional().describe('substring of the project name'), ...pageQuery }),
      response: pageOf(project),
      handler: async ({ ctx, identity, query }) => {
        const visible = await authorizer.visibility(identity);
        const found = await meta.projects.list({
          all: visible.all,
          memberOf: visible.all ? [] : visible.projectIds,
          ...window(query),
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
      summary: 'Create a project (administrators, or any user when projects.userCreation is on); the creator becomes its projectAdmin',
      body: z.strictObject({ name: projectName, public: z.boolean().optional(), quotaBytes: quotaBytes.optional() }),
      status: 201,
      response: projectDetail,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        requireSignedIn(identity);
        const admin = await authorizer.isAdmin(identity);
        if (!admin && !(identity.kind === 'user' && config.projects.userCreation)) {
          throw refuse(identity, 'system administrator needed to create projects (projects.userCreation is off)');
        }
        const creator = identity.kind === 'anonymous' ? undefined : identity.name;
        const created = await meta.projects.create(body.name, { public: body.public ?? false, quotaBytes: body.quotaBytes ?? null, ...(creator ? { createdBy: creator } : {}) });
        if (!created) throw conflict(`project "${body.name}" already exists`);
        const row = (await meta.projects.find(body.name))!;
        const user = identity.kind === 'user' ? await meta.users.find(identity.name) : undefined;
        if (user) await meta.projects.setMember(row.id, user.id, 'projectAdmin');
        await audit(services, ctx, identity, {
          action: 'project.create',
          resourceType: 'project',
          resource: row.name,
          project: row.name,
          detail: { public: row.public === 1, quotaBytes: row.quota_bytes },
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
      summary: 'Change visibility or quota (project.update)',
      params: projectParam,
      body: z.strictObject({ public: z.boolean().optional(), quotaBytes: quotaBytes.optional() }),
      response: projectDetail,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const { project: row } = await projectAccess(services, identity, params.project, 'project.update');
        const changes = { ...(body.public !== undefined ? { public: body.public } : {}), ...(body.quotaBytes !== undefined ? { quotaBytes: body.quotaBytes } : {}) };
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
