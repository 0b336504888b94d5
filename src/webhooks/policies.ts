// Webhook policies as project administrators manage them: settings validated into one form, the
// signing secret and the auth header sealed at rest (bound to the policy's project and name),
// opened only to send a delivery, and the "send test event" action.
import { readCA } from '../remote/ca.ts';
import { SealError, type Sealer } from '../auth/sealed.ts';
import { invalid, RegistryError, type FieldError } from '../domain/errors.ts';
import type { WebhookStore } from '../metadata/webhooks.ts';
import type { ProjectRow, WebhookDeliveryRow, WebhookRow } from '../metadata/schema.ts';
import { webhookURLProblem } from './deliver.ts';
import { renderPayload, testEvent, WEBHOOK_EVENTS, WEBHOOK_FORMATS, type WebhookEvent, type WebhookFormat } from './payload.ts';
import { generateSecret, secretProblem } from './sign.ts';

/** A policy name: what `berth webhook create NAME` and the API accept. */
export const WEBHOOK_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const WEBHOOK_NAME_RULE = '1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit';
/** The job kind that delivers a policy's messages, and its exclusive key. */
export const WEBHOOK_KIND = 'webhook';
export function webhookKey(id: number): string {
  return `webhook:${id}`;
}

/** Settings as given: on creation (url and events required), or (all optional) as changes. */
export interface WebhookSettings {
  url?: string;
  events?: string[];
  format?: string;
  description?: string | null;
  enabled?: boolean;
  /** The whole `Authorization` header value, e.g. `Bearer …`; null: none (on a change: remove). */
  authHeader?: string | null;
  /** A signing secret (`whsec_…`); null: unsigned (on a change: remove). */
  secret?: string | null;
  /** Generate a signing secret (returned once). */
  generateSecret?: boolean;
  caFile?: string | null;
  insecure?: boolean;
}

/** A saved policy that cannot be used: its sealed values do not open, or its CA file went. Never names a secret. */
export class WebhookUnusableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookUnusableError';
  }
}

/** What sending to a policy needs, secrets opened. */
export interface WebhookTarget {
  url: string;
  secret?: string;
  authHeader?: string;
  ca?: string;
  insecure: boolean;
}

/** The policy's subscribed events as stored. */
export function eventsOf(row: WebhookRow): WebhookEvent[] {
  try {
    const parsed = JSON.parse(row.events) as unknown;
    return Array.isArray(parsed) ? parsed.filter((e): e is WebhookEvent => (WEBHOOK_EVENTS as readonly string[]).includes(e as string)) : [];
  } catch {
    return [];
  }
}

/** The context a policy's secrets are sealed under: its project and name, which never change. */
function context(row: { project_id: number; name: string } | { projectId: number; name: string }, what: 'secret' | 'auth'): string {
  const projectId = 'project_id' in row ? row.project_id : row.projectId;
  return `webhook:${projectId}:${row.name}:${what}`;
}

/**
 * Webhook policies: create, change (validated, secrets sealed), the target of a delivery (secrets
 * opened), and test events. Errors: INVALID (400, `invalid`), RegistryError CONFLICT for a name
 * taken, WebhookUnusableError from `target`; the database's own.
 */
export class WebhookService {
  /** `externalURL`: the server's first external URL (resource URLs in payloads), once known. */
  constructor(private readonly deps: { webhooks: WebhookStore; sealer: Sealer; externalURL?: () => string | undefined }) {}

  /** Creates policy `name` in `project`; its row and, when one was generated, the secret (shown once). */
  async create(project: ProjectRow, name: string, settings: WebhookSettings, createdBy: string | null): Promise<{ row: WebhookRow; secret?: string }> {
    const fields: FieldError[] = [];
    if (!WEBHOOK_NAME.test(name)) fields.push({ path: 'name', message: WEBHOOK_NAME_RULE });
    if (settings.url === undefined) fields.push({ path: 'url', message: 'required' });
    if (settings.events === undefined) fields.push({ path: 'events', message: `required: some of ${WEBHOOK_EVENTS.join(', ')}` });
    const r = await this.resolve(settings, undefined, fields);
    const key = { projectId: project.id, name };
    const row = await this.deps.webhooks.create({
      projectId: project.id,
      name,
      description: r.description,
      url: r.url,
      events: r.events,
      format: r.format,
      authHeader: r.authHeader ? this.deps.sealer.seal(r.authHeader, context(key, 'auth')) : null,
      secret: r.secret ? this.deps.sealer.seal(r.secret, context(key, 'secret')) : null,
      caFile: r.caFile,
      insecure: r.insecure,
      enabled: r.enabled,
      createdBy,
    });
    if (!row) throw new RegistryError('CONFLICT', `webhook "${name}" already exists in project "${project.name}"`);
    return { row, ...(settings.generateSecret ? { secret: r.secret! } : {}) };
  }

