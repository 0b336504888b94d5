import { projectOf } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import type { ProjectRow } from '../metadata/schema.ts';
import type { Identity } from './identity.ts';
import { PUBLIC_PERMISSIONS, REPOSITORY_ACTION_PERMISSION, ROBOT_ACTIONS, ROLE_PERMISSIONS, isRole, type Permission, type RobotAction } from './roles.ts';

/**
 * Decides which actions an identity may take on a resource. The token service grants the
 * intersection of what is asked and what this allows; `/v2` handlers consult it to tell
 * "not allowed" (403 DENIED) from "token lacks the scope" (401 with a challenge).
 */
export interface Authorizer {
  /** The subset of `requested` that `identity` may perform on `type`/`name` (token scope terms). */
  allowedActions(identity: Identity, type: string, name: string, requested: readonly string[]): Promise<string[]>;
  /** Which projects `identity` may see, for the catalog and listings. */
  visibility(identity: Identity): Promise<Visibility>;
  /** Whether `identity` is a system administrator (a user whose account has the admin flag now). */
  isAdmin(identity: Identity): Promise<boolean>;
}

/** Which projects an identity may see: every one, or these ids. */
export type Visibility = { all: true } | { all: false; projectIds: number[] };

const CACHE_MS = 5_000;

/**
 * Harbor's model: system administrators may do everything; users act in a project through their
 * role (src/auth/roles.ts); robots through their per-project grants; anyone may pull from public
 * projects (and from every project when `auth.anonymousPull` is on). A project that does not exist
 * yet may be pushed into by administrators only (the push creates it).
 */
export class ProjectAuthorizer implements Authorizer {
  private readonly users = new Map<string, { at: number; row: { id: number; isAdmin: boolean } | undefined }>();

  constructor(private readonly meta: Metadata, private readonly anonymousPull: boolean) {
    meta.changes.subscribe('principal', (name) => (name === undefined ? this.users.clear() : this.users.delete(name)));
  }

  async allowedActions(identity: Identity, type: string, name: string, requested: readonly string[]): Promise<string[]> {
    if (type === 'registry') {
      // The catalog: any signed-in identity may list it; the listing shows only what it may see.
      return identity.kind === 'anonymous' ? [] : requested.filter((a) => a === '*');
    }
    if (type !== 'repository') return [];
    const project = await this.meta.projects.find(projectOf(name));
    if (!project) return (await this.isAdmin(identity)) ? requested.filter((a) => isRepositoryAction(a) || a === '*') : [];
    const permissions = await this.permissions(identity, project);
    return requested.filter((action) =>
      action === '*'
        ? permissions.has('repository.pull') && permissions.has('repository.push') && permissions.has('repository.delete')
        : isRepositoryAction(action) && permissions.has(REPOSITORY_ACTION_PERMISSION[action]!),
    );
  }

  /** Everything `identity` may do in `project`. */
  async permissions(identity: Identity, project: ProjectRow): Promise<Set<Permission>> {
    const granted = new Set<Permission>();
    const add = (list: Iterable<Permission>) => {
      for (const p of list) granted.add(p);
    };
    if (project.public === 1) add(PUBLIC_PERMISSIONS);
    if (this.anonymousPull) add(['repository.pull']);
    if (identity.kind === 'user') {
      const user = await this.user(identity.name);
      if (!user) return granted;
      if (user.isAdmin) return new Set(ROLE_PERMISSIONS.projectAdmin);
      // Their own role and their groups' roles: the union of what each allows.
      for (const role of await this.meta.members.rolesOf(project.id, user.id)) if (isRole(role)) add(ROLE_PERMISSIONS[role]);
    } else if (identity.kind === 'robot') {
      const robot = await this.meta.robots.find(identity.name);
      if (!robot || robot.disabled === 1 || (robot.expires_at !== null && Number(robot.expires_at) <= Date.now())) return granted;
      for (const grant of await this.meta.robots.grants(robot.id)) {
        if (grant.project !== null && grant.project !== project.name) continue;
        for (const action of grant.actions) add(ROBOT_ACTIONS[action as RobotAction] ?? []);
      }
    }
    return granted;
  }

  /** Which projects `identity` may see (for the catalog and project lists). */
  async visibility(identity: Identity): Promise<Visibility> {
    if (await this.isAdmin(identity)) return { all: true };
    const ids = new Set<number>();
    if (identity.kind === 'user') {
      const user = await this.user(identity.name);
      if (user) for (const id of await this.meta.members.projectsOf(user.id)) ids.add(id);
    } else if (identity.kind === 'robot') {
      const robot = await this.meta.robots.find(identity.name);
      if (robot) {
        const grants = await this.meta.robots.grants(robot.id);
        if (grants.some((g) => g.project === null)) return { all: true };
        for (const g of grants) {
          const p = g.project === null ? undefined : await this.meta.projects.find(g.project);
          if (p) ids.add(p.id);
        }
      }
    }
    if (this.anonymousPull) return { all: true };
    const publicOnes = await this.meta.projects.list({ all: false, memberOf: [], offset: 0, limit: 100_000 });
    for (const p of publicOnes.items) ids.add(p.id);
    return { all: false, projectIds: [...ids] };
  }

  async isAdmin(identity: Identity): Promise<boolean> {
    return identity.kind === 'user' && (await this.user(identity.name))?.isAdmin === true;
  }

  /**
   * Drops what is cached about a user, so a change (admin flag taken or given, user deleted or
   * re-created) applies to the very next request on this replica rather than within seconds, and
   * on every other replica a notification's trip later (the change feed's `principal` topic).
   */
  forget(name: string): void {
    this.users.delete(name);
    void this.meta.changes.publish('principal', name);
  }

  /**
   * A user's id and admin flag, cached briefly (a token's subject is looked up on every request);
   * not from the cache while the change feed does not hear other replicas.
   */
  private async user(name: string): Promise<{ id: number; isAdmin: boolean } | undefined> {
    const hit = this.users.get(name);
    if (hit && Date.now() - hit.at < CACHE_MS && this.meta.changes.live) return hit.row;
    const since = this.meta.changes.version('principal');
    const found = await this.meta.users.find(name);
    const row = found ? { id: found.id, isAdmin: found.is_admin === 1 } : undefined;
    if (!this.meta.changes.unchangedSince('principal', since)) return row;
    if (this.users.size > 10_000) this.users.clear();
    this.users.set(name, { at: Date.now(), row });
    return row;
  }
}

/** Whether `action` is one of the repository actions (an own key: `constructor` or `toString` are not). */
function isRepositoryAction(action: string): boolean {
  return Object.hasOwn(REPOSITORY_ACTION_PERMISSION, action);
}
