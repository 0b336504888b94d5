import { chmodSync, closeSync, fchmodSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, sql, SqliteDialect, type RawBuilder, type DatabaseConnection, type Dialect, type Driver, type QueryResult } from 'kysely';
import { GroupCommit, walFileSync, type LogSync } from './group-commit.ts';
import type { Database } from './schema.ts';

/** The few things that differ between the databases Berth runs on. Everything else is shared SQL. */
export interface DialectTraits {
  /** Column type of auto-numbered primary keys (SQLite: an `integer` primary key is the rowid). */
  idType: 'integer' | 'serial';
}

export interface OpenedDialect {
  /** Which database it is (the few differences not expressible as traits, e.g. how a key is shared). */
  name: 'sqlite' | 'postgres';
  /** Where the database is, for messages: SQLite's directory, or PostgreSQL's URL without password. */
  location: string;
  dialect: Dialect;
  traits: DialectTraits;
  /** Releases what the dialect opened outside Kysely (nothing for most). */
  close?: () => void;
}

export interface SqliteOptions {
  /** Test hook: wraps the flush of the write-ahead log (e.g. to see what each flush covers). */
  wrapLogSync?: (sync: LogSync) => LogSync;
  /** Prepared statements kept per connection (least recently used ones are dropped). */
  statementCacheSize?: number;
}

/** Query ids of statements marked with {@link relaxed}. */
const relaxedQueries = new WeakSet<object>();

/** At most this long after a relaxed commit, the log is flushed even if nothing else asks for it. */
export const RELAXED_FLUSH_MS = 1000;

/**
 * Marks a write as a relaxed commit: it need not reach the disk before it is reported done. It is
 * written to the log at once (and visible), and becomes durable with the next flush, which any
 * durable commit after it triggers — the log is flushed in order, so nothing that depends on it can
 * be durable without it — and within {@link RELAXED_FLUSH_MS} anyway. A power cut may lose it. Use
 * it only where that is harmless (upload-session bookkeeping, audit rows, last-used times). A
 * transaction commits relaxed when all its writes are. (PostgreSQL: see `postgresDialect`.)
 */
export function relaxed<R>(query: CompiledQuery<R>): CompiledQuery<R> {
  const queryId = { queryId: query.queryId.queryId };
  relaxedQueries.add(queryId);
  return { ...query, queryId };
}

/**
 * `column IN (values)` for long lists (garbage collection's batches of a thousand digests): on
 * PostgreSQL one array parameter (`= any($1)`), planned alike whatever the count — a list of a
 * thousand parameters costs more to parse and plan than to run; on SQLite a plain list.
 */
export function oneOf(dialect: 'sqlite' | 'postgres', column: string, values: readonly string[]): RawBuilder<boolean> {
  return dialect === 'postgres' ? sql<boolean>`${sql.ref(column)} = any(${[...values]})` : sql<boolean>`${sql.ref(column)} in (${sql.join([...values])})`;
}

/**
 * A LIKE pattern for text containing `text`, the same on both databases: LIKE's wildcards and
 * escape character are dropped from `text`, and it is lower-cased — SQLite's LIKE ignores ASCII
 * case, PostgreSQL's does not — so the column it is matched against must hold lower-case text
 * (repository and project names) or be lower-cased in the query.
 */
export function containing(text: string): string {
  return `%${text.replace(/[%_\\]/g, '').toLowerCase()}%`;
}

/** Whether `query` was marked with {@link relaxed}. */
export function isRelaxed(query: CompiledQuery): boolean {
  return relaxedQueries.has(query.queryId);
}

/**
 * Opens the embedded SQLite database at `file` with the settings a server needs: WAL (readers
 * never block the writer), a busy timeout instead of SQLITE_BUSY under load, foreign keys on.
 *
 * Durability is exact but grouped: SQLite runs with `synchronous = NORMAL` (no fsync at commit)
 * and Berth flushes the log itself, off the main thread, before a write is reported done (see
 * {@link GroupCommit}). So an awaited write is on disk, as with `synchronous = FULL`, but
 * concurrent requests share fsyncs and the event loop never waits for the disk. Reads (outside a
 * transaction) are held back until any durable write they might see is flushed, so a client is
 * never shown data that a power cut could still take away. Should WAL be unavailable (an
 * in-memory database), SQLite syncs every commit itself (`FULL`).
 */
