import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { CompiledQuery, PostgresDialect, type DatabaseConnection, type Driver, type QueryCompiler, type QueryResult, type TransactionSettings } from 'kysely';
import pg from 'pg';
import { parse as parseConnectionString, toClientConfig } from 'pg-connection-string';
import { ConfigError } from '../config/overrides.ts';
import type { Config } from '../config/schema.ts';
import { isRelaxed, type OpenedDialect } from './dialect.ts';

/** `database.tls` of the configuration: PEM paths and whether to verify the server. */
export type DatabaseTLS = NonNullable<Config['database']['tls']>;

export interface PostgresOptions {
  /** `postgres://user:password@host:port/database`, with libpq parameters (`sslmode`, `sslrootcert`, `connect_timeout`…). */
  url: string;
  /** Connections kept open at most. */
  poolSize: number;
  /** TLS settings beyond the URL's; they enable TLS and decide whether the server's certificate is verified. */
  tls?: DatabaseTLS;
  /**
   * Told about a pooled connection that failed while no query of Berth's was waiting on it (the
   * server restarted, a proxy cut it): the pool drops it and later queries open new ones. Without
   * it such errors are written to stderr. Never throws, and the process never crashes on them.
   */
  onConnectionError?: (err: Error) => void;
}

/** How long opening one connection may take, unless the URL's `connect_timeout` says otherwise. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle connections beyond the first are closed after this long. */
const IDLE_TIMEOUT_MS = 30_000;
const INT8_OID = 20;
const NUMERIC_OID = 1700;

/**
 * The metadata database on PostgreSQL: Kysely's PostgreSQL dialect over a `pg` pool of
 * `poolSize` connections. One connection is opened before this resolves, so an unreachable server,
 * a wrong password or a missing database is a ConfigError at start naming `database.url` by its
 * user, host, port and database — never its password.
 *
 * Columns and aggregates of type `bigint` (times, sizes, `count(*)`) and `numeric` (`sum` of a
 * `bigint`) come back as JavaScript numbers, as on SQLite; a value beyond
 * Number.MAX_SAFE_INTEGER fails its query with a RangeError rather than losing digits.
 *
 * Relaxed writes (see `relaxed` in dialect.ts): a transaction whose writes are all relaxed (an
 * audit batch) commits with `SET LOCAL synchronous_commit = off` — one more round trip, one WAL
 * flush less. A relaxed statement outside a transaction is committed durably: making it relaxed
 * would cost three more round trips, more than the flush it saves (PostgreSQL groups concurrent
 * flushes itself).
 */
export async function postgresDialect(options: PostgresOptions): Promise<OpenedDialect> {
  const config = clientConfig(options.url, options.tls);
  const where = describe(config);
  const report = options.onConnectionError ?? ((err: Error) => process.stderr.write(`berth: a PostgreSQL connection failed: ${redact(err.message, config)}\n`));
  const pool = new pg.Pool({ ...config, max: options.poolSize, idleTimeoutMillis: IDLE_TIMEOUT_MS });
  // Every client gets a listener of its own, so a connection that dies while Kysely holds it
  // between two queries (not only an idle one) is reported instead of crashing the process.
  pool.on('connect', (client) => client.on('error', (err) => report(err)));
  // An idle client's failure is emitted here too, after its own listener reported it; without a
  // listener the pool would throw it.
  pool.on('error', () => undefined);
  try {
    (await pool.connect()).release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw connectionError(err, where, config);
  }
  return { name: 'postgres', location: where, dialect: new BerthPostgresDialect({ pool }), traits: { idType: 'serial' } };
}

/**
 * The `pg` client configuration for the configured `database.url` and `database.tls` (TLS files
 * read now), for a component that needs a connection of its own outside the pool (e.g. `LISTEN`).
 * Numbers are parsed as in {@link postgresDialect}. Throws a ConfigError for an unusable URL or
 * an unreadable TLS file, and an Error when no `database.url` is configured.
 */
export function postgresClientConfig(config: Pick<Config, 'database'>): pg.ClientConfig {
  if (!config.database.url) throw new Error('postgresClientConfig needs database.url');
  return clientConfig(config.database.url, config.database.tls);
}

