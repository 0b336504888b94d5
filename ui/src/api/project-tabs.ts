// Shapes of the API answers a project's tabs use: members, robots, retention, immutability,
// webhooks, audit (src/http/api/{members,robots,retention,immutability,webhooks,audit}.ts).

/** Harbor's five project roles, most to least powerful (src/auth/roles.ts). */
export const ROLES = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const;
export type Role = (typeof ROLES)[number];

/** GET /projects/{p}/members: users first, then groups. */
export interface Member {
  kind: 'user' | 'group';
  name: string;
  role: Role;
  createdAt: string;
  username?: string;
  /** Groups only: `id` addresses /member-groups/{id}. */
  group?: { id: number; source: string; externalId: string };
}

/** GET /groups (administrators). */
export interface Group {
  id: number;
  name: string;
  source: string;
  externalId: string;
  createdAt: string;
  members: number;
}

/** What a project robot may be granted, per project (src/auth/roles.ts ROBOT_ACTIONS). */
export const ROBOT_ACTIONS = ['pull', 'push', 'delete', 'list'] as const;
export type RobotAction = (typeof ROBOT_ACTIONS)[number];

export interface Robot {
  name: string;
  level: 'project' | 'system';
  project: string | null;
  description: string;
  disabled: boolean;
  expiresAt: string | null;
  createdAt: string;
  createdBy: string | null;
  permissions: { project: string; actions: string[] }[];
}

/** POST /robots answers the robot with its secret, once. */
export type CreatedRobot = Robot & { secret: string };

export interface Selector {
  pattern: string;
  exclude: boolean;
}

export type Retain =
  | { kind: 'latestPushed'; count: number }
  | { kind: 'latestPulled'; count: number }
  | { kind: 'pushedWithinDays'; days: number }
  | { kind: 'pulledWithinDays'; days: number }
  | { kind: 'always' };
export type RetainKind = Retain['kind'];
export const RETAIN_KINDS: RetainKind[] = ['latestPushed', 'latestPulled', 'pushedWithinDays', 'pulledWithinDays', 'always'];

export interface RetentionRule {
  repositories: Selector;
  tags: Selector;
  untagged: boolean;
  retain: Retain;
}

/** Most rules a policy may have (src/lifecycle/retention/rules.ts). */
export const MAX_RETENTION_RULES = 15;

export interface RetentionPolicy {
  project: string;
  rules: RetentionRule[];
  /** Each rule in (English) words, by position. */
  descriptions: string[];
  cron: string | null;
  nextRunAt: string | null;
  updatedBy: string | null;
  updatedAt: string;
}

export type { JobState } from './types';
import type { JobState } from './types';

export interface RetentionProgress {
  phase?: string;
  total?: number;
  retained?: number;
  deleted?: number;
  failed?: number;
}

export interface RetentionRun {
  id: number;
  project: string;
  dryRun: boolean;
  trigger: 'manual' | 'schedule';
  state: JobState;
  cancelRequested: boolean;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: RetentionProgress | null;
}

export interface RetentionRunDetail extends RetentionRun {
  outcomes: Record<string, number>;
  log: { time: string; level: string; message: string }[];
}

export type RetentionOutcome = 'retained' | 'deleted' | 'would-delete' | 'failed' | 'pending';

export interface RetentionItem {
  repository: string;
  digest: string;
  outcome: RetentionOutcome;
  tags: string[];
  basis: string | null;
  rule: number | null;
  reason: string;
  error?: string;
}

export interface ImmutabilityRule {
  id: number;
  repositories: Selector;
  tags: Selector;
  disabled: boolean;
  createdBy: string | null;
  createdAt: string;
}

export const WEBHOOK_EVENTS = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'retention.finished', 'replication.finished', 'quota.warning', 'quota.exceeded'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
export const WEBHOOK_FORMATS = ['harbor', 'cloudevents'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export interface Webhook {
  name: string;
  project: string;
  url: string;
  events: WebhookEvent[];
  format: WebhookFormat;
  description: string | null;
  enabled: boolean;
  hasSecret: boolean;
  hasAuthHeader: boolean;
  caFile: string | null;
  insecure: boolean;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A create or change answer: a generated signing secret comes once, here. */
export type SavedWebhook = Webhook & { secret?: string };

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  id: number;
  eventId: number | null;
  eventType: string;
  messageId: string;
  state: DeliveryState;
  attempts: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
}

export interface DeliveryDetail extends Delivery {
  /** The body sent (JSON text). */
  request: string;
  /** The start of the receiver's last answer (at most 1 KiB). */
  response: string | null;
}

export interface AuditEvent {
  id: number;
  time: string;
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  project: string | null;
  client: string | null;
  success: boolean;
  detail: Record<string, unknown> | null;
}