export function sqliteDialect(file: string, options: SqliteOptions = {}): OpenedDialect {
  if (file !== ':memory:' && file !== '') makePrivate(file);
  const database = new SQLite(file);
  const mode = String(database.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
  database.pragma('busy_timeout = 10000');
  database.pragma('foreign_keys = ON');
  let commits: GroupCommit | undefined;
  let closeLog: (() => Promise<void>) | undefined;
  if (mode === 'wal') {
    database.pragma('synchronous = NORMAL');
    const walSync = walFileSync(`${resolve(file)}-wal`);
    commits = new GroupCommit(options.wrapLogSync ? options.wrapLogSync(walSync) : walSync);
    closeLog = () => walSync.close();
  } else {
    database.pragma('synchronous = FULL');
  }
  const driver = new CachingSqliteDriver(database, commits, closeLog, options.statementCacheSize ?? 256);
  const location = file === ':memory:' || file === '' ? 'memory' : dirname(resolve(file));
  return { name: 'sqlite', location, dialect: new BerthSqliteDialect(driver), traits: { idType: 'integer' } };
}

/**
 * Creates the database file with mode 0600 before SQLite opens it, or takes group/other permissions
 * from an existing one (and from a -wal/-shm left beside it). SQLite would create it 0644 less the
 * umask; its -wal, -shm and journal files, created later and again after every clean close, always
 * get the database file's own mode (SQLite's unix VFS sets it on them explicitly), so this one file
 * decides them all.
 */
function makePrivate(file: string): void {
  const fd = openSync(file, 'a', 0o600);
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  for (const suffix of ['-wal', '-shm']) {
    try {
      if ((statSync(`${file}${suffix}`).mode & 0o077) !== 0) chmodSync(`${file}${suffix}`, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Kysely's SQLite dialect with Berth's driver (compiler, adapter and introspector unchanged). */
class BerthSqliteDialect extends SqliteDialect {
  constructor(private readonly driver: Driver) {
    super({ database: {} as never });
  }

  override createDriver(): Driver {
    return this.driver;
  }
}

/**
 * One better-sqlite3 connection shared in turn (SQLite has one writer; better-sqlite3 is
 * synchronous, so a turn only matters across a transaction's awaits). Unlike Kysely's own driver it
 * keeps prepared statements by SQL text, so a query run again skips SQLite's parser and planner,
 * begins transactions `immediate` (no lock upgrade to fail half-way), and hands the connection on
 * before waiting for a flush, so commits of concurrent requests are flushed together.
 */
class CachingSqliteDriver implements Driver {
  private readonly statements = new Map<string, SQLite.Statement>();
  private busy = false;
  private readonly queue: (() => void)[] = [];
  /** Number of the last durable (not relaxed) commit: what reads must not see before it is flushed. */
  private lastDurable = 0;
  private relaxedTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: SQLite.Database,
    private readonly commits: GroupCommit | undefined,
    private readonly closeLog: (() => Promise<void>) | undefined,
    private readonly cacheSize: number,
  ) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const lease = new Lease(this);
    await this.lock(lease);
    return lease;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.statement('begin immediate').run();
    lease.inTransaction = true;
    lease.wrote = false;
    lease.durableWrite = false;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.statement('commit').run();
    lease.inTransaction = false;
    await (lease.wrote ? this.afterWrite(lease, true, !lease.durableWrite) : this.beforeRead(lease));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    (connection as Lease).inTransaction = false;
    if (this.db.inTransaction) this.statement('rollback').run();
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.unlock(connection as Lease);
  }

  async destroy(): Promise<void> {
    clearTimeout(this.relaxedTimer);
    // Relaxed commits too: SQLite checkpoints the log on close only when no other process has the
    // database open. (A failed flush has already failed the writes that needed it.)
    await this.commits?.durableThrough(this.commits.latest).catch(() => undefined);
    await this.commits?.idle();
    await this.closeLog?.();
    this.statements.clear();
    this.db.close();
  }

  /** Runs one query on `lease`'s turn (taking a turn again if the lease gave it up to wait). */
  async execute<R>(lease: Lease, compiled: CompiledQuery): Promise<QueryResult<R>> {
    await this.hold(lease);
    const stmt = this.statement(compiled.sql);
    const parameters = compiled.parameters as unknown[];
    if (stmt.reader && stmt.readonly) {
      const rows = stmt.all(parameters) as R[];
      if (!lease.inTransaction) await this.beforeRead(lease);
      return { rows };
    }
    // A write; one with `returning` yields rows, and counts as a change (durable like any write).
    let result: QueryResult<R>;
    let changes: number;
    if (stmt.reader) {
      const rows = stmt.all(parameters) as R[];
      changes = rows.length;
      result = { numAffectedRows: BigInt(changes), rows };
    } else {
      const run = stmt.run(parameters);
      changes = run.changes;
      result = { numAffectedRows: BigInt(changes), insertId: BigInt(run.lastInsertRowid), rows: [] };
    }
    const isRelaxed = relaxedQueries.has(compiled.queryId);
    if (lease.inTransaction) {
      lease.wrote = true;
      if (!isRelaxed) lease.durableWrite = true;
    } else await this.afterWrite(lease, changes > 0, isRelaxed);
    return result;
  }

  /** Takes a turn on the connection again for a lease that gave its turn up to wait for a flush. */
  async hold(lease: Lease): Promise<void> {
    if (!lease.held) await this.lock(lease);
  }

  /** Prepares a fresh statement (a cached one must not be iterated while it may run again). */
  prepareUncached(sql: string): SQLite.Statement {
    return this.db.prepare(sql);
  }

  /**
   * A commit (autocommit statement or transaction) just reached the log: wait for it unless relaxed.
   * A durable write waits even when it changed nothing (an idempotent insert): what it found may
   * be another request's commit, not flushed yet, that this caller is about to acknowledge.
   */
  private async afterWrite(lease: Lease, changed: boolean, isRelaxed: boolean): Promise<void> {
    if (!this.commits) return;
    if (isRelaxed) {
      if (changed) {
        this.commits.committed();
        this.flushLater();
      }
      return;
    }
    const n = this.commits.committed();
    this.lastDurable = n;
    if (this.commits.isDurable(n)) return;
    this.unlock(lease);
    await this.commits.durableThrough(n);
  }

  /**
   * Relaxed commits still reach the disk within {@link RELAXED_FLUSH_MS} even when no durable
   * commit follows, which bounds what a power cut can take from them. (A failure is kept by the
   * group commit and reported to the next durable write.)
   */
  private flushLater(): void {
    if (this.relaxedTimer) return;
    this.relaxedTimer = setTimeout(() => {
      this.relaxedTimer = undefined;
      this.commits?.durableThrough(this.commits.latest).catch(() => undefined);
    }, RELAXED_FLUSH_MS);
    this.relaxedTimer.unref();
  }

  /** A read may have seen durable-class writes not yet flushed: answer only once they are. */
  private async beforeRead(lease: Lease): Promise<void> {
    if (!this.commits || this.commits.isDurable(this.lastDurable)) return;
    this.unlock(lease);
    await this.commits.durableThrough(this.lastDurable);
  }

  private statement(sql: string): SQLite.Statement {
    const cached = this.statements.get(sql);
    if (cached) {
      // Least recently used goes first: re-inserting moves the entry to the end.
      this.statements.delete(sql);
      this.statements.set(sql, cached);
      return cached;
    }
    const stmt = this.db.prepare(sql);
    this.statements.set(sql, stmt);
    if (this.statements.size > this.cacheSize) this.statements.delete(this.statements.keys().next().value!);
    return stmt;
  }

  private async lock(lease: Lease): Promise<void> {
    if (this.busy) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.busy = true;
    lease.held = true;
  }

  /** Ends `lease`'s turn (once); the next waiter gets the connection directly. */
  private unlock(lease: Lease): void {
    if (!lease.held) return;
    lease.held = false;
    const next = this.queue.shift();
    if (next) next();
    else this.busy = false;
  }
}

/** One turn on the connection, as Kysely holds it for a query or a transaction. */
class Lease implements DatabaseConnection {
  held = false;
  inTransaction = false;
  wrote = false;
  /** The transaction made a write not marked relaxed, so its commit must be durable. */
  durableWrite = false;

  constructor(private readonly driver: CachingSqliteDriver) {}

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute<R>(this, compiled);
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    await this.driver.hold(this);
    for (const row of this.driver.prepareUncached(compiled.sql).iterate(compiled.parameters as unknown[])) yield { rows: [row as R] };
  }
}

export type DB = Kysely<Database>;
