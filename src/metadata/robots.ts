import type { DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { RobotRow } from './schema.ts';

/** One grant of a robot: actions in a project (`project` null: every project). */
export interface RobotGrant {
  project: string | null;
  actions: string[];
}

export interface NewRobot {
  name: string;
  description: string;
  level: 'project' | 'system';
  secretHash: string;
  expiresAt: number | null;
  createdBy: string | null;
  /** Project ids (null: every project) and the actions allowed there. */
  grants: { projectId: number | null; actions: string[] }[];
}

/** Robot accounts and what each may do. Secrets arrive hashed. */
export class RobotStore {
  private readonly byName;
  private readonly grantRows;

  constructor(private readonly db: DB) {
    this.byName = new PreparedQuery(db, (name: string) => db.selectFrom('robots').selectAll().where('name', '=', name));
    this.grantRows = new PreparedQuery(db, (robotId: number) =>
      db
        .selectFrom('robot_permissions as rp')
        .leftJoin('projects as p', 'p.id', 'rp.project_id')
        .select(['p.name', 'rp.project_id', 'rp.actions'])
        .where('rp.robot_id', '=', robotId),
    );
  }

  async find(name: string): Promise<RobotRow | undefined> {
    return this.byName.first(name);
  }

  async findById(id: number): Promise<RobotRow | undefined> {
    return this.db.selectFrom('robots').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Creates a robot with its grants; false when the name is taken. */
  async create(robot: NewRobot): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const inserted = await tx
        .insertInto('robots')
        .values({
          name: robot.name,
          description: robot.description,
          level: robot.level,
          secret_hash: robot.secretHash,
          disabled: 0,
          expires_at: robot.expiresAt,
          created_by: robot.createdBy,
          created_at: Date.now(),
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      const id = (await tx.selectFrom('robots').select('id').where('name', '=', robot.name).executeTakeFirstOrThrow()).id;
      for (const grant of robot.grants) {
        await tx.insertInto('robot_permissions').values({ robot_id: id, project_id: grant.projectId, actions: grant.actions.join(',') }).execute();
      }
      return true;
    });
  }

  /** The grants of a robot, with project names. */
  async grants(robotId: number): Promise<RobotGrant[]> {
    const rows = await this.grantRows.all(robotId);
    return rows.map((r) => ({ project: r.project_id === null ? null : (r.name ?? null), actions: r.actions.split(',').filter(Boolean) }));
  }

  /** Robots, optionally only those with a grant in `projectId`. */
  async list(projectId?: number): Promise<RobotRow[]> {
    let query = this.db.selectFrom('robots').selectAll().orderBy('name');
    if (projectId !== undefined) {
      query = query.where((eb) => eb.exists(eb.selectFrom('robot_permissions as rp').select('rp.robot_id').whereRef('rp.robot_id', '=', 'robots.id').where('rp.project_id', '=', projectId)));
    }
    return query.execute();
  }

  async update(id: number, changes: { secretHash?: string; disabled?: boolean; expiresAt?: number | null; description?: string }): Promise<boolean> {
    const set: Partial<{ secret_hash: string; disabled: number; expires_at: number | null; description: string }> = {};
    if (changes.secretHash !== undefined) set.secret_hash = changes.secretHash;
    if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
    if (changes.expiresAt !== undefined) set.expires_at = changes.expiresAt;
    if (changes.description !== undefined) set.description = changes.description;
    const result = await this.db.updateTable('robots').set(set).where('id', '=', id).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async delete(id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('robots').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
