import { z } from 'zod';
import { verifyBlobsPayload } from '../../jobs/kinds/verify-blobs.ts';
import { audit, conflict, isoTime, iso, requireAdmin, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/**
 * The kinds an administrator may start by hand, each with the payload it accepts. Scheduled
 * upkeep (upload expiry, housekeeping) is not among them: its schedule runs it.
 */
const startable = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('verify-blobs').describe('re-read every blob and manifest the metadata references and check its digest and size'),
      payload: verifyBlobsPayload.optional(),
    }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? 'must be a kind an administrator may start: verify-blobs' : undefined) },
);

const started = z.object({ id: z.number().int(), kind: z.string(), state: z.literal('queued'), payload: z.unknown(), createdAt: isoTime });

/** `POST /jobs`: starts a job of a kind that is meant to be started by hand (system administrators). */
export function jobStartOperations(services: ApiServices): Operation[] {
  const { meta } = services;
  return [
    operation({
      id: 'startJob',
      method: 'POST',
      path: '/jobs',
      tag: 'jobs',
      summary: 'Start a job of a kind meant to be started by hand, e.g. verify-blobs (system administrators)',
      description:
        'Queues the job (any replica with free job slots claims it at once) and answers 201 with its id; follow it with GET /jobs/{id}. 409 CONFLICT while a job of the same kind is queued or running.',
      body: startable,
      status: 201,
      response: started,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const now = Date.now();
        const payload = body.payload ?? {};
        // One of a kind at a time, across replicas: the exclusive key decides in the insert itself.
        const { id, created } = await meta.jobs.enqueue({ kind: body.kind, payload, exclusiveKey: body.kind }, now);
        if (!created) {
          const state = (await meta.jobs.get(id))?.state ?? 'queued';
          throw conflict(`a ${body.kind} job is already ${state} (job ${id})`, { id, state });
        }
        // Only a hint to idle workers: they poll anyway.
        await meta.jobs.notify().catch((err: unknown) => ctx.log.warn({ err }, 'could not wake the job workers'));
        await audit(services, ctx, identity, { action: 'job.start', resourceType: 'job', resource: String(id), detail: { kind: body.kind } });
        return { status: 201, headers: { Location: `/api/v1/jobs/${id}` }, body: { id, kind: body.kind, state: 'queued', payload, createdAt: iso(now) } };
      },
    }),
  ];
}