/**
 * Parses the URL as libpq would (`sslmode=require` encrypts without verifying, `verify-full`
 * verifies; `prefer` cannot fall back to plain text here and behaves as `require`), then applies
 * `database.tls`.
 */
function clientConfig(url: string, tls: DatabaseTLS | undefined): pg.ClientConfig {
  let config: pg.ClientConfig;
  let connectTimeout: string | undefined;
  try {
    const params = new URL(url).searchParams;
    connectTimeout = params.get('connect_timeout') ?? undefined;
    config = toClientConfig(parseConnectionString(url, { useLibpqCompat: !params.has('uselibpqcompat') }));
  } catch (err) {
    throw new ConfigError(`database.url: ${redact((err as Error).message, { password: passwordOf(url) })}; give a URL such as postgres://berth:secret@db.example.com:5432/berth`);
  }
  if (tls) {
    if (config.ssl === false) throw new ConfigError(`database.tls is set but database.url ${describe(config)} says sslmode=disable: remove one of them`);
    const ssl: ConnectionOptions = typeof config.ssl === 'object' ? { ...config.ssl } : {};
    if (tls.ca) ssl.ca = readPem(tls.ca, 'database.tls.ca');
    if (tls.cert) ssl.cert = readPem(tls.cert, 'database.tls.cert');
    if (tls.key) ssl.key = readPem(tls.key, 'database.tls.key');
    ssl.rejectUnauthorized = tls.verify;
    config.ssl = ssl;
  }
  const seconds = Number(connectTimeout);
  return {
    ...config,
    application_name: config.application_name ?? 'berth',
    connectionTimeoutMillis: connectTimeout !== undefined && seconds > 0 ? seconds * 1000 : CONNECT_TIMEOUT_MS,
    keepAlive: true,
    types: { getTypeParser: typeParser as pg.CustomTypesConfig['getTypeParser'] },
  };
}

function readPem(file: string, setting: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${setting} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a PEM file`);
  }
}

function typeParser(oid: number, format?: 'text' | 'binary'): unknown {
  if (oid === INT8_OID) return parseInt8;
  if (oid === NUMERIC_OID) return parseNumeric;
  return pg.types.getTypeParser(oid, format);
}

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`PostgreSQL returned the integer ${text}, beyond what Berth can represent exactly (${Number.MAX_SAFE_INTEGER})`);
  return n;
}

function parseNumeric(text: string): number {
  const n = Number(text);
  if (Math.abs(n) > Number.MAX_SAFE_INTEGER) throw new RangeError(`PostgreSQL returned the number ${text}, beyond what Berth can represent exactly (${Number.MAX_SAFE_INTEGER})`);
  return n;
}

/** `postgres://user@host:port/database`: the URL without its password and parameters, for messages. */
function describe(config: pg.ClientConfig): string {
  const user = config.user ? `${encodeURIComponent(config.user)}@` : '';
  const host = config.host?.includes(':') ? `[${config.host}]` : (config.host ?? 'localhost');
  return `postgres://${user}${host}:${config.port ?? 5432}/${config.database ?? ''}`;
}

function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}

/** `text` with the password (as given and URL-encoded) replaced, should a library ever quote it. */
function redact(text: string, config: { password?: unknown }): string {
  const password = typeof config.password === 'string' ? config.password : undefined;
  if (!password) return text;
  return text.replaceAll(password, '***').replaceAll(encodeURIComponent(password), '***');
}

