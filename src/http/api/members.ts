import { z } from 'zod';
import { ROLES } from '../../auth/roles.ts';
import type { Member } from '../../metadata/members.ts';
import type { GroupRow, ProjectRow } from '../../metadata/schema.ts';
import { audit, conflict, iso, isoTime, notFound, pageOf, pageQuery, paged, projectAccess, projectName, slice, type ApiServices } from './common.ts';
import { GROUP_SOURCES, groupId, groupName, resolveGroup, shown } from './groups.ts';
import { operation, type Operation } from './route.ts';

const role = z.enum(ROLES);
const member = z.object({
  kind: z.enum(['user', 'group']),
  name: z.string().describe('the user name, or the group name'),
  role,
  createdAt: isoTime,
  username: z.string().optional().describe('users only: the user name (as before groups could be members)'),
  group: z
    .object({ id: z.number().int().describe('for /member-groups/{id}'), source: z.string(), externalId: z.string().describe('LDAP: the DN; OIDC: the claim value') })
    .optional()
    .describe('groups only'),
});
const memberParams = z.object({ project: projectName, username: z.string().min(1).max(255) });
const groupMemberParams = z.object({ project: projectName, id: groupId });

type UserMember = Member & { kind: 'user' };
type GroupMember = Member & { kind: 'group' };

function view(m: Member) {
  const common = { kind: m.kind, name: m.name, role: m.role, createdAt: iso(m.createdAt) };
  return m.kind === 'user' ? { ...common, username: m.name } : { ...common, group: { id: m.groupId, source: m.source, externalId: m.externalId } };
}

/**
 * `/projects/{project}/members`: who has which role in a project — users, and groups of the
 * identity sources whose members all have the role. Users are addressed by name; groups by id at
 * `/member-groups/{id}` (names repeat across sources and places, and DNs hold commas and slashes).
 */
