/**
 * Project roles and what each may do: Harbor's five built-in roles and its permission matrix, in one
 * table. The README's matrix is this table. System administrators may do everything everywhere.
 */
export const ROLES = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const;
export type Role = (typeof ROLES)[number];

/** Everything that can be allowed on a project. */
export const PERMISSIONS = [
  'project.read', // see the project, its settings, quota and usage
  'project.update', // visibility, quota
  'project.delete',
  'member.list',
  'member.manage', // add, change role, remove
  'log.list', // the project's audit log
  'repository.list', // repositories, artifacts, tags
  'repository.pull',
  'repository.push', // push artifacts and tags (creates repositories)
  'repository.delete', // delete artifacts, tags and repositories
  'robot.list',
  'robot.manage', // create, refresh, disable, delete project robots
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const ALL = new Set<Permission>(PERMISSIONS);

/** Harbor's matrix ("User Permissions By Role"), for the permissions Berth has. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  projectAdmin: ALL,
  maintainer: new Set<Permission>(['project.read', 'member.list', 'log.list', 'repository.list', 'repository.pull', 'repository.push', 'repository.delete', 'robot.list']),
  developer: new Set<Permission>(['project.read', 'member.list', 'log.list', 'repository.list', 'repository.pull', 'repository.push']),
  guest: new Set<Permission>(['project.read', 'member.list', 'log.list', 'repository.list', 'repository.pull']),
  limitedGuest: new Set<Permission>(['project.read', 'repository.list', 'repository.pull']),
};

/** What anyone (anonymous callers included) may do in a public project. */
export const PUBLIC_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>(['project.read', 'repository.list', 'repository.pull']);

/** Robot permission names (as granted per project) → the permissions they carry. */
export const ROBOT_ACTIONS = {
  pull: ['repository.pull'],
  push: ['repository.push'],
  delete: ['repository.delete'],
  list: ['project.read', 'repository.list'],
} as const satisfies Record<string, readonly Permission[]>;
export type RobotAction = keyof typeof ROBOT_ACTIONS;
export const ROBOT_ACTION_NAMES = Object.keys(ROBOT_ACTIONS) as RobotAction[];

/** Registry (token scope) actions on a repository → the permission each needs. */
export const REPOSITORY_ACTION_PERMISSION: Readonly<Record<string, Permission>> = {
  pull: 'repository.pull',
  push: 'repository.push',
  delete: 'repository.delete',
};

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