const CERTIFICATE_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Why the first connection failed, as a ConfigError naming `database.url` (by `where`) and the fix. */
function connectionError(err: unknown, where: string, config: pg.ClientConfig): ConfigError {
  const e = err as Error & { code?: string };
  const message = redact(e.message ?? '', config);
  const host = `${config.host ?? 'localhost'}:${config.port ?? 5432}`;
  const fail = (why: string) => new ConfigError(`database.url ${where}: cannot connect to PostgreSQL: ${why}`);
  switch (e.code) {
    case 'ECONNREFUSED':
      return fail(`connection refused by ${host}; is PostgreSQL running and listening there (listen_addresses, port)?`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return fail(`the host name ${config.host ?? ''} cannot be resolved`);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return fail(`${host} cannot be reached (${e.code}); check the address and any firewall`);
    case '28P01':
      return fail(`${message}; check the user and password in the URL`);
    case '28000':
      return fail(`${message}; check pg_hba.conf on the server${/no encryption/.test(message) ? ', or add sslmode=require to the URL' : ''}`);
    case '3D000':
      return fail(`${message}; create it (createdb) or name an existing one`);
  }
  if (e.code && CERTIFICATE_ERRORS.has(e.code)) {
    return fail(`the server's TLS certificate was not accepted (${e.code}): give its CA with database.tls.ca or sslrootcert, or sslmode=require to encrypt without verifying`);
  }
  if (/does not support SSL/i.test(message)) return fail(`${message}; remove sslmode (or use sslmode=disable) and database.tls, or enable ssl on the server`);
  if (/timeout/i.test(message)) return fail(`no answer from ${host} within ${(config.connectionTimeoutMillis ?? CONNECT_TIMEOUT_MS) / 1000} s`);
  return fail(message || String(e.code ?? 'unknown error'));
}

/** Kysely's PostgreSQL dialect with the relaxed-commit driver (compiler, adapter and introspector unchanged). */
class BerthPostgresDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new RelaxedCommitDriver(super.createDriver());
  }
}

/**
 * Kysely's PostgreSQL driver, plus: a transaction whose writes are all relaxed commits without
 * waiting for its WAL flush (`SET LOCAL synchronous_commit = off`, just before `COMMIT`).
 */
class RelaxedCommitDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new TrackedConnection(await this.inner.acquireConnection());
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const tracked = connection as TrackedConnection;
    await this.inner.beginTransaction(tracked.inner, settings);
    tracked.writes = { relaxed: false, durable: false };
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const tracked = connection as TrackedConnection;
    const writes = tracked.writes;
    tracked.writes = undefined;
    if (writes?.relaxed && !writes.durable) await tracked.inner.executeQuery(CompiledQuery.raw('set local synchronous_commit = off'));
    await this.inner.commitTransaction(tracked.inner);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const tracked = connection as TrackedConnection;
    tracked.writes = undefined;
    await this.inner.rollbackTransaction(tracked.inner);
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.inner.savepoint!((connection as TrackedConnection).inner, name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.inner.rollbackToSavepoint!((connection as TrackedConnection).inner, name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.inner.releaseSavepoint!((connection as TrackedConnection).inner, name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection((connection as TrackedConnection).inner);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** A pooled connection that notes, within a transaction, whether its writes were relaxed or durable. */
class TrackedConnection implements DatabaseConnection {
  /** Set while a transaction is open. */
  writes: { relaxed: boolean; durable: boolean } | undefined;

  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (this.writes && compiled.query.kind !== 'SelectQueryNode') {
      // Raw SQL cannot be told apart from a write: it counts as a durable one unless marked relaxed.
      if (isRelaxed(compiled)) this.writes.relaxed = true;
      else this.writes.durable = true;
    }
    return this.inner.executeQuery<R>(withoutNul(compiled));
  }

  streamQuery<R>(compiled: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(withoutNul(compiled), chunkSize);
  }
}

/**
 * `compiled` with U+0000 in its string parameters replaced by U+FFFD. PostgreSQL's text cannot hold
 * U+0000 (SQLite's can) and fails the whole statement on it: a user name with a NUL in a failed
 * login would otherwise be a 500 and cost the audit batch it is in. Such a value can never have
 * been stored, so a lookup by it still finds nothing; a row written with it keeps the rest readable.
 */
function withoutNul(compiled: CompiledQuery): CompiledQuery {
  const parameters = compiled.parameters;
  for (const value of parameters) {
    if (typeof value === 'string' && value.includes('\u0000')) {
      return { ...compiled, parameters: parameters.map((p) => (typeof p === 'string' ? p.replaceAll('\u0000', '\uFFFD') : p)) };
    }
  }
  return compiled;
}
