import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { startBerth, type RunningBerth } from '../../src/main.ts';
import { backendConfig, serverQuery, testBackend } from './backend.ts';
import { sharedPostgres } from './postgres.ts';
import { LeakScanner, rememberSecret } from './secrets.ts';

rememberSecret('test-admin-password', 'admin');

export const ADMIN_PASSWORD = 'test-admin-password';

/** A Berth server running in this process on a random loopback port, with its own data directory. */
export interface TestServer {
  url: string;
  dataDir: string;
  berth: RunningBerth;
  /** Stops the server and, unless `keepData`, removes its data directory. */
  close(keepData?: boolean): Promise<void>;
}

/**
 * Starts Berth in-process on this process's backend (support/backend.ts). `overrides` are raw
 * config values (validated like a YAML file).
 */
export async function startTestServer(overrides: Record<string, unknown> = {}, dataDir?: string, logLines?: Record<string, unknown>[]): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'berth-test-'));
  const config: Config = configSchema.parse({
    addr: '127.0.0.1:0',
    dataDir: dir,
    adminPassword: ADMIN_PASSWORD,
    log: { level: process.env.BERTH_TEST_LOG ?? 'info', format: 'json' },
    ...(await backendConfig(dir)),
    ...overrides,
  });
  // Every log line is scanned for the suite's secrets (support/secrets.ts); with `logLines`, each
  // is also parsed into it (to assert what the log says); BERTH_TEST_LOG=<level> prints them.
  const scanner = new LeakScanner(`the test server in ${dir}`);
  const destination = {
    write(line: string) {
      scanner.scan(line);
      logLines?.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env.BERTH_TEST_LOG) process.stderr.write(line);
    },
  };
  const berth = await startBerth(config, destination);
  return {
    url: berth.url,
    dataDir: dir,
    berth,
    async close(keepData = false) {
      await berth.close();
      if (testBackend() === 'postgres-s3') for (const row of await serverQuery(dir, 'select * from audit_log')) scanner.scan(JSON.stringify(row), 'audit row');
      else scanner.scanAudit(dir);
      if (!keepData) rmSync(dir, { recursive: true, force: true });
      scanner.assertClean();
    },
  };
}

/** `Authorization: Basic …` for the admin user (Berth accepts Basic on /v2 as well as tokens). */
export function adminBasic(password = ADMIN_PASSWORD): string {
  rememberSecret(password, 'admin');
  return `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
}

/** Fetches a token for `scopes` from the server's token endpoint with admin credentials. */
export async function adminToken(url: string, ...scopes: string[]): Promise<string> {
  const query = new URLSearchParams({ service: 'berth' });
  for (const s of scopes) query.append('scope', s);
  const res = await fetch(`${url}/service/token?${query}`, { headers: { Authorization: adminBasic() } });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  const token = ((await res.json()) as { token: string }).token;
  rememberSecret(token);
  return token;
}

/** Two servers as two replicas: one data directory (signing key, blob storage) and one fresh database on the shared PostgreSQL. */
export interface ServerPair {
  a: TestServer;
  b: TestServer;
  /** Stops both, drops the database, removes the directory. */
  close(): Promise<void>;
}

/**
 * Starts two servers sharing a fresh database named `<name>_<random>` on the shared PostgreSQL and
 * one data directory — so the same blob storage (the filesystem, or the same S3 prefix on the
 * PostgreSQL + S3 pass) and signing key, as replicas have them.
 */
export async function startServerPair(name: string): Promise<ServerPair> {
  const postgres = await sharedPostgres();
  const database = `${name}_${randomBytes(4).toString('hex')}`;
  await postgres.createDatabase(database);
  const dir = mkdtempSync(join(tmpdir(), `berth-${name}-`));
  const overrides = { database: { url: postgres.url(database), poolSize: 4 } };
  const a = await startTestServer(overrides, dir);
  const b = await startTestServer(overrides, dir).catch(async (err: unknown) => {
    await a.close(true);
    throw err;
  });
  return {
    a,
    b,
    async close() {
      await a.close(true);
      await b.close(true);
      await postgres.dropDatabase(database).catch(() => undefined);
      await postgres.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
