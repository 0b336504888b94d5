import type { DB } from './dialect.ts';
import type { AuditRow } from './schema.ts';

export interface AuditEvent {
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  project?: string | null;
  client?: string | null;
  success: boolean;
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  project?: string;
  /** Substring of the resource. */
  resource?: string;
  /** Milliseconds since the epoch, inclusive. */
  from?: number;
  to?: number;
  /** Only events of these projects (a caller's visible projects); undefined: no restriction. */
  projects?: string[];
  offset: number;
  limit: number;
}

/** The audit log: append-only, newest first when searched. */
export class AuditStore {
  constructor(private readonly db: DB) {}

  async record(event: AuditEvent): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({
        time: Date.now(),
        actor: event.actor,
        action: event.action,
        resource_type: event.resourceType,
        resource: event.resource.slice(0, 512),
        project: event.project ?? null,
        client: event.client?.slice(0, 64) ?? null,
        success: event.success ? 1 : 0,
        detail: event.detail ? JSON.stringify(event.detail) : null,
      })
      .execute();
  }

  async search(q: AuditQuery): Promise<{ items: AuditRow[]; total: number }> {
    let query = this.db.selectFrom('audit_log');
    if (q.actor) query = query.where('actor', '=', q.actor);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.project) query = query.where('project', '=', q.project);
    if (q.resource) query = query.where('resource', 'like', `%${q.resource.replace(/[%_\\]/g, '')}%`);
    if (q.from !== undefined) query = query.where('time', '>=', q.from);
    if (q.to !== undefined) query = query.where('time', '<=', q.to);
    if (q.projects) query = q.projects.length > 0 ? query.where('project', 'in', q.projects) : query.where('project', '=', '\u0000none');
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll().orderBy('time', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { items, total };
  }
}
