import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
// Types only: the driver is loaded when a PostgreSQL feed connects, never on the embedded default.
import type pg from 'pg';
import type { DB } from './dialect.ts';

/**
 * What a cache keyed by name may need to drop, and the key each change names:
 * - `principal`: a user or robot by name (password, admin flag, personal access token or robot
 *   secret changed, revoked, disabled, deleted);
 * - `project`: a project by name (visibility, quota, created, deleted — with its repositories);
 * - `repository`: a repository by name (deleted);
 * - `immutability`: a project's tag immutability rules, by project id (added, changed, deleted);
 * - `registry`: a registry endpoint, by id (URL, credentials or TLS options changed, deleted);
 * - `webhook`: a project's webhook policies, by project id (created, changed, deleted);
 * - `settings`: the run-time system settings, by key (set or reset by an administrator).
 */
export const CHANGE_TOPICS = ['principal', 'project', 'repository', 'immutability', 'registry', 'webhook', 'settings'] as const;
export type ChangeTopic = (typeof CHANGE_TOPICS)[number];

/** Told that `key` changed; `undefined`: anything of the topic may have changed (notifications were missed). */
export type ChangeListener = (key: string | undefined) => void;

/**
 * An invalidation feed: a process that changes something a cache may hold says so here, and every
 * process sharing the database hears it. In-process on SQLite (one server process); over
 * PostgreSQL's `NOTIFY` when replicas share a database ({@link listenForChanges}).
 *
 * How a cache uses it, so that it is never stale beyond a notification's trip:
 * 1. serve from memory only while `live` (not hearing other replicas means not knowing);
 * 2. read `version(topic)` before reading the database, and keep the result only if
 *    `unchangedSince(topic, version)` still holds after (a change heard meanwhile may be newer
 *    than what was read);
 * 3. `subscribe` and drop the key (everything, for `undefined`) when told.
 */
export interface ChangeFeed {
  /** True when other processes share the database (PostgreSQL): what they change is known only through this feed. */
  readonly shared: boolean;
  /** Whether changes made elsewhere are being heard now. Always true in-process. */
  readonly live: boolean;
  /** A number that moves whenever a change of `topic` is heard, and whenever hearing stops or starts again. */
  version(topic: ChangeTopic): number;
  /** Whether the feed is live and nothing of `topic` was heard since `version(topic)` returned `since`. */
  unchangedSince(topic: ChangeTopic, since: number): boolean;
  /**
   * Says that `key` of `topic` changed — call it once the change is committed. Listeners in this
   * process hear it before this returns; other replicas a notification's trip later. Never
   * rejects: a failed notification is reported to `onError` (their caches then catch up within
   * their TTL, or at their next reconnection).
   */
  publish(topic: ChangeTopic, key: string): Promise<void>;
  /** Calls `listener` for every change of `topic` heard from now on; returns the unsubscribe function. */
  subscribe(topic: ChangeTopic, listener: ChangeListener): () => void;
  /** Told about failures to notify or to listen (the feed goes on, reconnecting). */
  onError?: (err: Error, context: 'notify' | 'listen') => void;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Listeners and versions per topic: the part every feed shares. */
abstract class Dispatcher implements ChangeFeed {
  abstract readonly shared: boolean;
  abstract readonly live: boolean;
  onError?: (err: Error, context: 'notify' | 'listen') => void;
  private readonly listeners = new Map<ChangeTopic, Set<ChangeListener>>();
  private readonly versions = new Map<ChangeTopic, number>();

  abstract publish(topic: ChangeTopic, key: string): Promise<void>;
  abstract close(): Promise<void>;

  version(topic: ChangeTopic): number {
    return this.versions.get(topic) ?? 0;
  }

  unchangedSince(topic: ChangeTopic, since: number): boolean {
    return this.live && this.version(topic) === since;
  }

  subscribe(topic: ChangeTopic, listener: ChangeListener): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Delivers a change to this process's listeners (every topic and key when `topic` is undefined). */
  protected deliver(topic: ChangeTopic | undefined, key?: string): void {
    for (const t of topic ? [topic] : CHANGE_TOPICS) {
      this.versions.set(t, this.version(t) + 1);
      for (const listener of this.listeners.get(t) ?? []) {
        try {
          listener(topic ? key : undefined);
        } catch (err) {
          this.onError?.(err as Error, 'listen');
        }
      }
    }
  }
}

/** The feed of a database no other process serves from (the embedded SQLite): changes are heard at once. */
class LocalChanges extends Dispatcher {
  readonly shared = false;
  readonly live = true;

