import type { DB } from './dialect.ts';
import { containing } from './dialect.ts';
import type { GroupRow } from './schema.ts';

/** A group as an identity source names it: its stable id there and its display name. */
export interface GroupRef {
  externalId: string;
  name: string;
}

/** What changed in a user's groups at a sync. */
export interface MembershipChange {
  added: GroupRow[];
  removed: GroupRow[];
}

/**
 * Groups of the identity sources (LDAP groups, OIDC groups-claim values) and who is in them. A
 * group row exists once a member signed in or an administrator named it as a project member; a
 * user's memberships are replaced at each sign-in (and LDAP re-check) with what the source says.
 */
export class GroupStore {
  constructor(private readonly db: DB) {}

  /** The rows of these groups of `source`, created when missing (a renamed group gets its new name). */
  async upsert(source: string, refs: readonly GroupRef[]): Promise<GroupRow[]> {
    const rows: GroupRow[] = [];
    for (const ref of refs) {
      await this.db
        .insertInto('groups')
        .values({ source, name: ref.name, external_id: ref.externalId, created_at: Date.now() })
        .onConflict((oc) => oc.columns(['source', 'external_id']).doUpdateSet({ name: ref.name }))
        .execute();
      rows.push(await this.db.selectFrom('groups').selectAll().where('source', '=', source).where('external_id', '=', ref.externalId).executeTakeFirstOrThrow());
    }
    return rows;
  }

  /** The groups named `name` (several sources, or LDAP groups of the same name in different places). */
  async byName(name: string): Promise<GroupRow[]> {
    return this.db.selectFrom('groups').selectAll().where('name', '=', name).orderBy('id').execute();
  }

  /** The group with this id. */
  async get(id: number): Promise<GroupRow | undefined> {
    return this.db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** A page of groups by name, optionally of one source or with `nameLike` in the name. */
  async list(options: { source?: string; nameLike?: string; offset: number; limit: number }): Promise<{ items: (GroupRow & { members: number })[]; total: number }> {
    let query = this.db.selectFrom('groups');
    if (options.source) query = query.where('source', '=', options.source);
    // containing() lower-cases; names keep their case (and PostgreSQL's LIKE does not fold it).
    if (options.nameLike) query = query.where((eb) => eb(eb.fn('lower', ['name']), 'like', containing(options.nameLike!)));
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query
      .selectAll('groups')
      .select((eb) => eb.selectFrom('group_memberships').select((e) => e.fn.countAll<number>().as('c')).whereRef('group_memberships.group_id', '=', 'groups.id').as('members'))
      .orderBy('name')
      .orderBy('id')
      .offset(options.offset)
      .limit(options.limit)
      .execute();
    return { items: items.map((g) => ({ ...g, members: Number(g.members ?? 0) })), total };
  }

  /** The group of `source` whose id there is exactly `externalId` (an LDAP DN as stored). */
  async byExternalId(source: string, externalId: string): Promise<GroupRow | undefined> {
    return this.db.selectFrom('groups').selectAll().where('source', '=', source).where('external_id', '=', externalId).executeTakeFirst();
  }

  /** The group's members (as of their last sign-in), by name, at most `limit`, with how many there are in all. */
  async members(groupId: number, limit: number): Promise<{ items: { username: string; email: string | null; last_login_at: number | null }[]; total: number }> {
    const items = await this.db
      .selectFrom('group_memberships as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['u.username', 'u.email', 'u.last_login_at'])
      .where('m.group_id', '=', groupId)
      .orderBy('u.username')
      .limit(limit)
      .execute();
    const row = await this.db.selectFrom('group_memberships').select((eb) => eb.fn.countAll<number>().as('n')).where('group_id', '=', groupId).executeTakeFirstOrThrow();
    return { items, total: Number(row.n) };
  }

  /** The projects where the group has a role, by name. */
  async projects(groupId: number): Promise<{ name: string; role: string; created_at: number }[]> {
    return this.db
      .selectFrom('project_group_members as pg')
      .innerJoin('projects as p', 'p.id', 'pg.project_id')
      .select(['p.name', 'pg.role', 'pg.created_at'])
      .where('pg.group_id', '=', groupId)
      .orderBy('p.name')
      .execute();
  }

  /** The groups `userId` is in, by name. */
  async ofUser(userId: number): Promise<GroupRow[]> {
    return this.db.selectFrom('groups as g').innerJoin('group_memberships as m', 'm.group_id', 'g.id').selectAll('g').where('m.user_id', '=', userId).orderBy('g.name').execute();
  }

  /** Makes `groupIds` exactly the user's groups; returns what was added and removed. */
  async setUserGroups(userId: number, groupIds: readonly number[]): Promise<MembershipChange> {
    return this.db.transaction().execute(async (tx) => {
      const before = await tx.selectFrom('groups as g').innerJoin('group_memberships as m', 'm.group_id', 'g.id').selectAll('g').where('m.user_id', '=', userId).execute();
      const want = new Set(groupIds);
      const had = new Set(before.map((g) => g.id));
      const removed = before.filter((g) => !want.has(g.id));
      const addedIds = [...want].filter((id) => !had.has(id));
      if (removed.length > 0) await tx.deleteFrom('group_memberships').where('user_id', '=', userId).where('group_id', 'in', removed.map((g) => g.id)).execute();
      // Two sign-ins of one person at once (two replicas) may add the same membership: the second is a no-op.
      if (addedIds.length > 0) await tx.insertInto('group_memberships').values(addedIds.map((group_id) => ({ user_id: userId, group_id }))).onConflict((oc) => oc.columns(['user_id', 'group_id']).doNothing()).execute();
      const added = addedIds.length > 0 ? await tx.selectFrom('groups').selectAll().where('id', 'in', addedIds).execute() : [];
      return { added, removed };
    });
  }
}
