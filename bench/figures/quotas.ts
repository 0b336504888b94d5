// Projects with quotas for "pushes into one project vs over 100 projects (Berth, with quotas on)",
// made through Berth's management API (`/api/v1/projects`) as an administrator would.
import type { BenchServer } from '../servers.ts';

/** Large enough never to refuse a benchmark push, so every push pays for the check and the charge only. */
const QUOTA_BYTES = 2 ** 40;

/** What was set up, printed beside the figure and kept in the JSON results. */
export interface QuotaSetup {
  readonly note: string;
}

async function projectsApi(berth: BenchServer, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Basic ${Buffer.from(`${berth.username}:${berth.password}`).toString('base64')}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(`${berth.base}/api/v1/projects${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
}

async function expectOk(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * Creates each of `namespaces` as a private project with a 1 TiB quota (or sets that quota on an
 * existing one) before the pushes start; called once per phase with every namespace pushed into.
 */
export async function enableProjectQuotas(berth: BenchServer, namespaces: readonly string[]): Promise<QuotaSetup> {
  for (const name of namespaces) {
    const created = await projectsApi(berth, 'POST', '', { name, quotaBytes: QUOTA_BYTES });
    if (created.status === 409) await expectOk(await projectsApi(berth, 'PATCH', `/${name}`, { quotaBytes: QUOTA_BYTES }), `PATCH project ${name}`);
    else await expectOk(created, `POST project ${name}`);
  }
  return { note: `quotas on: ${namespaces.length} projects with a 1 TiB quota each (made with POST /api/v1/projects)` };
}

/** Bytes Berth has charged to the projects' quotas (`usageBytes` of each): proof that the pushes were counted. */
export async function chargedBytes(berth: BenchServer, namespaces: readonly string[]): Promise<number> {
  let total = 0;
  for (const name of namespaces) {
    const project = (await expectOk(await projectsApi(berth, 'GET', `/${name}`), `GET project ${name}`)) as { usageBytes: number };
    total += project.usageBytes;
  }
  return total;
}
