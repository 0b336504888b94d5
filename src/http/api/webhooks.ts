import { z } from 'zod';
import type { Identity } from '../../auth/identity.ts';
import type { Permission } from '../../auth/roles.ts';
import { DELIVERY_STATES } from '../../metadata/webhooks.ts';
import type { ProjectRow, WebhookDeliveryRow, WebhookRow } from '../../metadata/schema.ts';
import { WEBHOOK_EVENTS, WEBHOOK_FORMATS } from '../../webhooks/payload.ts';
import { eventsOf, WEBHOOK_KIND, WEBHOOK_NAME, WEBHOOK_NAME_RULE, webhookKey, type WebhookSettings } from '../../webhooks/policies.ts';
import { audit, iso, isoTime, notFound, pageOf, pageQuery, paged, projectAccess, projectName, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** Everything here: project administrators (and system administrators). Webhook URLs and logs may reveal internal systems. */
const MANAGE: Permission = 'project.update';

const webhookName = z.string().regex(WEBHOOK_NAME, WEBHOOK_NAME_RULE);
const projectParam = z.object({ project: projectName });
const nameParam = z.object({ project: projectName, name: webhookName });
const deliveryParam = nameParam.extend({
  id: z
    .string()
    .regex(/^[1-9]\d{0,14}$/, 'a delivery id: a positive whole number')
    .transform(Number),
});

const fields = {
  url: z.string().max(2048).describe('http(s) URL of the receiver; no credentials in it (use authHeader)'),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length * 2).describe(`some of ${WEBHOOK_EVENTS.join(', ')}`),
  format: z.enum(WEBHOOK_FORMATS).describe('harbor (Harbor-compatible JSON, the default) or cloudevents (CloudEvents 1.0 JSON)'),
  description: z.string().max(1024).nullable(),
  enabled: z.boolean(),
  authHeader: z.string().max(4096).nullable().describe('the whole Authorization header value sent with each delivery, e.g. "Bearer …"; write-only'),
  secret: z.string().max(128).nullable().describe('Standard Webhooks signing secret, whsec_<base64>; write-only; null: unsigned'),
  generateSecret: z.boolean().describe('generate a signing secret: returned once in this answer, never again'),
  caFile: z.string().max(1024).nullable().describe('absolute path on the server of a PEM file of CA certificates trusted for the receiver'),
  insecure: z.boolean().describe('do not verify the receiver\'s TLS certificate (test setups only)'),
};
const createBody = z.strictObject({
  name: webhookName,
  url: fields.url,
  events: fields.events,
  format: fields.format.optional(),
  description: fields.description.optional(),
  enabled: fields.enabled.optional(),
  authHeader: fields.authHeader.optional(),
  secret: fields.secret.optional(),
  generateSecret: fields.generateSecret.optional(),
  caFile: fields.caFile.optional(),
  insecure: fields.insecure.optional(),
});
/** A change: any field of a creation but the name (absent: unchanged). */
const updateBody = createBody.omit({ name: true }).partial();

const webhookView = z.object({
  name: z.string(),
  project: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENTS)),
  format: z.enum(WEBHOOK_FORMATS),
  description: z.string().nullable(),
  enabled: z.boolean(),
  hasSecret: z.boolean().describe('whether deliveries are signed (the secret is never returned after creation)'),
  hasAuthHeader: z.boolean(),
  caFile: z.string().nullable(),
  insecure: z.boolean(),
  createdBy: z.string().nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
});
const createdView = webhookView.extend({ secret: z.string().optional().describe('the generated signing secret: shown only in this answer') });

const deliveryView = z.object({
  id: z.number().int(),
  eventId: z.number().int().nullable().describe('the outbox event; null for a test event'),
  eventType: z.string(),
  messageId: z.string().describe('the webhook-id header, the same for every attempt and redelivery'),
  state: z.enum(DELIVERY_STATES),
  attempts: z.number().int(),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number().int().nullable(),
  nextAttemptAt: isoTime.nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
  deliveredAt: isoTime.nullable(),
});
const deliveryDetail = deliveryView.extend({
  request: z.string().describe('the body sent (JSON text)'),
  response: z.string().nullable().describe("the start of the receiver's last answer (at most 1 KiB)"),
});

