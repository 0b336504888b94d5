import { sql, type Insertable } from 'kysely';
import { containing, type DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { AuditLogTable, AuditRow } from './schema.ts';

type AuditInsert = Required<Omit<Insertable<AuditLogTable>, 'id'>>;

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

/** Rows are written in batches: at most this long after the first queued one… */
const BATCH_MS = 5;
/** …or as soon as this many are queued. */
const BATCH_ROWS = 200;

/**
 * The audit log: append-only, newest first when searched.
 *
 * Recording only queues the row: a batch is written every few milliseconds in one transaction, as
 * a relaxed commit (see `relaxed` in dialect.ts), so a login or a pull never waits for the disk.
 * The price, by design, is the audit of the last moment before a failure: a crash of Berth loses
 * the rows still queued (a few milliseconds' worth); a power cut also those committed within the
 * last second that no durable write has flushed since. A graceful shutdown writes everything.
 */
export class AuditStore {
  private queue: AuditInsert[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The batch being written (batches are written one after the other, in order). */
  private writing: Promise<void> = Promise.resolve();
  private readonly insert;
  /** Told about a batch that could not be written (the rows are lost; the caller was not waiting). */
  onError: (err: unknown, rows: number) => void = () => undefined;

  constructor(private readonly db: DB) {
    this.insert = new PreparedQuery(
      db,
      (time: number, actor: string, action: string, resourceType: string, resource: string, project: string | null, client: string | null, success: number, detail: string | null) =>
        db.insertInto('audit_log').values({ time, actor, action, resource_type: resourceType, resource, project, client, success, detail }),
      { relaxed: true },
    );
  }

  /** Queues an event; it is in the log once the batch is written (at once for `search`). */
  async record(event: AuditEvent): Promise<void> {
    this.queue.push({
      time: Date.now(),
      actor: event.actor,
      action: event.action,
      resource_type: event.resourceType,
      resource: event.resource.slice(0, 512),
      project: event.project ?? null,
      client: event.client?.slice(0, 64) ?? null,
      success: event.success ? 1 : 0,
      detail: event.detail ? JSON.stringify(event.detail) : null,
    });
    if (this.queue.length >= BATCH_ROWS) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), BATCH_MS);
      this.timer.unref();
    }
  }

  /** Writes every queued row; resolves once they (and earlier batches) are in the database. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.queue;
    if (rows.length > 0) {
      this.queue = [];
      this.writing = this.writing.then(() =>
        this.db
          .transaction()
          .execute(async (tx) => {
            for (const r of rows) await this.insert.run(tx, r.time, r.actor, r.action, r.resource_type, r.resource, r.project, r.client, r.success, r.detail);
          })
          .catch((err: unknown) => this.onError(err, rows.length)),
      );
    }
    await this.writing;
  }

  async search(q: AuditQuery): Promise<{ items: AuditRow[]; total: number }> {
    await this.flush();
    let query = this.db.selectFrom('audit_log');
    if (q.actor) query = query.where('actor', '=', q.actor);
    if (q.action) query = query.where('action', '=', q.action);
    if (q.project) query = query.where('project', '=', q.project);
    if (q.resource) query = query.where((eb) => eb(eb.fn('lower', ['resource']), 'like', containing(q.resource!)));
    if (q.from !== undefined) query = query.where('time', '>=', q.from);
    if (q.to !== undefined) query = query.where('time', '<=', q.to);
    // No visible project: nothing (PostgreSQL refuses a NUL in text, so no impossible name serves).
    if (q.projects) query = q.projects.length > 0 ? query.where('project', 'in', q.projects) : query.where(sql<boolean>`1 = 0`);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll().orderBy('time', 'desc').orderBy('id', 'desc').offset(q.offset).limit(q.limit).execute();
    return { items, total };
  }
}
