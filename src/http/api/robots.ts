import { z } from 'zod';
import { ROBOT_PREFIX, type Identity } from '../../auth/identity.ts';
import { ROBOT_ACTION_NAMES, type Permission } from '../../auth/roles.ts';
import { hashSecret, newSecret } from '../../auth/secrets.ts';
import type { RobotRow } from '../../metadata/schema.ts';
import {
  audit,
  conflict,
  expiresInDays,
  expiryFrom,
  iso,
  isoTime,
  notFound,
  pageOf,
  pageQuery,
  paged,
  projectAccess,
  projectName,
  refuse,
  requireAdmin,
  slice,
  type ApiServices,
} from './common.ts';
import { invalid, operation, type Operation } from './route.ts';

const shortName = z.string().min(1).max(64).regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'lower-case letters and digits, separated by ".", "_" or "-"');
const action = z.enum(ROBOT_ACTION_NAMES as [string, ...string[]]);
const grant = z.strictObject({
  project: z.union([projectName, z.literal('*')]).describe('a project name, or "*" for every project (system robots only)'),
  actions: z.array(action).min(1).max(ROBOT_ACTION_NAMES.length),
});
const robot = z.object({
  name: z.string().describe('the login name: robot$<project>+<name> or robot$<name>'),
  level: z.enum(['project', 'system']),
  project: z.string().nullable().describe('the project of a project robot; null for system robots'),
  description: z.string(),
  disabled: z.boolean(),
  expiresAt: isoTime.nullable(),
  createdAt: isoTime,
  createdBy: z.string().nullable(),
  permissions: z.array(z.object({ project: z.string(), actions: z.array(z.string()) })),
});
const nameParam = z.object({ name: z.string().min(1).max(255).describe('the robot name, URL-encoded (robot%24team%2Bci); the robot$ prefix may be left out') });

/** `robot$team+ci` → `team`; undefined for system robots (`robot$ci`). */
function projectOfRobot(name: string): string | undefined {
  const plus = name.indexOf('+');
  return plus < 0 ? undefined : name.slice(ROBOT_PREFIX.length, plus);
}

