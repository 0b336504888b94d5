import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../src/config/schema.ts';
import { startBerth, type RunningBerth } from '../../src/main.ts';

export const ADMIN_PASSWORD = 'test-admin-password';

/** A Berth server running in this process on a random loopback port, with its own data directory. */
export interface TestServer {
  url: string;
  dataDir: string;
  berth: RunningBerth;
  /** Stops the server and, unless `keepData`, removes its data directory. */
  close(keepData?: boolean): Promise<void>;
}

/** Starts Berth in-process. `overrides` are raw config values (validated like a YAML file). */
export async function startTestServer(overrides: Record<string, unknown> = {}, dataDir?: string, logLines?: Record<string, unknown>[]): Promise<TestServer> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'berth-test-'));
  const config: Config = configSchema.parse({
    addr: '127.0.0.1:0',
    dataDir: dir,
    adminPassword: ADMIN_PASSWORD,
    log: { level: logLines ? 'info' : (process.env.BERTH_TEST_LOG ?? 'silent') },
    ...overrides,
  });
  // With `logLines`, every JSON log line is parsed into it (to assert what the log says).
  const destination = logLines ? { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } : undefined;
  const berth = await startBerth(config, destination);
  return {
    url: berth.url,
    dataDir: dir,
    berth,
    async close(keepData = false) {
      await berth.close();
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `Authorization: Basic …` for the admin user (Berth accepts Basic on /v2 as well as tokens). */
export function adminBasic(password = ADMIN_PASSWORD): string {
  return `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
}

/** Fetches a token for `scopes` from the server's token endpoint with admin credentials. */
export async function adminToken(url: string, ...scopes: string[]): Promise<string> {
  const query = new URLSearchParams({ service: 'berth' });
  for (const s of scopes) query.append('scope', s);
  const res = await fetch(`${url}/service/token?${query}`, { headers: { Authorization: adminBasic() } });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}
