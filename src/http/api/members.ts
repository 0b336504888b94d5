import { z } from 'zod';
import { ROLES } from '../../auth/roles.ts';
import type { Member } from '../../metadata/projects.ts';
import { audit, conflict, iso, isoTime, notFound, pageOf, pageQuery, paged, projectAccess, projectName, slice, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

const role = z.enum(ROLES);
const member = z.object({ username: z.string(), role, createdAt: isoTime });
const memberParams = z.object({ project: projectName, username: z.string().min(1).max(255) });

function view(m: Member) {
  return { username: m.username, role: m.role, createdAt: iso(m.createdAt) };
}

/** `/projects/{project}/members`: who has which role in a project. */
export function memberOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function userId(username: string): Promise<number> {
    const user = await meta.users.find(username);
    if (!user) throw notFound(`user "${username}" not found`);
    return user.id;
  }

  async function find(projectId: number, username: string, projectName: string): Promise<Member> {
    const current = (await meta.projects.members(projectId)).find((m) => m.username === username);
    if (!current) throw notFound(`"${username}" is not a member of project "${projectName}"`);
    return current;
  }

  return [
    operation({
      id: 'listMembers',
      method: 'GET',
      path: '/projects/{project}/members',
      tag: 'members',
      summary: 'Members and their roles (member.list)',
      params: z.object({ project: projectName }),
      query: z.object(pageQuery),
      response: pageOf(member),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.list');
        const all = await meta.projects.members(project.id);
        return paged(ctx, query, slice(all, query).map(view), all.length);
      },
    }),
    operation({
      id: 'addMember',
      method: 'POST',
      path: '/projects/{project}/members',
      tag: 'members',
      summary: 'Add a user with a role (member.manage); 409 when already a member',
      params: z.object({ project: projectName }),
      body: z.strictObject({ username: z.string().min(1).max(255), role }),
      status: 201,
      response: member,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const id = await userId(body.username);
        if ((await meta.projects.roleOf(project.id, id)) !== undefined) throw conflict(`"${body.username}" is already a member of project "${project.name}"`);
        await meta.projects.setMember(project.id, id, body.role);
        await audit(services, ctx, identity, { action: 'member.add', resourceType: 'member', resource: body.username, project: project.name, detail: { role: body.role } });
        return { status: 201, body: view(await find(project.id, body.username, project.name)) };
      },
    }),
    operation({
      id: 'updateMember',
      method: 'PUT',
      path: '/projects/{project}/members/{username}',
      tag: 'members',
      summary: "Change a member's role (member.manage)",
      params: memberParams,
      body: z.strictObject({ role }),
      response: member,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const before = await find(project.id, params.username, project.name);
        await meta.projects.setMember(project.id, await userId(params.username), body.role);
        await audit(services, ctx, identity, { action: 'member.update', resourceType: 'member', resource: params.username, project: project.name, detail: { role: body.role, previous: before.role } });
        return { body: view(await find(project.id, params.username, project.name)) };
      },
    }),
    operation({
      id: 'removeMember',
      method: 'DELETE',
      path: '/projects/{project}/members/{username}',
      tag: 'members',
      summary: 'Remove a member (member.manage)',
      params: memberParams,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const before = await find(project.id, params.username, project.name);
        await meta.projects.removeMember(project.id, await userId(params.username));
        await audit(services, ctx, identity, { action: 'member.remove', resourceType: 'member', resource: params.username, project: project.name, detail: { role: before.role } });
        return { status: 204 };
      },
    }),
  ];
}