/** `/robots`: project robots (robot.manage in their project) and system robots (administrators). */
export function robotOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function view(row: RobotRow) {
    const grants = await meta.robots.grants(row.id);
    return {
      name: row.name,
      level: row.level,
      project: row.level === 'project' ? (projectOfRobot(row.name) ?? null) : null,
      description: row.description,
      disabled: row.disabled === 1,
      expiresAt: iso(row.expires_at),
      createdAt: iso(row.created_at),
      createdBy: row.created_by,
      permissions: grants.map((g) => ({ project: g.project ?? '*', actions: g.actions })),
    };
  }

  /**
   * The robot a path names, if the caller may see (`robot.list`) or change (`robot.manage`) it.
   * Permission is checked before existence, so refusals do not reveal which robots exist.
   */
  async function find(identity: Identity, rawName: string, needed: Extract<Permission, 'robot.list' | 'robot.manage'>): Promise<RobotRow> {
    const name = rawName.startsWith(ROBOT_PREFIX) ? rawName : `${ROBOT_PREFIX}${rawName}`;
    const project = projectOfRobot(name);
    if (project === undefined) await requireAdmin(services, identity);
    else if (!(await services.authorizer.isAdmin(identity))) await projectAccess(services, identity, project, needed);
    const row = await meta.robots.find(name);
    if (!row) throw notFound(`robot "${name}" not found`);
    return row;
  }

  return [
    operation({
      id: 'listRobots',
      method: 'GET',
      path: '/robots',
      tag: 'robots',
      summary: "A project's robots (robot.list), or without project the system robots (administrators)",
      query: z.object({ project: projectName.optional(), ...pageQuery }),
      response: pageOf(robot),
      errors: [403, 404],
      handler: async ({ ctx, identity, query }) => {
        let rows: RobotRow[];
        if (query.project !== undefined) {
          const { project } = await projectAccess(services, identity, query.project, 'robot.list');
          rows = (await meta.robots.list(project.id)).filter((r) => r.level === 'project' && projectOfRobot(r.name) === project.name);
        } else {
          await requireAdmin(services, identity);
          rows = (await meta.robots.list()).filter((r) => r.level === 'system');
        }
        return paged(ctx, query, await Promise.all(slice(rows, query).map(view)), rows.length);
      },
    }),
    operation({
      id: 'createRobot',
      method: 'POST',
      path: '/robots',
      tag: 'robots',
      summary: 'Create a robot account; its secret is in this answer only',
      description:
        'With project: a project robot robot$<project>+<name> (robot.manage there; permissions only for that project). ' +
        'Without: a system robot robot$<name> over several projects or "*" (administrators).',
      body: z.strictObject({
        name: shortName,
        project: projectName.optional(),
        description: z.string().max(1024).optional(),
        expiresInDays: expiresInDays.optional(),
        permissions: z.array(grant).min(1).max(100),
      }),
      status: 201,
      response: robot.extend({ secret: z.string().describe('shown only here and by refresh') }),
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, body }) => {
        const grants: { projectId: number | null; actions: string[] }[] = [];
        const seen = new Set<string>();
        let fullName: string;
        if (body.project !== undefined) {
          const { project } = await projectAccess(services, identity, body.project, 'robot.manage');
          body.permissions.forEach((p, i) => {
            if (p.project !== project.name) throw invalid([{ path: `permissions.${i}.project`, message: `a project robot may hold permissions only in its project "${project.name}"` }]);
          });
          grants.push({ projectId: project.id, actions: [...new Set(body.permissions.flatMap((p) => p.actions))] });
          fullName = `${ROBOT_PREFIX}${project.name}+${body.name}`;
        } else {
          await requireAdmin(services, identity);
          for (const [i, p] of body.permissions.entries()) {
            if (seen.has(p.project)) throw invalid([{ path: `permissions.${i}.project`, message: `"${p.project}" is listed twice` }]);
            seen.add(p.project);
            const row = p.project === '*' ? undefined : await meta.projects.find(p.project);
            if (p.project !== '*' && !row) throw invalid([{ path: `permissions.${i}.project`, message: `no project named "${p.project}"` }]);
            grants.push({ projectId: row ? row.id : null, actions: [...new Set(p.actions)] });
          }
          fullName = `${ROBOT_PREFIX}${body.name}`;
        }
        const secret = newSecret();
        const created = await meta.robots.create({
          name: fullName,
          description: body.description ?? '',
          level: body.project !== undefined ? 'project' : 'system',
          secretHash: hashSecret(secret),
          expiresAt: expiryFrom(body.expiresInDays),
          createdBy: identity.kind === 'anonymous' ? null : identity.name,
          grants,
        });
        if (!created) throw conflict(`robot "${fullName}" already exists`);
        const row = (await meta.robots.find(fullName))!;
        const shown = await view(row);
        await audit(services, ctx, identity, {
          action: 'robot.create',
          resourceType: 'robot',
          resource: fullName,
          project: body.project ?? null,
          detail: { permissions: shown.permissions, expiresAt: shown.expiresAt },
        });
        return { status: 201, body: { ...shown, secret } };
      },
    }),
    operation({
      id: 'getRobot',
      method: 'GET',
      path: '/robots/{name}',
      tag: 'robots',
      summary: 'A robot account (robot.list in its project; administrators for system robots)',
      params: nameParam,
      response: robot,
      errors: [403, 404],
      handler: async ({ identity, params }) => ({ body: await view(await find(identity, params.name, 'robot.list')) }),
    }),
    operation({
      id: 'updateRobot',
      method: 'PATCH',
      path: '/robots/{name}',
      tag: 'robots',
      summary: 'Disable or enable a robot, change its description or expiry (robot.manage)',
      params: nameParam,
      body: z.strictObject({ disabled: z.boolean().optional(), description: z.string().max(1024).optional(), expiresInDays: expiresInDays.optional() }),
      response: robot,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const row = await find(identity, params.name, 'robot.manage');
        const changes = {
          ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
          ...(body.description !== undefined ? { description: body.description } : {}),
          ...(body.expiresInDays !== undefined ? { expiresAt: expiryFrom(body.expiresInDays) } : {}),
        };
        if (Object.keys(changes).length > 0) {
          await meta.robots.update(row.id, changes);
          services.credentials.forget(row.name);
          const detail = { ...changes, ...(changes.expiresAt !== undefined ? { expiresAt: iso(changes.expiresAt) } : {}) };
          await audit(services, ctx, identity, { action: 'robot.update', resourceType: 'robot', resource: row.name, project: projectOfRobot(row.name) ?? null, detail });
        }
        return { body: await view((await meta.robots.findById(row.id))!) };
      },
    }),
    operation({
      id: 'refreshRobotSecret',
      method: 'POST',
      path: '/robots/{name}/refresh',
      tag: 'robots',
      summary: 'Replace the secret (robot.manage); the old one stops working at once, the new one is in this answer only',
      params: nameParam,
      response: z.object({ name: z.string(), secret: z.string() }),
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const row = await find(identity, params.name, 'robot.manage');
        const secret = newSecret();
        await meta.robots.update(row.id, { secretHash: hashSecret(secret) });
        services.credentials.forget(row.name);
        await audit(services, ctx, identity, { action: 'robot.refresh', resourceType: 'robot', resource: row.name, project: projectOfRobot(row.name) ?? null });
        return { body: { name: row.name, secret } };
      },
    }),
    operation({
      id: 'deleteRobot',
      method: 'DELETE',
      path: '/robots/{name}',
      tag: 'robots',
      summary: 'Delete a robot account (robot.manage)',
      params: nameParam,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const row = await find(identity, params.name, 'robot.manage');
        await meta.robots.delete(row.id);
        services.credentials.forget(row.name);
        await audit(services, ctx, identity, { action: 'robot.delete', resourceType: 'robot', resource: row.name, project: projectOfRobot(row.name) ?? null });
        return { status: 204 };
      },
    }),
  ];
}
