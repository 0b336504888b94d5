// Metadata stores on each database Berth runs on, for tests that loop over both: SQLite in a temp
// dir, or a fresh database of its own on the test file's shared PostgreSQL (support/postgres.ts);
// and a push's records made the way the registry makes them (a blob's row claimed before it is
// recorded: see BlobRecords in src/metadata/blobs.ts).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { configSchema, type Config } from '../../src/config/schema.ts';
import type { SqliteOptions } from '../../src/metadata/dialect.ts';
import { openMetadata, openMetadataFor, type Metadata, type MetadataOptions } from '../../src/metadata/index.ts';
import type { ManifestRecord } from '../../src/metadata/manifests.ts';
import type { CompletedUpload } from '../../src/metadata/uploads.ts';
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

/**
 * Records `blob` into its repository as the registry's upload path does (src/registry/uploads.ts
 * `conclude`): its row in `blobs` claimed first — where the registry then writes the bytes — and
 * then charged, linked and session `id` (if given) ended in one commit by `uploads.complete`.
 * Rejects as those two do.
 */
export async function completeUpload(meta: Metadata, id: string | undefined, blob: CompletedUpload): Promise<void> {
  await meta.blobs.claim(blob.digest, blob.size);
  await meta.uploads.complete(id, blob);
}

/**
 * Records manifest `record` as the registry's manifest PUT does (src/registry/manifests.ts): the
 * row of its own bytes claimed first, then `manifests.put`. The blobs it lists are expected to have
 * been recorded before (`completeUpload`), as a client pushes them first; `manifests.put` refuses
 * otherwise. Rejects as those two do.
 */
export async function putManifest(meta: Metadata, record: ManifestRecord): Promise<void> {
  await meta.blobs.claim(record.digest, record.size);
  await meta.manifests.put(record);
}
