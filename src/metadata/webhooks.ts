// Webhook policies of projects and the deliveries queued for them (tables `webhooks` and
// `webhook_deliveries`, migration 0012). Rows are kept as given — the secret and the auth header
// sealed by the caller (src/webhooks/policies.ts seals and opens them) — and every delivery is one
// message to one policy: queued once per outbox event, claimed by the policy's delivery job,
// settled delivered, retried later or failed.
import type { ChangeFeed } from './changes.ts';
import type { DB } from './dialect.ts';
import type { WebhookDeliveryRow, WebhookRow } from './schema.ts';

/** A policy to create. `secret` and `authHeader` are already sealed (never the plain values). */
export interface NewWebhook {
  projectId: number;
  name: string;
  description: string | null;
  url: string;
  events: readonly string[];
  format: string;
  authHeader: string | null;
  secret: string | null;
  caFile: string | null;
  insecure: boolean;
  enabled: boolean;
  createdBy: string | null;
}

/** What `update` may change (the name never changes: sealed values are bound to it). Absent: unchanged. */
export type WebhookChanges = Partial<Omit<NewWebhook, 'projectId' | 'name' | 'createdBy'>>;

/** A delivery to queue. */
export interface NewDelivery {
  webhookId: number;
  /** The outbox event; null for a test event (never deduplicated). */
  eventId: number | null;
  eventType: string;
  messageId: string;
  payload: string;
}

/** Delivery states: `pending` (queued, or waiting for a retry), `delivered`, `failed` (attempts exhausted). */
export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** How one attempt went, as `settle` records it. */
export interface AttemptResult {
  /** `delivered`; `retry` at `nextAt`; `failed` for good. */
  outcome: 'delivered' | 'retry' | 'failed';
  nextAt?: number;
  statusCode: number | null;
  /** At most 1 KiB of the receiver's answer. */
  response: string | null;
  error: string | null;
  durationMs: number;
}

/** A page of rows, with the total for pagination. */
export interface Page<T> {
  items: T[];
  total: number;
}

/**
 * The webhook tables. Policies: CRUD per project, names unique within a project. Deliveries: a
 * small queue per policy, safe to use from several replicas (claims move `next_at` past the claim,
 * so a second claimer skips a delivery in flight; a claim left by a dead replica comes due again
 * when it lapses). Every policy change made through this store is published on the change feed
 * (topic `webhook`): `onChange` listeners of every replica hear it. Errors: only the database's own.
 */
export class WebhookStore {
  private readonly pulls = { watched: false, at: -Infinity, loading: false, again: false };
  /** How long `pullsWatched` serves a value before reading it again, ms. */
  static readonly PULLS_TTL_MS = 2_000;

  constructor(
    private readonly db: DB,
    private readonly changes: ChangeFeed,
  ) {
    changes.subscribe('webhook', () => {
      this.pulls.at = -Infinity;
      this.refreshPulls();
    });
  }

  /** Calls `listener` after every policy change heard on the change feed (this replica's and the others'); returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    return this.changes.subscribe('webhook', () => listener());
  }

  private async changed(projectId: number): Promise<void> {
    await this.changes.publish('webhook', String(projectId));
  }

  // ---- policies ----

  /** Policy `name` of project `projectId`. */
  async find(projectId: number, name: string): Promise<WebhookRow | undefined> {
    return normalize(await this.db.selectFrom('webhooks').selectAll().where('project_id', '=', projectId).where('name', '=', name).executeTakeFirst());
  }

  /** Policy `id`, whatever its project (for the delivery job). */
  async findById(id: number): Promise<WebhookRow | undefined> {
    return normalize(await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst());
  }

  /** The project's policies by name. */
  async list(projectId: number, options: { offset: number; limit: number }): Promise<Page<WebhookRow>> {
    const query = this.db.selectFrom('webhooks').where('project_id', '=', projectId);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll().orderBy('name').offset(options.offset).limit(options.limit).execute();
    return { items: items.map((r) => normalize(r)!), total };
  }

  /** The enabled policies of the project named `project` (what fan-out reads, cached by its caller). */
  async enabledFor(project: string): Promise<WebhookRow[]> {
    const rows = await this.db
      .selectFrom('webhooks as w')
      .innerJoin('projects as p', 'p.id', 'w.project_id')
      .selectAll('w')
      .where('p.name', '=', project)
      .where('w.enabled', '=', 1)
      .orderBy('w.id')
      .execute();
    return rows.map((r) => normalize(r)!);
  }