function view(project: ProjectRow, row: WebhookRow) {
  return {
    name: row.name,
    project: project.name,
    url: row.url,
    events: eventsOf(row),
    format: row.format as (typeof WEBHOOK_FORMATS)[number],
    description: row.description,
    enabled: row.enabled === 1,
    hasSecret: row.secret !== null,
    hasAuthHeader: row.auth_header !== null,
    caFile: row.ca_file,
    insecure: row.insecure === 1,
    createdBy: row.created_by,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

function viewDelivery(row: Omit<WebhookDeliveryRow, 'payload' | 'response'>) {
  return {
    id: row.id,
    eventId: row.event_id,
    eventType: row.event_type,
    messageId: row.message_id,
    state: row.state as (typeof DELIVERY_STATES)[number],
    attempts: row.attempts,
    statusCode: row.status_code,
    error: row.error,
    durationMs: row.duration_ms,
    nextAttemptAt: row.state === 'pending' ? iso(row.next_at) : null,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    deliveredAt: iso(row.delivered_at),
  };
}

/** The settings of a validated body (absent fields left out: unchanged, or defaulted). */
function settingsOf(body: object): WebhookSettings {
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (value !== undefined && key !== 'name') settings[key] = value;
  return settings as WebhookSettings;
}

/** What an audit entry may say of a change: never the secret or the auth header. */
function auditDetail(body: Record<string, unknown>, changed?: string[]): Record<string, unknown> {
  const detail: Record<string, unknown> = changed ? { changed } : {};
  for (const key of ['url', 'events', 'format', 'enabled', 'caFile', 'insecure'] as const) if (body[key] !== undefined) detail[key] = body[key];
  if (body.secret !== undefined || body.generateSecret) detail.secret = body.secret === null ? 'removed' : 'set';
  if (body.authHeader !== undefined) detail.authHeader = body.authHeader === null ? 'removed' : 'set';
  return detail;
}

/**
 * `/projects/{project}/webhooks`: a project's webhook policies, their delivery logs, redelivery and
 * test events — for project administrators and system administrators. A project the caller cannot
 * see is 404 (401 to anonymous callers); seeing it without `project.update` is 403. A policy or
 * delivery of another project is 404 as if it did not exist. Secrets and auth headers go in and
 * never come out (`hasSecret`, `hasAuthHeader`; a generated secret once, in the creating answer).
 */
export function webhookOperations(services: ApiServices): Operation[] {
  const { meta, webhookPolicies } = services;

  async function access(identity: Identity, name: string): Promise<ProjectRow> {
    return (await projectAccess(services, identity, name, MANAGE)).project;
  }

  async function find(project: ProjectRow, name: string): Promise<WebhookRow> {
    const row = await meta.webhooks.find(project.id, name);
    if (!row) throw notFound(`webhook "${name}" not found in project "${project.name}"`);
    return row;
  }

  async function wake(ctx: { log: { warn(o: object, m: string): void } }, id: number): Promise<void> {
    await meta.jobs.enqueue({ kind: WEBHOOK_KIND, payload: { webhook: id }, exclusiveKey: webhookKey(id) });
    // Only a hint to idle workers on other replicas: they poll anyway.
    await meta.jobs.notify().catch((err: unknown) => ctx.log.warn({ err }, 'could not wake the job workers'));
  }

  const base = '/projects/{project}/webhooks';
  return [
    operation({
      id: 'listWebhooks',
      method: 'GET',
      path: base,
      tag: 'webhooks',
      summary: "The project's webhook policies, by name (project administrators)",
      params: projectParam,
      query: z.object(pageQuery),
      response: pageOf(webhookView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const project = await access(identity, params.project);
        const found = await meta.webhooks.list(project.id, window(query));
        return paged(ctx, query, found.items.map((r) => view(project, r)), found.total);
      },
    }),
    operation({
      id: 'createWebhook',
      method: 'POST',
      path: base,
      tag: 'webhooks',
      summary: 'Add a webhook policy (project administrators)',
      description: 'With generateSecret, the answer carries the signing secret: it is shown only this once. The auth header and secret are sealed at rest.',
      params: projectParam,
      body: createBody,
      status: 201,
      response: createdView,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params, body }) => {
        const project = await access(identity, params.project);
        const createdBy = identity.kind === 'anonymous' ? null : identity.name;
        const { row, secret } = await webhookPolicies.create(project, body.name, settingsOf(body), createdBy);
        await audit(services, ctx, identity, { action: 'webhook.create', resourceType: 'webhook', resource: `${project.name}/${row.name}`, project: project.name, detail: auditDetail(body) });
        return { status: 201, headers: { Location: `/api/v1/projects/${project.name}/webhooks/${row.name}` }, body: { ...view(project, row), ...(secret ? { secret } : {}) } };
      },
    }),
    operation({
      id: 'getWebhook',
      method: 'GET',
      path: `${base}/{name}`,
      tag: 'webhooks',
      summary: 'A webhook policy (project administrators)',
      params: nameParam,
      response: webhookView,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        const project = await access(identity, params.project);
        return { body: view(project, await find(project, params.name)) };
      },
    }),
    operation({
      id: 'updateWebhook',
      method: 'PATCH',
      path: `${base}/{name}`,
      tag: 'webhooks',
      summary: 'Change a webhook policy (project administrators)',
      description: 'Absent fields are unchanged; authHeader or secret null removes it. The name cannot change.',
      params: nameParam,
      body: updateBody,
      response: createdView,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        const project = await access(identity, params.project);
        const updated = await webhookPolicies.update(project, params.name, settingsOf(body));
        if (!updated) throw notFound(`webhook "${params.name}" not found in project "${project.name}"`);
        if (updated.changed.length > 0) {
          await audit(services, ctx, identity, { action: 'webhook.update', resourceType: 'webhook', resource: `${project.name}/${params.name}`, project: project.name, detail: auditDetail(body, updated.changed) });
        }
        return { body: { ...view(project, updated.row), ...(updated.secret ? { secret: updated.secret } : {}) } };
      },
    }),
    operation({
      id: 'deleteWebhook',
      method: 'DELETE',
      path: `${base}/{name}`,
      tag: 'webhooks',
      summary: 'Delete a webhook policy and its delivery log (project administrators)',
      params: nameParam,
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const project = await access(identity, params.project);
        if (!(await meta.webhooks.delete(project.id, params.name))) throw notFound(`webhook "${params.name}" not found in project "${project.name}"`);
        await audit(services, ctx, identity, { action: 'webhook.delete', resourceType: 'webhook', resource: `${project.name}/${params.name}`, project: project.name });
        return { status: 204 };
      },
    }),
    operation({
      id: 'testWebhook',
      method: 'POST',
      path: `${base}/{name}/test`,
      tag: 'webhooks',
      summary: 'Send a test event (an artifact.pushed of a made-up artifact) through the delivery queue (project administrators)',
      description: 'Answers 202 with the queued delivery; follow it with GET …/deliveries/{id}.',
      params: nameParam,
      status: 202,
      response: deliveryView,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const project = await access(identity, params.project);
        const row = await find(project, params.name);
        const delivery = await webhookPolicies.queueTest(project, row, identity.kind === 'anonymous' ? null : identity.name);
        await wake(ctx, row.id);
        return { status: 202, headers: { Location: `/api/v1/projects/${project.name}/webhooks/${row.name}/deliveries/${delivery.id}` }, body: viewDelivery(delivery) };
      },
    }),
    operation({
      id: 'listWebhookDeliveries',
      method: 'GET',
      path: `${base}/{name}/deliveries`,
      tag: 'webhooks',
      summary: "The webhook's deliveries, newest first (project administrators)",
      params: nameParam,
      query: z.object({ state: z.enum(DELIVERY_STATES).optional(), ...pageQuery }),
      response: pageOf(deliveryView),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const project = await access(identity, params.project);
        const row = await find(project, params.name);
        const found = await meta.webhooks.deliveries(row.id, { ...window(query), ...(query.state ? { state: query.state } : {}) });
        return paged(ctx, query, found.items.map(viewDelivery), found.total);
      },
    }),
    operation({
      id: 'getWebhookDelivery',
      method: 'GET',
      path: `${base}/{name}/deliveries/{id}`,
      tag: 'webhooks',
      summary: 'A delivery with the body sent and the start of the answer (project administrators)',
      params: deliveryParam,
      response: deliveryDetail,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        const project = await access(identity, params.project);
        const row = await find(project, params.name);
        const delivery = await meta.webhooks.delivery(row.id, params.id);
        if (!delivery) throw notFound(`delivery ${params.id} not found for webhook "${row.name}"`);
        return { body: { ...viewDelivery(delivery), request: delivery.payload, response: delivery.response } };
      },
    }),
    operation({
      id: 'redeliverWebhookDelivery',
      method: 'POST',
      path: `${base}/{name}/deliveries/{id}/redeliver`,
      tag: 'webhooks',
      summary: 'Send a delivery again: pending now, attempts from 0, the same message id and body (project administrators)',
      params: deliveryParam,
      status: 202,
      response: deliveryView,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const project = await access(identity, params.project);
        const row = await find(project, params.name);
        const delivery = await meta.webhooks.redeliver(row.id, params.id);
        if (!delivery) throw notFound(`delivery ${params.id} not found for webhook "${row.name}"`);
        await wake(ctx, row.id);
        return { status: 202, body: viewDelivery(delivery) };
      },
    }),
  ];
}
