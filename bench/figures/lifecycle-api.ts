// Berth's management API as issue 14's figures use it, as an administrator: garbage collection runs
// (`/api/v1/system/gc`) and retention policies and runs (`/api/v1/projects/{p}/retention`), each a
// job followed until it ends. Durations come from the job's own start and end, not the client's.
import type http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from '../client.ts';
import { basicAuth, keepAliveAgent, send, type Reply } from '../http.ts';
import type { BenchServer } from '../servers.ts';

/** How often a running job is asked about. */
const POLL_MS = 100;
/** A job not finished by then is reported as a failure of the figure. */
const JOB_TIMEOUT_MS = 30 * 60_000;

/** A finished job as the figures read it. */
export interface FinishedJob {
  readonly id: number;
  readonly state: string;
  /** From the job's own startedAt to finishedAt (the queue's wait before it is left out). */
  readonly seconds: number;
  /** From the client's POST to its seeing the end (queue wait and polling included). */
  readonly clientSeconds: number;
  /** From the job's creation to its start: the queue's wait. */
  readonly queuedSeconds: number;
  /** The job's progress: a GC run's figures, a retention run's counts. */
  readonly progress: Record<string, unknown>;
  /** The whole answer, for checks a figure makes. */
  readonly body: Record<string, unknown>;
}

/** An administrator's session on one Berth's API (Basic credentials, one keep-alive connection). */
export class AdminApi {
  private readonly agent: http.Agent = keepAliveAgent(2);

  constructor(private readonly berth: BenchServer) {}

  /** One request; the JSON answer is parsed when there is one. */
  async call(method: string, path: string, body?: unknown): Promise<{ reply: Reply; json: Record<string, unknown> }> {
    const headers: Record<string, string> = { Authorization: basicAuth(this.berth.username, this.berth.password) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const reply = await send(this.agent, `${this.berth.base}/api/v1${path}`, { method, headers, keepBody: true, ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}) });
    let json: Record<string, unknown> = {};
    try {
      if (reply.body?.length) json = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      /* not JSON: `expect` shows the body */
    }
    return { reply, json };
  }

  /**
   * Starts a garbage collection run and follows it to its end. While another run is active (409)
   * waits for it and asks again. Throws unless the run succeeded.
   */
  async gc(options: { dryRun?: boolean; deleteUntagged?: boolean } = {}, until?: () => boolean): Promise<FinishedJob | undefined> {
    const posted = Date.now();
    for (;;) {
      const { reply, json } = await this.call('POST', '/system/gc', options);
      if (reply.status === 409) {
        if (until && !until()) return undefined;
        await sleep(POLL_MS);
        continue;
      }
      expect(reply, 201, 'POST /api/v1/system/gc');
      return this.follow(`/system/gc/${Number(json['id'])}`, posted);
    }
  }

  /** Sets a project's retention policy (PUT, expects 200). */
  async setRetention(project: string, policy: unknown): Promise<void> {
    const { reply } = await this.call('PUT', `/projects/${project}/retention`, policy);
    expect(reply, 200, `PUT /api/v1/projects/${project}/retention`);
  }

  /** Starts a retention run of `project` and returns its id (follow it with `retentionRun`). */
  async startRetention(project: string, dryRun: boolean): Promise<{ id: number; posted: number }> {
    const posted = Date.now();
    const { reply, json } = await this.call('POST', `/projects/${project}/retention/runs`, { dryRun });
    expect(reply, 201, `POST /api/v1/projects/${project}/retention/runs`);
    return { id: Number(json['id']), posted };
  }

  /** Follows retention run `id` of `project` to its end; throws unless it succeeded. */
  retentionRun(project: string, run: { id: number; posted: number }): Promise<FinishedJob> {
    return this.follow(`/projects/${project}/retention/runs/${run.id}`, run.posted);
  }

  /** Polls a job's resource until it ends. */
  private async follow(path: string, posted: number): Promise<FinishedJob> {
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    for (;;) {
      const { reply, json } = await this.call('GET', path);
      expect(reply, 200, `GET /api/v1${path}`);
      const state = String(json['state']);
      if (state !== 'queued' && state !== 'running') {
        const clientSeconds = (Date.now() - posted) / 1000;
        if (state !== 'succeeded') throw new Error(`${path}: the job ended ${state}${json['error'] ? `: ${String(json['error']).slice(0, 300)}` : ''}`);
        const started = Date.parse(String(json['startedAt']));
        const finished = Date.parse(String(json['finishedAt']));
        const progress = (json['figures'] ?? json['progress'] ?? {}) as Record<string, unknown>;
        const queuedSeconds = (started - Date.parse(String(json['createdAt']))) / 1000;
        return { id: Number(json['id']), state, seconds: (finished - started) / 1000, clientSeconds, queuedSeconds, progress, body: json };
      }
      if (Date.now() > deadline) throw new Error(`${path}: still ${state} after ${JOB_TIMEOUT_MS / 60_000} minutes`);
      await sleep(POLL_MS);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A number from a run's figures (`blobsDeleted`, `phases.sweep.deleted`…); NaN when absent. */
export function figure(progress: Record<string, unknown>, path: string): number {
  let value: unknown = progress;
  for (const key of path.split('.')) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return typeof value === 'number' ? value : NaN;
}

/** Seconds phase `name` of a GC run took (its figures' startedAt → finishedAt); NaN when it did not run. */
export function phaseSeconds(progress: Record<string, unknown>, name: string): number {
  const phase = (progress['phases'] as Record<string, { startedAt?: string | null; finishedAt?: string | null }> | undefined)?.[name];
  if (!phase?.startedAt || !phase.finishedAt) return NaN;
  return (Date.parse(phase.finishedAt) - Date.parse(phase.startedAt)) / 1000;
}
