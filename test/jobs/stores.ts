// Metadata for the job and outbox tests on either database: the embedded SQLite in a temp dir, or a
// database of its own on the shared PostgreSQL (support/postgres.ts; started by the first caller).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { configSchema } from '../../src/config/schema.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import { sharedPostgres } from '../support/postgres.ts';

export type DialectName = 'sqlite' | 'postgres';
export const DIALECTS: readonly DialectName[] = ['sqlite', 'postgres'];

export interface TestMetadata {
  meta: Metadata;
  /** The PostgreSQL URL of its database (undefined on SQLite). */
  url: string | undefined;
  close(): Promise<void>;
}

/** A fresh, migrated metadata database on `dialect`. */
export async function openTestMetadata(dialect: DialectName, poolSize = 8): Promise<TestMetadata> {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-jobs-'));
  let url: string | undefined;
  let drop = async () => undefined as unknown;
  if (dialect === 'postgres') {
    const server = await sharedPostgres();
    const name = `jobs_${randomBytes(6).toString('hex')}`;
    await server.createDatabase(name);
    url = server.url(name);
    drop = () => server.dropDatabase(name);
  }
  const meta = await openMetadataFor(configSchema.parse({ dataDir, ...(url ? { database: { url, poolSize } } : {}) }));
  return {
    meta,
    url,
    async close() {
      await meta.close();
      await drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A logger that keeps quiet unless BERTH_TEST_LOG names a level. */
export const quietLog = pino({ level: process.env.BERTH_TEST_LOG ?? 'silent' });

/** Waits (bounded by `timeoutMs`) until `done` holds; fails with `what` otherwise. */
export async function eventually<T>(what: string, done: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await done();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
