// What a webhook receives: an outbox event (src/metadata/events.ts) rendered for one policy, in
// Harbor's JSON (so receivers written for Harbor work unchanged) or as a CloudEvents 1.0 JSON
// event. Rendered once, when the delivery is queued; every attempt sends the same bytes.
import type { EventType, OutboxEvent } from '../metadata/events.ts';

/**
 * The event types a webhook subscribes to, as the API and CLI name them. The outbox's
 * `tag.deleted` (a tag removed, the manifest kept) is delivered as `artifact.deleted` with the tag
 * in the resource: Harbor reports it the same way, and receivers that act on deletions must hear
 * about it.
 */
export const WEBHOOK_EVENTS = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'retention.finished', 'replication.finished', 'quota.warning', 'quota.exceeded'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Payload formats. */
export const WEBHOOK_FORMATS = ['harbor', 'cloudevents'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** The webhook event an outbox event is delivered as; undefined for one no webhook receives. */
export function webhookEventOf(type: EventType): WebhookEvent | undefined {
  switch (type) {
    case 'tag.deleted':
      return 'artifact.deleted';
    case 'artifact.pushed':
    case 'artifact.pulled':
    case 'artifact.deleted':
    case 'retention.finished':
    case 'replication.finished':
    case 'quota.warning':
    case 'quota.exceeded':
      return type;
    default:
      return undefined;
  }
}

/** Harbor's name of each event type (its `type` field). */
export const HARBOR_TYPES: Record<WebhookEvent, string> = {
  'artifact.pushed': 'PUSH_ARTIFACT',
  'artifact.pulled': 'PULL_ARTIFACT',
  'artifact.deleted': 'DELETE_ARTIFACT',
  'retention.finished': 'TAG_RETENTION',
  'replication.finished': 'REPLICATION',
  'quota.warning': 'QUOTA_WARNING',
  'quota.exceeded': 'QUOTA_EXCEED',
};

/** The CloudEvents `type` of a webhook event: `io.berth.artifact.pushed` and so on. */
export function cloudEventType(event: WebhookEvent): string {
  return `io.berth.${event}`;
}

/** What rendering needs besides the event. */
export interface RenderContext {
  format: WebhookFormat;
  /** The `webhook-id` of the message; also the CloudEvents `id`. */
  messageId: string;
  /** The first external URL (`https://registry.example.com`); undefined: the server's own address is not known. */
  externalURL?: string;
  /** Whether the event's project is public (Harbor's `repo_type`). */
  projectPublic: boolean;
}

/** Harbor's default payload. */
export interface HarborPayload {
  type: string;
  /** Seconds since the epoch. */
  occur_at: number;
  operator: string;
  event_data: {
    resources?: { digest?: string; tag?: string; resource_url?: string }[];
    repository?: { name: string; namespace: string; repo_full_name: string; repo_type: 'public' | 'private' };
    custom_attributes?: Record<string, string>;
    retention?: Record<string, unknown>;
    replication?: Record<string, unknown>;
  };
}

/** A CloudEvents 1.0 event in its JSON format. */
export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: 'application/json';
  subject?: string;
  data: Record<string, unknown>;
}

/** The host (and port) of an external URL, as image references name the registry. */
function hostOf(externalURL: string | undefined): string {
  if (!externalURL) return 'localhost';
  try {
    return new URL(externalURL).host;
  } catch {
    return 'localhost';
  }
}

/** The outbox event's detail fields, only those that are plain values (never nested objects from elsewhere). */
function flatDetail(event: OutboxEvent): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(event.detail ?? {})) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = String(value);
  }
  return out;
}

