import type { DB } from './dialect.ts';
import { sqlDialectOf, type SqlDialect } from './jobs.ts';
import { PreparedQuery } from './prepared.ts';
import type { EventRow } from './schema.ts';

/**
 * What the outbox records:
 * - `artifact.pushed`: a manifest was stored (every successful manifest PUT, a repeated one too);
 *   with `tag`, the tag now points at `digest` (created or moved). detail: mediaType, size, subject.
 * - `artifact.deleted`: a manifest left the repository, with the tags that pointed at it (an index
 *   deleted takes children nothing else holds: one event each). detail: tags.
 * - `tag.deleted`: a tag was removed; `digest` is what it pointed at (the manifest stays).
 * - `quota.exceeded`: a push was refused by its project's quota (nothing changed; its own insert).
 *   detail: quotaBytes, usageBytes, sizeBytes.
 * - `quota.warning`: a push took its project's usage past the warning share of its quota
 *   (written with the push). detail: quotaBytes, usageBytes.
 * - `artifact.pulled`: a manifest was served (its own insert, after the answer, and only while some
 *   webhook subscribes to pulls: never on a pull's critical path).
 * - `retention.finished`, `replication.finished`: a run of the job ended (written by the run).
 *   detail: the job id, state and figures.
 */
export const EVENT_TYPES = [
  'artifact.pushed',
  'artifact.deleted',
  'tag.deleted',
  'quota.exceeded',
  'quota.warning',
  'artifact.pulled',
  'retention.finished',
  'replication.finished',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An event to append. */
export interface NewEvent {
  type: EventType;
  repository?: string | null;
  project?: string | null;
  digest?: string | null;
  tag?: string | null;
  /** Who made the change (user or robot name); null when not known. */
  actor?: string | null;
  detail?: Record<string, unknown>;
}

/** An event as consumers read it. */
export interface OutboxEvent {
  id: number;
  /** Milliseconds since the epoch, on the clock of the replica that made the change. */
  time: number;
  type: EventType;
  repository: string | null;
  project: string | null;
  digest: string | null;
  tag: string | null;
  actor: string | null;
  detail: Record<string, unknown> | null;
}

/** How long a gap in the ids is waited for before it is taken for a rollback (see EventStore). */
export const EVENT_GAP_GRACE_MS = 10_000;
/** Events are kept this long; `prune` removes older ones. */
export const EVENT_RETENTION_MS = 7 * 86_400_000;

/**
 * The event outbox: a durable record of changes, for consumers such as webhooks and event-based
 * replication, each reading with a cursor of its own.
 *
 * Guarantees:
 * - **Written with the change.** An event is inserted in the same transaction as the change it
 *   describes (`append(tx, …)`): a change that commits has its event, one that rolls back has none,
 *   and no replica failure can separate them. (Only `quota.exceeded`, which describes a refusal, is
 *   written on its own, after the refusal: a crash in between loses it.)
 * - **At least once.** `read` hands out events after the consumer's cursor; `ack` moves the cursor
 *   (never backwards). A consumer that fails before `ack` reads the same events again, so consumers
 *   must tolerate duplicates (e.g. by event id). Run one reader per consumer name at a time (e.g.
 *   inside a job), or expect more duplicates.
 * - **Order.** Events are handed out in id order. On SQLite, commits are serial, so id order is
 *   commit order. On PostgreSQL, ids are drawn from a sequence when the row is inserted (the last
 *   statement of the change's transaction), and transactions may commit out of that order: an id
 *   may become visible after a higher one. `read` therefore stops before a gap in the ids until
 *   the gap is filled or has been seen for `EVENT_GAP_GRACE_MS` (10 s) by this reader; then the
 *   gap is taken for a rolled-back transaction and passed. So consumers never see a lower id after
 *   a higher one, except that an event whose transaction commits more than 10 s after drawing its
 *   id — a stalled commit — may be skipped. Changes to the same tag are in the order they
 *   committed (the second waits for the first's row lock before it draws its id); other concurrent
 *   changes are in the order they drew their ids, which may differ from their commit order by the
 *   moment between the insert and the commit.
 * - **Retention.** Events are kept for 7 days (`EVENT_RETENTION_MS`, pruned by the daily
 *   `housekeeping` job); a consumer away for longer misses the oldest ones. The newest event is
 *   never pruned, so ids never start over.
 * - **Cost.** One insert in the change's existing transaction (the repository lookup the push made
 *   anyway now also reads the project's name); nothing else on the push's path.
 */
export class EventStore {
  readonly dialect: SqlDialect;
  private readonly insert;
  private readonly graceMs: number;
  /** Per consumer: the first missing id of each gap this reader has seen, with when (performance.now()). */
  private readonly gaps = new Map<string, Map<number, number>>();

  /** `gapGraceMs`: see the class comment (tests shorten it). */
  constructor(private readonly db: DB, options: { dialect?: SqlDialect; gapGraceMs?: number } = {}) {
    this.dialect = options.dialect ?? sqlDialectOf(db);
    this.graceMs = options.gapGraceMs ?? EVENT_GAP_GRACE_MS;
    this.insert = new PreparedQuery(
      db,
      (time: number, type: string, repository: string | null, project: string | null, digest: string | null, tag: string | null, actor: string | null, detail: string | null) =>
        db.insertInto('events').values({ time, type, repository, project, digest, tag, actor, detail }),
    );
  }

  /** Appends `event` within `tx`, the transaction of the change it describes (see the class comment). */
  async append(tx: DB, event: NewEvent, now = Date.now()): Promise<void> {
    await this.insert.run(
      tx,
      now,
      event.type,
      event.repository ?? null,
      event.project ?? null,
      event.digest ?? null,
      event.tag?.slice(0, 128) ?? null,
      event.actor?.slice(0, 255) ?? null,
      event.detail ? JSON.stringify(event.detail) : null,
    );
  }

  /** Appends an event that belongs to no change (a refusal) in a statement of its own. */
  async record(event: NewEvent, now = Date.now()): Promise<void> {
    await this.append(this.db, event, now);
  }

  /** The id up to which `consumer` has acknowledged events (0 for a new consumer: it starts at the oldest kept). */
  async cursor(consumer: string): Promise<number> {
    const row = await this.db.selectFrom('event_cursors').select('last_id').where('consumer', '=', consumer).executeTakeFirst();
    return row ? Number(row.last_id) : 0;
  }

  /**
   * Up to `limit` events after `consumer`'s cursor, in id order, stopping before a gap that may
   * still fill (see the class comment). The same events come again until they are acknowledged.
   */
  async read(consumer: string, limit: number): Promise<OutboxEvent[]> {
    const cursor = await this.cursor(consumer);
    const rows = await this.db.selectFrom('events').selectAll().where('id', '>', cursor).orderBy('id').limit(limit).execute();
    const events = rows.map(view);
    if (this.dialect === 'sqlite') return events;
    const seen = this.gaps.get(consumer) ?? new Map<number, number>();
    this.gaps.set(consumer, seen);
    const now = performance.now();
    let expected = cursor + 1;
    let handed = 0;
    for (const event of events) {
      if (event.id > expected) {
        const since = seen.get(expected);
        if (since === undefined) seen.set(expected, now);
        if (since === undefined || now - since < this.graceMs) break;
      }
      handed++;
      expected = event.id + 1;
    }
    for (const first of seen.keys()) if (first < expected) seen.delete(first);
    return events.slice(0, handed);
  }

  /** Moves `consumer`'s cursor to `lastId` (never backwards): events up to it are not read again. */
  async ack(consumer: string, lastId: number, now = Date.now()): Promise<void> {
    await this.db
      .insertInto('event_cursors')
      .values({ consumer, last_id: lastId, updated_at: now })
      .onConflict((oc) => oc.column('consumer').doUpdateSet({ last_id: lastId, updated_at: now }).where('event_cursors.last_id', '<', lastId))
      .execute();
  }

  /** Deletes events older than `before` (ms), except the newest event; returns how many. */
  async prune(before: number): Promise<number> {
    const newest = this.db.selectFrom('events').select((eb) => eb.fn.max('id').as('id'));
    const result = await this.db.deleteFrom('events').where('time', '<', before).where('id', '<', newest).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function view(row: EventRow): OutboxEvent {
  return {
    id: Number(row.id),
    time: Number(row.time),
    type: row.type as EventType,
    repository: row.repository,
    project: row.project,
    digest: row.digest,
    tag: row.tag,
    actor: row.actor,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
  };
}
