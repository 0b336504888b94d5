import { z } from 'zod';
import { JOB_LOG_LINES } from '../../metadata/jobs.ts';
import type { JobLogRow, JobRow } from '../../metadata/schema.ts';
import { audit, conflict, iso, isoTime, JOB_STATES, notFound, pageOf, pageQuery, paged, requireAdmin, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';


const job = z.object({
  id: z.number().int(),
  kind: z.string(),
  state: z.enum(JOB_STATES),
  payload: z.unknown(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  runAt: isoTime,
  leaseOwner: z.string().nullable(),
  leaseUntil: isoTime.nullable(),
  progress: z.unknown().nullable(),
  error: z.string().nullable(),
  cancelRequested: z.boolean(),
  dedupeKey: z.string().nullable(),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
});

const logLine = z.object({ time: isoTime, level: z.enum(['info', 'warn', 'error']), message: z.string() });

/** A job id in a path: digits only, so `/jobs/abc` is a 400 naming `id`, never a lookup. */
const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, 'a job id: a positive whole number')
    .transform(Number)
    .describe('the job id'),
});

/** JSON stored by Berth itself; a value that does not parse is shown as the text it is. */
function parsed(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function view(row: JobRow) {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    payload: parsed(row.payload),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: iso(row.run_at),
    leaseOwner: row.lease_owner,
    leaseUntil: iso(row.lease_until),
    progress: parsed(row.progress),
    error: row.error,
    cancelRequested: row.cancel_requested === 1,
    dedupeKey: row.dedupe_key,
    createdAt: iso(row.created_at),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
  };
}

function logView(row: JobLogRow) {
  return { time: iso(row.time), level: row.level, message: row.message };
}

/** `/jobs`: the background jobs of every replica (upload expiry, housekeeping…), for system administrators only. */
export function jobOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function find(id: number): Promise<JobRow> {
    const row = await meta.jobs.get(id);
    if (!row) throw notFound(`job ${id} not found (finished jobs are kept 30 days)`);
    return row;
  }

  return [
    operation({
      id: 'listJobs',
      method: 'GET',
      path: '/jobs',
      tag: 'jobs',
      summary: 'Background jobs, newest first (system administrators)',
      query: z.object({
        state: z.enum(JOB_STATES).optional().describe('only jobs in this state'),
        kind: z
          .string()
          .max(64)
          .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'a job kind: lower-case words joined by "-", e.g. upload-expiry')
          .optional()
          .describe('only jobs of this kind'),
        ...pageQuery,
      }),
      response: pageOf(job),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        await requireAdmin(services, identity);
        const found = await meta.jobs.list({ ...(query.state ? { state: query.state } : {}), ...(query.kind ? { kind: query.kind } : {}), ...window(query) });
        return paged(ctx, query, found.items.map(view), found.total);
      },
    }),
    operation({
      id: 'getJob',
      method: 'GET',
      path: '/jobs/{id}',
      tag: 'jobs',
      summary: `A job with its log (the newest ${JOB_LOG_LINES} lines), for system administrators`,
      params: idParam,
      response: job.extend({ log: z.array(logLine) }),
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        const row = await find(params.id);
        return { body: { ...view(row), log: (await meta.jobs.logs(row.id)).map(logView) } };
      },
    }),
    operation({
      id: 'cancelJob',
      method: 'POST',
      path: '/jobs/{id}/cancel',
      tag: 'jobs',
      summary: 'Cancel a job: a queued one at once, a running one at its next heartbeat (system administrators)',
      description: 'Answers the job as it is then: `cancelled`, or `running` with `cancelRequested` until its run stops. 409 CONFLICT for a job already finished.',
      params: idParam,
      response: job,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        const before = await find(params.id);
        if (before.state !== 'queued' && before.state !== 'running') throw conflict(`job ${before.id} has already ${before.state === 'cancelled' ? 'been cancelled' : before.state}`, { state: before.state });
        const after = await meta.jobs.cancel(before.id);
        if (!after) throw notFound(`job ${params.id} not found (finished jobs are kept 30 days)`);
        if (after.cancel_requested !== 1) throw conflict(`job ${after.id} has already ${after.state}`, { state: after.state });
        await audit(services, ctx, identity, { action: 'job.cancel', resourceType: 'job', resource: String(after.id), detail: { kind: after.kind, state: after.state } });
        return { body: view(after) };
      },
    }),
  ];
}