function harbor(event: OutboxEvent, type: WebhookEvent, ctx: RenderContext): HarborPayload {
  const host = hostOf(ctx.externalURL);
  const payload: HarborPayload = {
    type: HARBOR_TYPES[type],
    occur_at: Math.floor(event.time / 1000),
    operator: event.actor ?? '',
    event_data: {},
  };
  if (event.repository) {
    const slash = event.repository.indexOf('/');
    const namespace = slash > 0 ? event.repository.slice(0, slash) : (event.project ?? 'library');
    const name = slash > 0 ? event.repository.slice(slash + 1) : event.repository;
    const reference = event.tag ? `:${event.tag}` : event.digest ? `@${event.digest}` : '';
    payload.event_data.resources = [
      {
        ...(event.digest ? { digest: event.digest } : {}),
        ...(event.tag ? { tag: event.tag } : {}),
        resource_url: `${host}/${event.repository}${reference}`,
      },
    ];
    payload.event_data.repository = { name, namespace, repo_full_name: event.repository, repo_type: ctx.projectPublic ? 'public' : 'private' };
  } else if (event.digest) payload.event_data.resources = [{ digest: event.digest }];
  const detail = event.detail ?? {};
  if (type === 'retention.finished') payload.event_data.retention = { project_name: event.project, ...detail };
  else if (type === 'replication.finished') payload.event_data.replication = { ...detail };
  else if (type === 'quota.warning' || type === 'quota.exceeded') {
    const attrs = flatDetail(event);
    const usage = Number(detail.usageBytes);
    const quota = Number(detail.quotaBytes);
    attrs.Details =
      type === 'quota.warning'
        ? `project ${event.project ?? ''} uses ${usage} of its ${quota} bytes quota`
        : `pushing would bring project ${event.project ?? ''} over its ${quota} bytes quota (uses ${usage})`;
    payload.event_data.custom_attributes = attrs;
  } else if (type === 'artifact.deleted' && event.type === 'tag.deleted') payload.event_data.custom_attributes = { tag_only: 'true' };
  return payload;
}

function cloud(event: OutboxEvent, type: WebhookEvent, ctx: RenderContext): CloudEvent {
  const base = ctx.externalURL?.replace(/\/+$/, '') ?? '';
  const data: Record<string, unknown> = {
    project: event.project,
    repository: event.repository,
    digest: event.digest,
    tag: event.tag,
    operator: event.actor,
    ...(event.repository ? { resourceURL: `${hostOf(ctx.externalURL)}/${event.repository}${event.tag ? `:${event.tag}` : event.digest ? `@${event.digest}` : ''}` } : {}),
    ...(event.type === 'tag.deleted' ? { tagOnly: true } : {}),
    ...(event.detail ? { detail: event.detail } : {}),
  };
  return {
    specversion: '1.0',
    id: ctx.messageId,
    source: `${base}/api/v1/projects/${event.project ?? ''}`,
    type: cloudEventType(type),
    time: new Date(event.time).toISOString(),
    datacontenttype: 'application/json',
    ...(event.repository ? { subject: event.repository + (event.tag ? `:${event.tag}` : event.digest ? `@${event.digest}` : '') } : {}),
    data,
  };
}

/**
 * The body of `event` for a policy of format `ctx.format`, as JSON text; undefined when the event
 * is of a type no webhook receives. Pure: the same inputs give the same bytes.
 */
export function renderPayload(event: OutboxEvent, ctx: RenderContext): string | undefined {
  const type = webhookEventOf(event.type);
  if (!type) return undefined;
  return JSON.stringify(ctx.format === 'cloudevents' ? cloud(event, type, ctx) : harbor(event, type, ctx));
}

/** The outbox-shaped event a "send test event" queues: an `artifact.pushed` of a made-up artifact, marked as a test. */
export function testEvent(project: string, actor: string | null, now = Date.now()): OutboxEvent {
  return {
    id: 0,
    time: now,
    type: 'artifact.pushed',
    repository: `${project}/webhook-test`,
    project,
    digest: `sha256:${'0'.repeat(64)}`,
    tag: 'test',
    actor,
    detail: { test: true },
  };
}