export function memberOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function userId(username: string): Promise<number> {
    const user = await meta.users.find(username);
    if (!user) throw notFound(`user "${username}" not found`);
    return user.id;
  }

  async function findUser(projectId: number, username: string, projectName: string): Promise<UserMember> {
    const current = (await meta.members.list(projectId)).find((m): m is UserMember => m.kind === 'user' && m.name === username);
    if (!current) throw notFound(`"${username}" is not a member of project "${projectName}"`);
    return current;
  }

  async function findGroup(projectId: number, id: number, projectName: string): Promise<{ member: GroupMember; row: GroupRow }> {
    const current = (await meta.members.list(projectId)).find((m): m is GroupMember => m.kind === 'group' && m.groupId === id);
    const row = current ? await meta.groups.get(id) : undefined;
    if (!current || !row) throw notFound(`group ${id} is not a member of project "${projectName}"`);
    return { member: current, row };
  }

  async function groupAudited(ctx: Parameters<typeof audit>[1], identity: Parameters<typeof audit>[2], action: string, project: ProjectRow, group: GroupRow, role: string | null, previous: string | null) {
    await audit(services, ctx, identity, {
      action,
      resourceType: 'member',
      resource: `group:${group.name}`,
      project: project.name,
      detail: { kind: 'group', groupId: group.id, source: group.source, externalId: group.external_id, role, previous },
    });
  }

  return [
    operation({
      id: 'listMembers',
      method: 'GET',
      path: '/projects/{project}/members',
      tag: 'members',
      summary: 'Members and their roles: users, then groups (member.list)',
      params: z.object({ project: projectName }),
      query: z.object(pageQuery),
      response: pageOf(member),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.list');
        const all = await meta.members.list(project.id);
        return paged(ctx, query, slice(all, query).map(view), all.length);
      },
    }),
    operation({
      id: 'addMember',
      method: 'POST',
      path: '/projects/{project}/members',
      tag: 'members',
      summary: 'Add a user or a group with a role (member.manage); 409 when already a member',
      description:
        'Give either `username`, or `group`: a group name or an LDAP group DN (`source` picks among groups of the same name). ' +
        'A group Berth does not know yet is created with auth.mode oidc (a groups-claim value is its own id) and looked up in the directory with auth.mode ldap; ' +
        'with auth.mode local there are no groups. Several groups of that name: 409 naming them (name one by its DN, or give `source`).',
      params: z.object({ project: projectName }),
      body: z
        .strictObject({
          username: z.string().min(1).max(255).optional().describe('the user to add'),
          group: groupName.optional(),
          source: z.enum(GROUP_SOURCES).optional().describe('with `group`: only groups of this source'),
          role,
        })
        .superRefine((b, check) => {
          if ((b.username === undefined) === (b.group === undefined)) check.addIssue({ code: 'custom', path: ['username'], message: 'give either "username" or "group"' });
          if (b.source !== undefined && b.group === undefined) check.addIssue({ code: 'custom', path: ['source'], message: 'only with "group"' });
        }),
      status: 201,
      response: member,
      errors: [403, 404, 409, 503],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        if (body.group !== undefined) {
          const group = await resolveGroup(services, body.group, body.source);
          if ((await meta.members.groupRoleOf(project.id, group.id)) !== undefined) {
            throw conflict(`group ${shown(group.name)} (${group.source}, id ${group.id}) is already a member of project "${project.name}"`);
          }
          await meta.members.setGroup(project.id, group.id, body.role);
          await groupAudited(ctx, identity, 'member.add', project, group, body.role, null);
          return { status: 201, body: view((await findGroup(project.id, group.id, project.name)).member) };
        }
        const username = body.username!;
        const id = await userId(username);
        if ((await meta.members.roleOf(project.id, id)) !== undefined) throw conflict(`"${username}" is already a member of project "${project.name}"`);
        await meta.members.setUser(project.id, id, body.role);
        await audit(services, ctx, identity, { action: 'member.add', resourceType: 'member', resource: username, project: project.name, detail: { role: body.role } });
        return { status: 201, body: view(await findUser(project.id, username, project.name)) };
      },
    }),
    operation({
      id: 'updateMember',
      method: 'PUT',
      path: '/projects/{project}/members/{username}',
      tag: 'members',
      summary: "Change a user member's role (member.manage)",
      params: memberParams,
      body: z.strictObject({ role }),
      response: member,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const before = await findUser(project.id, params.username, project.name);
        await meta.members.setUser(project.id, await userId(params.username), body.role);
        await audit(services, ctx, identity, { action: 'member.update', resourceType: 'member', resource: params.username, project: project.name, detail: { role: body.role, previous: before.role } });
        return { body: view(await findUser(project.id, params.username, project.name)) };
      },
    }),
    operation({
      id: 'removeMember',
      method: 'DELETE',
      path: '/projects/{project}/members/{username}',
      tag: 'members',
      summary: 'Remove a user member (member.manage); roles through their groups remain',
      params: memberParams,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const before = await findUser(project.id, params.username, project.name);
        await meta.members.removeUser(project.id, await userId(params.username));
        await audit(services, ctx, identity, { action: 'member.remove', resourceType: 'member', resource: params.username, project: project.name, detail: { role: before.role } });
        return { status: 204 };
      },
    }),
    operation({
      id: 'updateGroupMember',
      method: 'PUT',
      path: '/projects/{project}/member-groups/{id}',
      tag: 'members',
      summary: "Change a group member's role (member.manage)",
      params: groupMemberParams,
      body: z.strictObject({ role }),
      response: member,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const { member: before, row } = await findGroup(project.id, params.id, project.name);
        await meta.members.setGroup(project.id, row.id, body.role);
        await groupAudited(ctx, identity, 'member.update', project, row, body.role, before.role);
        return { body: view((await findGroup(project.id, row.id, project.name)).member) };
      },
    }),
    operation({
      id: 'removeGroupMember',
      method: 'DELETE',
      path: '/projects/{project}/member-groups/{id}',
      tag: 'members',
      summary: 'Remove a group member (member.manage); its members keep their own roles',
      params: groupMemberParams,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const { project } = await projectAccess(services, identity, params.project, 'member.manage');
        const { member: before, row } = await findGroup(project.id, params.id, project.name);
        await meta.members.removeGroup(project.id, row.id);
        await groupAudited(ctx, identity, 'member.remove', project, row, null, before.role);
        return { status: 204 };
      },
    }),
  ];
}