  /** Creates a policy and returns its row; undefined when the project has one of that name already. */
  async create(values: NewWebhook, now = Date.now()): Promise<WebhookRow | undefined> {
    const result = await this.db
      .insertInto('webhooks')
      .values({
        project_id: values.projectId,
        name: values.name,
        description: values.description,
        url: values.url,
        events: JSON.stringify(values.events),
        format: values.format,
        auth_header: values.authHeader,
        secret: values.secret,
        ca_file: values.caFile,
        insecure: values.insecure ? 1 : 0,
        enabled: values.enabled ? 1 : 0,
        created_by: values.createdBy,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.columns(['project_id', 'name']).doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    await this.changed(values.projectId);
    return this.find(values.projectId, values.name);
  }

  /** Changes policy `name` of the project; its new row, or undefined when there is none. */
  async update(projectId: number, name: string, changes: WebhookChanges, now = Date.now()): Promise<WebhookRow | undefined> {
    const set: Partial<Omit<WebhookRow, 'id' | 'project_id' | 'name' | 'created_at' | 'created_by'>> = { updated_at: now };
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.url !== undefined) set.url = changes.url;
    if (changes.events !== undefined) set.events = JSON.stringify(changes.events);
    if (changes.format !== undefined) set.format = changes.format;
    if (changes.authHeader !== undefined) set.auth_header = changes.authHeader;
    if (changes.secret !== undefined) set.secret = changes.secret;
    if (changes.caFile !== undefined) set.ca_file = changes.caFile;
    if (changes.insecure !== undefined) set.insecure = changes.insecure ? 1 : 0;
    if (changes.enabled !== undefined) set.enabled = changes.enabled ? 1 : 0;
    const result = await this.db.updateTable('webhooks').set(set).where('project_id', '=', projectId).where('name', '=', name).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    await this.changed(projectId);
    return this.find(projectId, name);
  }

  /** Deletes policy `name` of the project with its deliveries; false when there is none. */
  async delete(projectId: number, name: string): Promise<boolean> {
    const row = await this.find(projectId, name);
    if (!row) return false;
    await this.db.transaction().execute(async (tx) => {
      // Explicitly: SQLite enforces the cascade only with foreign keys on.
      await tx.deleteFrom('webhook_deliveries').where('webhook_id', '=', row.id).execute();
      await tx.deleteFrom('webhooks').where('id', '=', row.id).execute();
    });
    await this.changed(projectId);
    return true;
  }

  /**
   * Whether some enabled policy subscribes to `artifact.pulled` — what the pull path asks before
   * recording a pull. Synchronous and cheap: answers from memory, read again in the background
   * when the change feed tells of a policy change on any replica, and when the value is older than
   * `PULLS_TTL_MS` (what a missed notification can leave stale). False until the first read completes.
   */
  pullsWatched(): boolean {
    if (!this.pulls.loading && performance.now() - this.pulls.at > WebhookStore.PULLS_TTL_MS) this.refreshPulls();
    return this.pulls.watched;
  }

  /** Reads whether pulls are watched, in the background; once more after a change made while reading. */
  private refreshPulls(): void {
    const pulls = this.pulls;
    if (pulls.loading) {
      pulls.again = true;
      return;
    }
    pulls.loading = true;
    pulls.again = false;
    const started = performance.now();
    this.db
      .selectFrom('webhooks')
      .select('id')
      .where('enabled', '=', 1)
      .where('events', 'like', '%"artifact.pulled"%')
      .limit(1)
      .executeTakeFirst()
      .then(
        (row) => {
          pulls.watched = row !== undefined;
          pulls.at = started;
        },
        // Tried again at the next pull.
        () => undefined,
      )
      .finally(() => {
        pulls.loading = false;
        if (pulls.again) this.refreshPulls();
      });
  }

  // ---- deliveries ----

  /**
   * Queues deliveries (state pending, due at `now`). One per (webhook, event): a delivery of an
   * event already queued for the webhook is skipped. Returns the ids of the rows created.
   */
  async queue(deliveries: readonly NewDelivery[], now = Date.now()): Promise<number[]> {
    const ids: number[] = [];
    // Rows in chunks: an outbox batch may queue hundreds at once.
    for (let start = 0; start < deliveries.length; start += 100) {
      const rows = await this.db
        .insertInto('webhook_deliveries')
        .values(
          deliveries.slice(start, start + 100).map((d) => ({
            webhook_id: d.webhookId,
            event_id: d.eventId,
            event_type: d.eventType,
            message_id: d.messageId,
            payload: d.payload,
            state: 'pending',
            attempts: 0,
            status_code: null,
            response: null,
            error: null,
            duration_ms: null,
            next_at: now,
            created_at: now,
            updated_at: now,
            delivered_at: null,
          })),
        )
        .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
        .returning('id')
        .execute();
      for (const row of rows) ids.push(Number(row.id));
    }
    return ids;
  }

  /**
   * Takes up to `limit` due deliveries of webhook `webhookId` (pending, `next_at` ≤ now), oldest
   * first: each gets one more attempt and is not due again before `now + holdMs` — by then the
   * claimer has settled it, or died and another claims it again.
   */
  async claim(webhookId: number, limit: number, holdMs: number, now = Date.now()): Promise<WebhookDeliveryRow[]> {
    const due = await this.db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('webhook_id', '=', webhookId)
      .where('state', '=', 'pending')
      .where('next_at', '<=', now)
      .orderBy('id')
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    const rows = await this.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_at: now + holdMs, updated_at: now }))
      .where(
        'id',
        'in',
        due.map((r) => Number(r.id)),
      )
      // A claimer that raced this one took what it changed first.
      .where('state', '=', 'pending')
      .where('next_at', '<=', now)
      .returningAll()
      .execute();
    return rows.map((r) => normalizeDelivery(r)!).sort((a, b) => a.id - b.id);
  }

  /** Records how attempt `attempt` of delivery `id` went; a no-op when the delivery was reset (redelivered) or settled meanwhile. */
  async settle(id: number, attempt: number, result: AttemptResult, now = Date.now()): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({
        state: result.outcome === 'retry' ? 'pending' : result.outcome,
        next_at: result.outcome === 'retry' ? (result.nextAt ?? now) : null,
        status_code: result.statusCode,
        response: result.response,
        error: result.error?.slice(0, 1024) ?? null,
        duration_ms: Math.round(result.durationMs),
        updated_at: now,
        ...(result.outcome === 'delivered' ? { delivered_at: now } : {}),
      })
      .where('id', '=', id)
      .where('attempts', '=', attempt)
      .where('state', '=', 'pending')
      .execute();
  }

  /** Deliveries of the webhook, newest first, without their bodies and answers; `state` filters. */
  async deliveries(webhookId: number, options: { offset: number; limit: number; state?: DeliveryState }): Promise<Page<Omit<WebhookDeliveryRow, 'payload' | 'response'>>> {
    let query = this.db.selectFrom('webhook_deliveries').where('webhook_id', '=', webhookId);
    if (options.state) query = query.where('state', '=', options.state);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query
      .select(['id', 'webhook_id', 'event_id', 'event_type', 'message_id', 'state', 'attempts', 'status_code', 'error', 'duration_ms', 'next_at', 'created_at', 'updated_at', 'delivered_at'])
      .orderBy('id', 'desc')
      .offset(options.offset)
      .limit(options.limit)
      .execute();
    return { items: items.map((r) => normalizeDelivery({ ...r, payload: '', response: null })!).map(({ payload: _p, response: _r, ...rest }) => rest), total };
  }

  /** Delivery `id` of webhook `webhookId` (undefined for another webhook's). */
  async delivery(webhookId: number, id: number): Promise<WebhookDeliveryRow | undefined> {
    return normalizeDelivery(await this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).where('webhook_id', '=', webhookId).executeTakeFirst());
  }

  /**
   * Queues delivery `id` of webhook `webhookId` again: pending, due now, attempts from 0, the same
   * message id and body (receivers deduplicating by `webhook-id` see it as the same message). Its
   * new row, or undefined when there is no such delivery.
   */
  async redeliver(webhookId: number, id: number, now = Date.now()): Promise<WebhookDeliveryRow | undefined> {
    const result = await this.db
      .updateTable('webhook_deliveries')
      .set({ state: 'pending', attempts: 0, next_at: now, updated_at: now, delivered_at: null, error: null })
      .where('id', '=', id)
      .where('webhook_id', '=', webhookId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.delivery(webhookId, id);
  }

  /** Ids of enabled webhooks with deliveries due at `now` (at most `limit`): what the sweep enqueues jobs for. */
  async due(now = Date.now(), limit = 1000): Promise<number[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .select('d.webhook_id')
      .distinct()
      .where('d.state', '=', 'pending')
      .where('d.next_at', '<=', now)
      .where('w.enabled', '=', 1)
      .limit(limit)
      .execute();
    return rows.map((r) => Number(r.webhook_id));
  }

  /** Deletes delivered and failed deliveries last changed before `before` (ms); returns how many. */
  async prune(before: number): Promise<number> {
    const result = await this.db.deleteFrom('webhook_deliveries').where('state', 'in', ['delivered', 'failed']).where('updated_at', '<', before).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

/** PostgreSQL returns bigint columns as strings: numbers here, as the row type says. */
function normalize(row: WebhookRow | undefined): WebhookRow | undefined {
  if (!row) return undefined;
  return { ...row, id: Number(row.id), project_id: Number(row.project_id), insecure: Number(row.insecure), enabled: Number(row.enabled), created_at: Number(row.created_at), updated_at: Number(row.updated_at) };
}

const num = (v: number | null) => (v === null ? null : Number(v));

function normalizeDelivery(row: WebhookDeliveryRow | undefined): WebhookDeliveryRow | undefined {
  if (!row) return undefined;
  return {
    ...row,
    id: Number(row.id),
    webhook_id: Number(row.webhook_id),
    event_id: num(row.event_id),
    attempts: Number(row.attempts),
    status_code: num(row.status_code),
    duration_ms: num(row.duration_ms),
    next_at: num(row.next_at),
    created_at: Number(row.created_at),
    updated_at: Number(row.updated_at),
    delivered_at: num(row.delivered_at),
  };
}
