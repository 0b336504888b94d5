// Metadata stores on each database Berth runs on, for tests that loop over both: SQLite in a temp
// dir, or a fresh database of its own on the test file's shared PostgreSQL (support/postgres.ts).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { configSchema, type Config } from '../../src/config/schema.ts';
import type { SqliteOptions } from '../../src/metadata/dialect.ts';
import { openMetadata, openMetadataFor, type Metadata, type MetadataOptions } from '../../src/metadata/index.ts';
import { sharedPostgres } from './postgres.ts';

export type DialectName = Metadata['dialect'];

/** Every database the metadata runs on, for `for (const dialect of DIALECTS) test(…)`. */
export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres'];

/** A place for one test's metadata: a data directory, and on PostgreSQL a database of its own. */
export interface MetadataPlace {
  readonly dialect: DialectName;
  readonly dataDir: string;
  /** The configuration that opens it (`database.url` set on PostgreSQL). */
  readonly config: Config;
  /** On PostgreSQL, the URL of the database (no password: the test server trusts 127.0.0.1). */
  readonly url: string | undefined;
  /** Opens the metadata there (again); SQLite options apply to SQLite only. */
  open(options?: SqliteOptions & MetadataOptions): Promise<Metadata>;
  /** Runs `sql` with `$1…` parameters through a connection of its own (another process, as far as Berth can tell). */
  query<R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Removes the directory and drops the database. */
  remove(): Promise<void>;
}

/** A new, empty place on `dialect`. */
export async function metadataPlace(dialect: DialectName): Promise<MetadataPlace> {
  const dataDir = mkdtempSync(join(tmpdir(), `berth-meta-${dialect}-`));
  if (dialect === 'sqlite') {
    const config = configSchema.parse({ dataDir });
    return {
      dialect,
      dataDir,
      config,
      url: undefined,
      open: (options = {}) => openMetadata(dataDir, options),
      async query(sql, params = []) {
        const db = new Database(join(dataDir, 'berth.db'));
        try {
          const stmt = db.prepare(sql.replace(/\$\d+/g, '?'));
          return (stmt.reader ? stmt.all(params) : (stmt.run(params), [])) as never;
        } finally {
          db.close();
        }
      },
      async remove() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const server = await sharedPostgres();
  const name = `m_${randomBytes(8).toString('hex')}`;
  await server.createDatabase(name);
  const url = server.url(name);
  const config = configSchema.parse({ dataDir, database: { url, poolSize: 4 } });
  return {
    dialect,
    dataDir,
    config,
    url,
    open: (options = {}) => openMetadataFor(config, options),
    async query(sql, params = []) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
    async remove() {
      rmSync(dataDir, { recursive: true, force: true });
      await server.dropDatabase(name);
    },
  };
}

/** Runs `body` on fresh metadata on `dialect`, then closes and removes it. */
export async function withMetadataOn(
  dialect: DialectName,
  body: (meta: Metadata, place: MetadataPlace) => Promise<void>,
  options: SqliteOptions & MetadataOptions = {},
): Promise<void> {
  const place = await metadataPlace(dialect);
  try {
    const meta = await place.open(options);
    try {
      await body(meta, place);
    } finally {
      await meta.close();
    }
  } finally {
    await place.remove();
  }
}
