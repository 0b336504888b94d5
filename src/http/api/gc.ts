import { cronProblem, nextRun } from '../../jobs/cron.ts';
import { z } from 'zod';
import { GC_KEY, GC_KIND, gcPayload } from '../../jobs/kinds/gc.ts';
import { JOB_LOG_LINES } from '../../metadata/jobs.ts';
import type { JobRow } from '../../metadata/schema.ts';
import { audit, conflict, iso, isoTime, jobLifecycle, JOB_STATES, lifecycleOf, notFound, pageOf, pageQuery, paged, requireAdmin, storedJSON, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';


/** A run as the API shows it: the job, its options, and the figures it saved (see GcFigures). */
const run = z.object({
  id: z.number().int(),
  ...jobLifecycle,
  dryRun: z.boolean(),
  deleteUntagged: z.boolean(),
  trigger: z.enum(['manual', 'schedule']),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  figures: z
    .object({ phase: z.string(), examined: z.number(), blobsDeleted: z.number(), bytesFreed: z.number(), eta: z.unknown() })
    .loose()
    .nullable()
    .describe('what the run did (a dry run: would do) so far, phase by phase; null before it started'),
});

const logPage = z.object({
  items: z.array(z.object({ time: isoTime, level: z.enum(['info', 'warn', 'error']), message: z.string() })),
  total: z.number().int(),
  offset: z.number().int(),
  limit: z.number().int(),
});

const schedule = z.object({
  cron: z.string().nullable().describe('when scheduled runs start (UTC); null: no schedule'),
  deleteUntagged: z.boolean(),
  nextRunAt: isoTime.nullable(),
  lastRunAt: isoTime.nullable(),
});

const scheduleBody = z.strictObject({
  cron: z
    .string()
    .max(128)
    .nullable()
    .superRefine((value, ctx) => {
      const problem = value === null ? undefined : cronProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .describe('a cron expression (UTC, 5 or 6 fields, at most hourly), e.g. "0 3 * * 0"; null turns the schedule off'),
  deleteUntagged: z.boolean().default(false).describe('scheduled runs also delete untagged manifests'),
});

/** A run id in a path: digits only, so `/system/gc/abc` is a 400 naming `id`, never a lookup. */
const idParam = z.object({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, 'a run id: a positive whole number')
    .transform(Number)
    .describe('the run (job) id'),
});

function view(row: JobRow) {
  const payload = gcPayload.safeParse(storedJSON(row.payload) ?? {});
  const options = payload.success ? payload.data : { dryRun: false, deleteUntagged: false };
  const figures = storedJSON(row.progress);
  return {
    id: row.id,
    ...lifecycleOf(row),
    ...options,
    trigger: row.dedupe_key?.startsWith(`${GC_KIND}@`) ? ('schedule' as const) : ('manual' as const),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    figures: figures !== null && typeof figures === 'object' ? figures : null,
  };
}

/** `/system/gc`: garbage collection runs, their figures and logs, and its schedule (system administrators). */
export function gcOperations(services: ApiServices): Operation[] {
  const { meta } = services;

  async function find(id: number): Promise<JobRow> {
    const row = await meta.jobs.get(id);
    // Another kind's job is not a GC run: the same answer as none at all.
    if (!row || row.kind !== GC_KIND) throw notFound(`garbage collection run ${id} not found (finished runs are kept 30 days)`);
    return row;
  }

  async function currentSchedule() {
    const row = (await meta.schedules.list()).find((s) => s.name === GC_KIND);
    const enabled = row !== undefined && row.enabled === 1;
    const payload = gcPayload.safeParse(storedJSON(row?.payload ?? null) ?? {});
    return {
      cron: enabled ? row.cron : null,
      deleteUntagged: payload.success ? payload.data.deleteUntagged : false,
      nextRunAt: enabled ? nextRun(row.cron) : null,
      lastRunAt: iso(row?.last_run_at),
    };
  }

  return [
    operation({
      id: 'startGc',
      method: 'POST',
      path: '/system/gc',
      tag: 'gc',
      summary: 'Start garbage collection (system administrators)',
      description:
        'Queues a run (any replica with a free job slot claims it at once) and answers 201 with its id; follow it with GET /system/gc/{id}. Pushes and pulls go on meanwhile. 409 CONFLICT, naming the active run, while another run is queued or running.',
      body: gcPayload,
      status: 201,
      response: run,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const { id, created } = await meta.jobs.enqueue({ kind: GC_KIND, payload: body, exclusiveKey: GC_KEY });
        if (!created) {
          const active = await meta.jobs.get(id);
          throw conflict(`a garbage collection run is already ${active?.state ?? 'active'} (run ${id})`, { id, state: active?.state });
        }
        // Only a hint to idle workers: they poll anyway.
        await meta.jobs.notify().catch((err: unknown) => ctx.log.warn({ err }, 'could not wake the job workers'));
        await audit(services, ctx, identity, { action: 'gc.start', resourceType: 'gc', resource: String(id), detail: { ...body } });
        return { status: 201, headers: { Location: `/api/v1/system/gc/${id}` }, body: view(await find(id)) };
      },
    }),
    operation({
      id: 'listGcRuns',
      method: 'GET',
      path: '/system/gc',
      tag: 'gc',
      summary: 'Garbage collection runs, newest first, with their figures (system administrators)',
      query: z.object(pageQuery),
      response: pageOf(run),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        await requireAdmin(services, identity);
        const found = await meta.jobs.list({ kind: GC_KIND, ...window(query) });
        return paged(ctx, query, found.items.map(view), found.total);
      },
    }),
    // Before /system/gc/{id}, which would take `schedule` for an id.
    operation({
      id: 'getGcSchedule',
      method: 'GET',
      path: '/system/gc/schedule',
      tag: 'gc',
      summary: 'When garbage collection runs on its own (system administrators)',
      response: schedule,
      errors: [403],
      handler: async ({ identity }) => {
        await requireAdmin(services, identity);
        return { body: await currentSchedule() };
      },
    }),
    operation({
      id: 'setGcSchedule',
      method: 'PUT',
      path: '/system/gc/schedule',
      tag: 'gc',
      summary: 'Set or turn off the garbage collection schedule (system administrators)',
      description: 'Every replica picks the change up within `jobs.pollInterval`. A tick while a run is active is folded into it.',
      body: scheduleBody,
      response: schedule,
      errors: [403],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const previous = (await meta.schedules.list()).find((s) => s.name === GC_KIND);
        // A schedule turned off keeps its row (and last expression), disabled.
        const cron = body.cron ?? previous?.cron ?? '0 3 * * *';
        await meta.schedules.put({ name: GC_KIND, kind: GC_KIND, cron, payload: { dryRun: false, deleteUntagged: body.deleteUntagged }, enabled: body.cron !== null });
        await audit(services, ctx, identity, { action: 'gc.schedule', resourceType: 'gc', resource: 'schedule', detail: { cron: body.cron, deleteUntagged: body.deleteUntagged } });
        return { body: await currentSchedule() };
      },
    }),
    operation({
      id: 'getGcRun',
      method: 'GET',
      path: '/system/gc/{id}',
      tag: 'gc',
      summary: 'One garbage collection run: state, figures, ETA (system administrators)',
      params: idParam,
      response: run,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        return { body: view(await find(params.id)) };
      },
    }),
    operation({
      id: 'getGcLog',
      method: 'GET',
      path: '/system/gc/{id}/log',
      tag: 'gc',
      summary: `A garbage collection run's log, oldest line first (its newest ${JOB_LOG_LINES} lines are kept; system administrators)`,
      params: idParam,
      query: z.object({
        offset: z.coerce.number().int().min(0).max(JOB_LOG_LINES).default(0).describe('lines to skip'),
        limit: z.coerce.number().int().min(1).max(JOB_LOG_LINES).default(100).describe(`lines to answer, at most ${JOB_LOG_LINES}`),
      }),
      response: logPage,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        await requireAdmin(services, identity);
        const row = await find(params.id);
        // The log is bounded (the job system keeps its newest lines): one read, then the page.
        const lines = await meta.jobs.logs(row.id);
        const items = lines.slice(query.offset, query.offset + query.limit).map((l) => ({ time: iso(l.time), level: l.level, message: l.message }));
        const headers: Record<string, string> = {};
        if (query.offset + query.limit < lines.length) headers.Link = `<${ctx.path}?offset=${query.offset + query.limit}&limit=${query.limit}>; rel="next"`;
        return { body: { items, total: lines.length, offset: query.offset, limit: query.limit }, headers };
      },
    }),
    operation({
      id: 'cancelGcRun',
      method: 'POST',
      path: '/system/gc/{id}/cancel',
      tag: 'gc',
      summary: 'Cancel a garbage collection run: a queued one at once, a running one after its current batch (system administrators)',
      description: 'Answers the run as it is then: `cancelled`, or `running` with `cancelRequested` until it stops. 409 CONFLICT for a run already finished.',
      params: idParam,
      response: run,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        const before = await find(params.id);
        if (before.state !== 'queued' && before.state !== 'running') throw conflict(`run ${before.id} has already ${before.state === 'cancelled' ? 'been cancelled' : before.state}`, { state: before.state });
        const after = await meta.jobs.cancel(before.id);
        if (!after || after.cancel_requested !== 1) throw conflict(`run ${before.id} has already ${after?.state ?? 'ended'}`, { state: after?.state });
        await audit(services, ctx, identity, { action: 'gc.cancel', resourceType: 'gc', resource: String(after.id), detail: { state: after.state } });
        return { body: view(after) };
      },
    }),
  ];
}