  async publish(topic: ChangeTopic, key: string): Promise<void> {
    this.deliver(topic, key);
  }

  async close(): Promise<void> {}
}

/** An in-process feed, for a database only this process serves from. */
export function localChanges(): ChangeFeed {
  return new LocalChanges();
}

/** The channel every replica listens on. */
export const CHANGES_CHANNEL = 'berth_changes';

/** Timing of the listening connection. */
export interface ListenOptions {
  /** Pause before the first reconnection attempt (ms); doubled each failure up to `maxRetryMs`, with jitter. */
  minRetryMs: number;
  maxRetryMs: number;
  /** How often the idle connection is checked with a query (ms); a dead one is noticed within this plus `pingTimeoutMs`. */
  pingMs: number;
  pingTimeoutMs: number;
}

const DEFAULT_LISTEN: ListenOptions = { minRetryMs: 100, maxRetryMs: 10_000, pingMs: 10_000, pingTimeoutMs: 5_000 };

/**
 * The feed of a PostgreSQL database shared by replicas: `publish` sends `NOTIFY berth_changes`
 * through the pool `db`, and one dedicated connection per replica (`client`: see
 * `postgresClientConfig`) `LISTEN`s. While that connection is down the feed is not `live` (caches
 * bypass themselves); it reconnects with backoff, and every listener is told that anything may
 * have changed once it is back, since notifications sent meanwhile are lost.
 *
 * Resolves after the first attempt to listen, successful or not (later attempts go on in the
 * background, reported to `onError`).
 */
export async function listenForChanges(db: DB, client: pg.ClientConfig, options: Partial<ListenOptions> = {}): Promise<ChangeFeed> {
  const feed = new PostgresChanges(db, client, { ...DEFAULT_LISTEN, ...options });
  await feed.connect();
  return feed;
}

class PostgresChanges extends Dispatcher {
  readonly shared = true;
  live = false;
  /** Marks this replica's notifications, which its own listeners have heard already. */
  private readonly sender = randomBytes(8).toString('base64url');
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: DB, private readonly config: pg.ClientConfig, private readonly options: ListenOptions) {
    super();
    this.retryMs = options.minRetryMs;
  }

  async publish(topic: ChangeTopic, key: string): Promise<void> {
    this.deliver(topic, key);
    const payload = JSON.stringify({ s: this.sender, t: topic, k: key });
    try {
      await sql`select pg_notify(${CHANGES_CHANNEL}, ${payload})`.execute(this.db);
    } catch (err) {
      this.onError?.(err as Error, 'notify');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const client = this.client;
    this.client = undefined;
    this.live = false;
    await client?.end().catch(() => undefined);
  }

  /** One attempt to connect and listen; on failure, the next is scheduled. */
  async connect(): Promise<void> {
    if (this.closed) return;
    const { Client } = (await import('pg')).default;
    const client = new Client({ ...this.config, keepAlive: true });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    client.on('notification', (message) => {
      if (message.channel === CHANGES_CHANNEL && client === this.client) this.heard(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      this.onError?.(err as Error, 'listen');
      await client.end().catch(() => undefined);
      this.retry();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.live = true;
    this.retryMs = this.options.minRetryMs;
    // Whatever was cached before (or while not listening) may have missed notifications.
    this.deliver(undefined);
    this.pingTimer = setInterval(() => void this.ping(client), this.options.pingMs);
    this.pingTimer.unref();
  }

  /** The listening connection failed or ended: not live until it is back. */
  private lost(client: pg.Client, err?: Error): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.live = false;
    clearInterval(this.pingTimer);
    this.deliver(undefined);
    if (err) this.onError?.(err, 'listen');
    void client.end().catch(() => undefined);
    this.retry();
  }

  private retry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryMs / 2 + Math.random() * (this.retryMs / 2);
    this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  /** A connection that died without a word (a cut network) is noticed by a query that does not come back. */
  private async ping(client: pg.Client): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the change feed connection did not answer')), this.options.pingTimeoutMs);
    });
    try {
      await Promise.race([client.query('select 1'), timeout]);
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A notification from some replica: delivered unless it is this one's own or malformed. */
  private heard(payload: string | undefined): void {
    let change: { s?: unknown; t?: unknown; k?: unknown };
    try {
      change = JSON.parse(payload ?? '') as typeof change;
    } catch {
      return;
    }
    if (change.s === this.sender || typeof change.k !== 'string' || !CHANGE_TOPICS.includes(change.t as ChangeTopic)) return;
    this.deliver(change.t as ChangeTopic, change.k);
  }
}
