import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';

/** A project member: a user, or a group of an identity source whose members all have the role. */
export type Member =
  | { kind: 'user'; name: string; role: string; createdAt: number }
  | { kind: 'group'; name: string; groupId: number; source: string; externalId: string; role: string; createdAt: number };

/**
 * Who has which role in which project. A user's permissions in a project are the union of their
 * own role and the roles of the groups they belong to (group_memberships, as the identity source
 * said at their last sign-in).
 */
export class MemberStore {
  private readonly roles;
  private readonly ownRole;

  constructor(private readonly db: DB) {
    // Read on every token request of a non-admin user: one statement for own and group roles.
    this.roles = new PreparedQuery(db, (projectId: number, userId: number) =>
      db
        .selectFrom('project_members')
        .select('role')
        .where('project_id', '=', projectId)
        .where('user_id', '=', userId)
        .union(
          db
            .selectFrom('project_group_members as pg')
            .innerJoin('group_memberships as gm', 'gm.group_id', 'pg.group_id')
            .select('pg.role')
            .where('pg.project_id', '=', projectId)
            .where('gm.user_id', '=', userId),
        ),
    );
    this.ownRole = new PreparedQuery(db, (projectId: number, userId: number) =>
      db.selectFrom('project_members').select('role').where('project_id', '=', projectId).where('user_id', '=', userId),
    );
  }

  /** Every role `userId` has in the project: their own and their groups' (empty: none). */
  async rolesOf(projectId: number, userId: number): Promise<string[]> {
    return (await this.roles.all(projectId, userId)).map((r) => r.role);
  }

  /** The user's own role in the project (not through a group), if a member. */
  async roleOf(projectId: number, userId: number): Promise<string | undefined> {
    return (await this.ownRole.first(projectId, userId))?.role;
  }

  /** Ids of the projects a user belongs to, themselves or through a group. */
  async projectsOf(userId: number): Promise<number[]> {
    const rows = await this.db
      .selectFrom('project_members')
      .select('project_id')
      .where('user_id', '=', userId)
      .union(this.db.selectFrom('project_group_members as pg').innerJoin('group_memberships as gm', 'gm.group_id', 'pg.group_id').select('pg.project_id').where('gm.user_id', '=', userId))
      .execute();
    return rows.map((r) => r.project_id);
  }

  /** Adds a user or changes their role. */
  async setUser(projectId: number, userId: number, role: string): Promise<void> {
    await this.db
      .insertInto('project_members')
      .values({ project_id: projectId, user_id: userId, role, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['project_id', 'user_id']).doUpdateSet({ role }))
      .execute();
  }

  /** Removes a user (their groups' roles remain); false when they were not a member themselves. */
  async removeUser(projectId: number, userId: number): Promise<boolean> {
    const result = await this.db.deleteFrom('project_members').where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The group's role in the project, if it is a member. */
  async groupRoleOf(projectId: number, groupId: number): Promise<string | undefined> {
    return (await this.db.selectFrom('project_group_members').select('role').where('project_id', '=', projectId).where('group_id', '=', groupId).executeTakeFirst())?.role;
  }

  /** Adds a group or changes its role. */
  async setGroup(projectId: number, groupId: number, role: string): Promise<void> {
    await this.db
      .insertInto('project_group_members')
      .values({ project_id: projectId, group_id: groupId, role, created_at: Date.now() })
      .onConflict((oc) => oc.columns(['project_id', 'group_id']).doUpdateSet({ role }))
      .execute();
  }

  /** Removes a group; false when it was not a member. */
  async removeGroup(projectId: number, groupId: number): Promise<boolean> {
    const result = await this.db.deleteFrom('project_group_members').where('project_id', '=', projectId).where('group_id', '=', groupId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /** The project's members: users by name, then groups by name. */
  async list(projectId: number): Promise<Member[]> {
    const users = await this.db
      .selectFrom('project_members as pm')
      .innerJoin('users as u', 'u.id', 'pm.user_id')
      .select(['u.username', 'pm.role', 'pm.created_at'])
      .where('pm.project_id', '=', projectId)
      .orderBy('u.username')
      .execute();
    const groups = await this.db
      .selectFrom('project_group_members as pg')
      .innerJoin('groups as g', 'g.id', 'pg.group_id')
      .select(['g.id', 'g.name', 'g.source', 'g.external_id', 'pg.role', 'pg.created_at'])
      .where('pg.project_id', '=', projectId)
      .orderBy('g.name')
      .orderBy('g.id')
      .execute();
    return [
      ...users.map((r): Member => ({ kind: 'user', name: r.username, role: r.role, createdAt: Number(r.created_at) })),
      ...groups.map((r): Member => ({ kind: 'group', name: r.name, groupId: r.id, source: r.source, externalId: r.external_id, role: r.role, createdAt: Number(r.created_at) })),
    ];
  }
}