  /** Changes policy `name`; its new row, the fields changed (for audit) and a generated secret; undefined when there is none. */
  async update(project: ProjectRow, name: string, changes: WebhookSettings): Promise<{ row: WebhookRow; changed: string[]; secret?: string } | undefined> {
    const saved = await this.deps.webhooks.find(project.id, name);
    if (!saved) return undefined;
    const r = await this.resolve(changes, saved, []);
    const seal = (value: string | null | undefined, what: 'secret' | 'auth') => (value === undefined ? undefined : value === null ? null : this.deps.sealer.seal(value, context(saved, what)));
    const authHeader = seal(changes.authHeader === undefined ? undefined : r.authHeader, 'auth');
    const secret = seal(changes.secret === undefined && !changes.generateSecret ? undefined : r.secret, 'secret');
    const row = await this.deps.webhooks.update(project.id, name, {
      description: r.description,
      url: r.url,
      events: r.events,
      format: r.format,
      ...(authHeader !== undefined ? { authHeader } : {}),
      ...(secret !== undefined ? { secret } : {}),
      caFile: r.caFile,
      insecure: r.insecure,
      enabled: r.enabled,
    });
    if (!row) return undefined;
    const changed = Object.keys(changes).filter((k) => changes[k as keyof WebhookSettings] !== undefined);
    return { row, changed, ...(changes.generateSecret ? { secret: r.secret! } : {}) };
  }

  /** The URL, opened secrets and TLS options of `row`. WebhookUnusableError when they cannot be had. */
  async target(row: WebhookRow): Promise<WebhookTarget> {
    const opened = (sealed: string | null, what: 'secret' | 'auth') => {
      if (sealed === null) return undefined;
      try {
        return this.deps.sealer.open(sealed, context(row, what));
      } catch (err) {
        if (!(err instanceof SealError)) throw err;
        throw new WebhookUnusableError(`webhook "${row.name}": its saved ${what === 'secret' ? 'signing secret' : 'auth header'} does not open with this server's secrets key (was secrets.key or the signing key changed?); set it again`);
      }
    };
    const secret = opened(row.secret, 'secret');
    const authHeader = opened(row.auth_header, 'auth');
    let ca: string | undefined;
    if (row.ca_file !== null) {
      const read = await readCA(row.ca_file);
      if ('message' in read) throw new WebhookUnusableError(`webhook "${row.name}": its caFile ${read.message}`);
      ca = read.pem;
    }
    return { url: row.url, ...(secret ? { secret } : {}), ...(authHeader ? { authHeader } : {}), ...(ca ? { ca } : {}), insecure: row.insecure === 1 };
  }

  /** Queues a test event (a made-up `artifact.pushed`) for `row`; the delivery. */
  async queueTest(project: ProjectRow, row: WebhookRow, actor: string | null): Promise<WebhookDeliveryRow> {
    const messageId = `msg_test_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const externalURL = this.deps.externalURL?.();
    const payload = renderPayload(testEvent(project.name, actor), {
      format: row.format as WebhookFormat,
      messageId,
      ...(externalURL ? { externalURL } : {}),
      projectPublic: project.public === 1,
    })!;
    const [id] = await this.deps.webhooks.queue([{ webhookId: row.id, eventId: null, eventType: 'artifact.pushed', messageId, payload }]);
    return (await this.deps.webhooks.delivery(row.id, id!))!;
  }

  private async resolve(s: WebhookSettings, saved: WebhookRow | undefined, fields: FieldError[]) {
    let url = saved?.url ?? '';
    if (s.url !== undefined) {
      const problem = webhookURLProblem(s.url);
      if (problem) fields.push({ path: 'url', message: problem });
      else url = s.url;
    }
    let events = saved ? eventsOf(saved) : [];
    if (s.events !== undefined) {
      const bad = s.events.some((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
      if (bad || s.events.length === 0) fields.push({ path: 'events', message: `one or more of ${WEBHOOK_EVENTS.join(', ')}` });
      else events = [...new Set(s.events as WebhookEvent[])];
    }
    const format = s.format ?? saved?.format ?? 'harbor';
    if (!(WEBHOOK_FORMATS as readonly string[]).includes(format)) fields.push({ path: 'format', message: `one of ${WEBHOOK_FORMATS.join(', ')}` });
    const description = s.description !== undefined ? s.description : (saved?.description ?? null);
    if (description !== null && description.length > 1024) fields.push({ path: 'description', message: 'at most 1024 characters' });
    const authHeader = s.authHeader ?? null;
    // eslint-disable-next-line no-control-regex
    if (authHeader !== null && (authHeader.length === 0 || authHeader.length > 4096 || /[\u0000-\u001f\u007f]/.test(authHeader))) fields.push({ path: 'authHeader', message: '1-4096 characters, no control characters' });
    let secret = s.secret ?? null;
    if (s.generateSecret) {
      if (s.secret) fields.push({ path: 'secret', message: 'give a secret or generateSecret, not both' });
      secret = generateSecret();
    } else if (secret !== null) {
      const problem = secretProblem(secret);
      if (problem) fields.push({ path: 'secret', message: problem });
    }
    let caFile = saved?.ca_file ?? null;
    if (s.caFile !== undefined) {
      caFile = s.caFile;
      if (caFile !== null) {
        const read = await readCA(caFile);
        if ('message' in read) fields.push({ path: 'caFile', message: read.message });
      }
    }
    if (fields.length > 0) throw invalid(fields);
    return { url, events, format, description, authHeader, secret, caFile, insecure: s.insecure ?? saved?.insecure === 1, enabled: s.enabled ?? (saved ? saved.enabled === 1 : true) };
  }
}
