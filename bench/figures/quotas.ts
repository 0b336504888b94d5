// Projects with quotas for "pushes into one project vs over 100 projects (Berth, with quotas on)",
// made through Berth's management API (`/api/v1/projects`) as an administrator would.
import type http from 'node:http';
import { expect } from '../client.ts';
import { basicAuth, keepAliveAgent, send, type Reply } from '../http.ts';
import type { BenchServer } from '../servers.ts';

/** Large enough never to refuse a benchmark push, so every push pays for the check and the charge only. */
const QUOTA_BYTES = 2 ** 40;

/** What was set up, printed beside the figure and kept in the JSON results. */
export interface QuotaSetup {
  readonly note: string;
}

/** One request to `/api/v1/projects…` as the administrator, with the bench's own HTTP client. */
function projectsApi(agent: http.Agent, berth: BenchServer, method: string, path: string, body?: unknown): Promise<Reply> {
  const headers: Record<string, string> = { Authorization: basicAuth(berth.username, berth.password) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return send(agent, `${berth.base}/api/v1/projects${path}`, { method, headers, keepBody: true, ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}) });
}

/**
 * Creates each of `namespaces` as a private project with a 1 TiB quota (or sets that quota on an
 * existing one) before the pushes start; called once per phase with every namespace pushed into.
 */
export async function enableProjectQuotas(berth: BenchServer, namespaces: readonly string[]): Promise<QuotaSetup> {
  const agent = keepAliveAgent(1);
  for (const name of namespaces) {
    const created = await projectsApi(agent, berth, 'POST', '', { name, quotaBytes: QUOTA_BYTES });
    if (created.status === 409) expect(await projectsApi(agent, berth, 'PATCH', `/${name}`, { quotaBytes: QUOTA_BYTES }), 200, `PATCH project ${name}`);
    else expect(created, 201, `POST project ${name}`);
  }
  agent.destroy();
  return { note: `quotas on: ${namespaces.length} projects with a 1 TiB quota each (made with POST /api/v1/projects)` };
}

/** Bytes Berth has charged to the projects' quotas (`usageBytes` of each): proof that the pushes were counted. */
export async function chargedBytes(berth: BenchServer, namespaces: readonly string[]): Promise<number> {
  const agent = keepAliveAgent(1);
  let total = 0;
  for (const name of namespaces) {
    const reply = await projectsApi(agent, berth, 'GET', `/${name}`);
    expect(reply, 200, `GET project ${name}`);
    total += (JSON.parse(reply.body!.toString('utf8')) as { usageBytes: number }).usageBytes;
  }
  agent.destroy();
  return total;
}
