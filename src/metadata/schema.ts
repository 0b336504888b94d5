import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Table types for Kysely. Times are milliseconds since the epoch (portable across SQLite and PostgreSQL). */
export interface Database {
  users: UsersTable;
  repositories: RepositoriesTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  upload_sessions: UploadSessionsTable;
  projects: ProjectsTable;
  project_members: ProjectMembersTable;
  groups: GroupsTable;
  group_memberships: GroupMembershipsTable;
  project_group_members: ProjectGroupMembersTable;
  auth_flows: AuthFlowsTable;
  project_blobs: ProjectBlobsTable;
  project_usage: ProjectUsageTable;
  robots: RobotsTable;
  robot_permissions: RobotPermissionsTable;
  personal_tokens: PersonalTokensTable;
  sessions: SessionsTable;
  audit_log: AuditLogTable;
  signing_keys: SigningKeysTable;
  jobs: JobsTable;
  job_logs: JobLogsTable;
  schedules: SchedulesTable;
  events: EventsTable;
  event_cursors: EventCursorsTable;
  blobs: BlobsTable;
  job_items: JobItemsTable;
  registries: RegistriesTable;
  proxy_tags: ProxyTagsTable;
  leases: LeasesTable;
  retention_policies: RetentionPoliciesTable;
  immutability_rules: ImmutabilityRulesTable;
  replication_rules: ReplicationRulesTable;
  replication_marks: ReplicationMarksTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  settings: SettingsTable;
}

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  is_admin: number;
  /** Bumped on password change: refresh tokens and cached logins of older generations stop working. */
  credential_generation: number;
  /** A random identity that is never reused: tokens and sessions name it, not the (reusable) name or id. */
  uid: string;
  created_at: number;
  /** Where the account lives: `local`, `ldap` or `oidc` (src/auth/external.ts). Only local users have a usable password_hash. */
  source: ColumnType<string, string | undefined, string>;
  /** The person's id at the source (LDAP DN, OIDC `<issuer> <sub>`); null for local users. */
  external_id: ColumnType<string | null, string | null | undefined, string | null>;
  email: ColumnType<string | null, string | null | undefined, string | null>;
  last_login_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** When the user's groups were last read from the source. */
  groups_synced_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** OIDC: the provider's refresh token, sealed (src/auth/sealed.ts); null when it sent none, or after a revocation. */
  external_refresh: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A group of an identity source (LDAP group entry, OIDC groups-claim value). */
export interface GroupsTable {
  id: Generated<number>;
  source: string;
  name: string;
  external_id: string;
  created_at: number;
}

export interface GroupMembershipsTable {
  user_id: number;
  group_id: number;
}

/** A group's role in a project (a user's is in project_members). */
export interface ProjectGroupMembersTable {
  project_id: number;
  group_id: number;
  role: string;
  created_at: number;
}

/** An OpenID Connect sign-in in progress (src/auth/oidc/); `data` is JSON the flow defines. */
export interface AuthFlowsTable {
  id_hash: string;
  kind: string;
  data: string;
  user_id: number | null;
  expires_at: number;
  created_at: number;
}

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  /** The project: the first segment of the name, `library` for a name of one segment (see `projectOf`). */
  project_id: number | null;
  created_at: number;
  /** Raised in the transaction of every change to the repository's tags (cached tags lists compare it). */
  tags_version: Generated<number>;
}

/** Which repositories may serve which blobs (blobs themselves are shared and deduplicated). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  size: number;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject_digest: string | null;
  /** JSON text of the manifest's annotations, for the referrers API. */
  annotations: string | null;
  /** Who pushed it (user or robot name). */
  pushed_by: string | null;
  /** Last pull by tag or digest, ms (updated at most once a minute). */
  last_pulled_at: number | null;
  created_at: number;
}

/** What each manifest points at, for garbage collection and integrity checks. */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  child_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  manifest_digest: string;
  updated_at: number;
}

export interface UploadSessionsTable {
  id: string;
  repository: string;
  created_by: string | null;
  /** JSON of how the opening request arrived (host, scheme, forwarded headers, client, user agent). */
  origin: string | null;
  created_at: number;
  updated_at: number;
  /**
   * The running SHA-256 of the upload's first `hash_offset` bytes (base64 of a hash-wasm state),
   * saved after each request when replicas share the database, so any of them continues it; null
   * when none is saved. Used only while `hash_offset` equals the stored upload's size.
   */
  hash_state: string | null;
  hash_offset: number | null;
  /** The request writing to the session (a random token) and until when (ms) its hold lasts unless renewed; null when none. */
  lease_owner: string | null;
  lease_until: number | null;
}

/** A project: the first segment of repository names (`library` for single-segment ones), with its visibility and storage quota. */
export interface ProjectsTable {
  id: Generated<number>;
  name: string;
  /** 1: anyone may pull, anonymous callers included. */
  public: number;
  /** Bytes; null for no limit. */
  quota_bytes: number | null;
  created_by: string | null;
  created_at: number;
  /** A proxy-cache project's upstream (registries.id); null for an ordinary project. */
  proxy_registry_id: number | null;
  /** Seconds a proxy-cache project serves a cached tag before asking the upstream again; null: `proxy.freshness`. */
  proxy_freshness: number | null;
}

export interface ProjectMembersTable {
  project_id: number;
  user_id: number;
  /** One of ROLES in src/auth/roles.ts. */
  role: string;
  created_at: number;
}

/**
 * Each blob and manifest counted once per project (deduplicated), for quota usage: those some
 * manifest of the project's repositories is or lists, and blobs uploaded or mounted into it and not
 * yet referenced (a push in progress). Deletions take out, in their own transaction, what no
 * artifact of the project references any more. A repository serves a linked blob only while its
 * project counts it.
 */
export interface ProjectBlobsTable {
  project_id: number;
  digest: string;
  size: number;
}

/**
 * A project's usage spread over a few rows ("shards"): concurrent pushes add to random shards, so
 * no single row becomes the hot spot every push into the project must lock. Usage is their sum
 * (always the sum of its `project_blobs` sizes); deletions subtract from a random shard, so one
 * shard alone may be negative.
 */
export interface ProjectUsageTable {
  project_id: number;
  shard: number;
  bytes: number;
}

export interface RobotsTable {
  id: Generated<number>;
  /** Full login name: `robot$<project>+<name>` (project level) or `robot$<name>` (system level). */
  name: string;
  description: string;
  level: 'project' | 'system';
  /** SHA-256 of the secret (secrets are random, 32 bytes: no slow hash needed). */
  secret_hash: string;
  disabled: number;
  /** Milliseconds; null: never expires. */
  expires_at: number | null;
  created_by: string | null;
  created_at: number;
}

/** What a robot may do in one project; `project_id` null means every project (system robots only). */
export interface RobotPermissionsTable {
  robot_id: number;
  project_id: number | null;
  /** Comma-separated actions: pull, push, delete, list. */
  actions: string;
}

export interface PersonalTokensTable {
  id: Generated<number>;
  user_id: number;
  name: string;
  /** SHA-256 of the whole token. */
  token_hash: string;
  /** The first characters, to recognise a token in lists. */
  prefix: string;
  expires_at: number | null;
  revoked: number;
  last_used_at: number | null;
  created_at: number;
}

/** Management API login sessions (the web portal's cookie); the id is stored hashed. */
export interface SessionsTable {
  id_hash: string;
  user_id: number;
  /** The credential the session was opened with (`pw:<generation>` or `pat:<id>`); null only for sessions older than the column. */
  credential: string | null;
  expires_at: number;
  created_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  time: number;
  /** Who: a user name, `robot$…`, or `anonymous`. */
  actor: string;
  /** e.g. `push`, `pull`, `delete`, `login`, `login.failed`, `project.create`, `member.add`, `robot.create`. */
  action: string;
  /** e.g. `repository`, `artifact`, `tag`, `project`, `member`, `robot`, `token`, `user`. */
  resource_type: string;
  resource: string;
  project: string | null;
  /** The client's address (trusted-proxy aware). */
  client: string | null;
  success: number;
  /** JSON with action-specific facts (digest, tag, role…). */
  detail: string | null;
}

/**
 * Private keys shared by every replica on PostgreSQL (the token signing key, `name` = `token`), PEM
 * (PKCS #8). A secret at rest: whoever can read this table — the database's owner and its backups —
 * can sign tokens; access to Berth's database is access to its key.
 */
export interface SigningKeysTable {
  name: string;
  pem: string;
  created_at: number;
}

/** The states of a job: queued → running → succeeded | failed | cancelled (running → queued again for a retry). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** One unit of background work (src/jobs/): claimed with a lease by one replica at a time. */
export interface JobsTable {
  id: Generated<number>;
  /** The module that runs it (src/jobs/kinds/<kind>.ts). */
  kind: string;
  /** JSON the kind reads; never secrets (the list API shows it). */
  payload: string;
  state: JobState;
  /** Runs started so far (a lease taken over counts as one). */
  attempts: number;
  max_attempts: number;
  /** Not claimed before this time, ms (a retry's backoff). */
  run_at: number;
  /** Who holds the lease: `<replica>#<claim>`; null unless running. */
  lease_owner: string | null;
  /** The lease lapses at this time unless a heartbeat extends it; another replica may then take the job over. */
  lease_until: number | null;
  /** JSON the kind reports while it runs. */
  progress: string | null;
  /** The last failure's message. */
  error: string | null;
  /** Unique while the row exists: enqueuing the same key again adds nothing (e.g. `<schedule>@<tick>`). */
  dedupe_key: string | null;
  /** 1 once cancellation was asked for a running job; its run sees it at its next heartbeat. */
  cancel_requested: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** Unique while the job is queued or running, null once it ended: at most one such job at a time (e.g. `gc`). */
  exclusive_key: string | null;
}

/** A job's log lines (the newest few hundred per job are kept). */
export interface JobLogsTable {
  id: Generated<number>;
  job_id: number;
  time: number;
  level: 'info' | 'warn' | 'error';
  message: string;
}

/** A cron schedule: every replica computes its ticks; each tick becomes one job (dedupe key `<name>@<tick>`). */
export interface SchedulesTable {
  name: string;
  kind: string;
  /** A cron expression (croner: 5 or 6 fields, UTC). */
  cron: string;
  /** JSON payload of the jobs it enqueues. */
  payload: string;
  enabled: number;
  /** The tick after the last one enqueued, ms (informative). */
  next_run_at: number | null;
  /** The last tick enqueued, ms. */
  last_run_at: number | null;
  created_at: number;
}

/** The event outbox: one row per change, written in the change's own transaction (see events.ts). */
export interface EventsTable {
  id: Generated<number>;
  time: number;
  /** One of EVENT_TYPES in events.ts, e.g. `artifact.pushed`. */
  type: string;
  repository: string | null;
  project: string | null;
  digest: string | null;
  tag: string | null;
  /** Who made the change (user or robot name); null when unknown. */
  actor: string | null;
  /** JSON with type-specific facts. */
  detail: string | null;
}

/** How far each consumer of the outbox has read (it acknowledged every event up to `last_id`). */
export interface EventCursorsTable {
  consumer: string;
  last_id: number;
  updated_at: number;
}

/**
 * Every content object (blob or manifest bytes) the metadata knows storage holds, once per digest:
 * what garbage collection sweeps, and what every push that stores or references content locks
 * first (see src/metadata/blobs.ts for the protocol that keeps a manifest from ever pointing at
 * swept content).
 */
export interface BlobsTable {
  digest: string;
  size: number;
  /** The last time (ms) its bytes were written, or a reference to it was added or removed: the grace period counts from here. */
  touched_at: number;
  /** 1 once garbage collection decided to delete it: its bytes are going; nothing may claim it until the row is gone. */
  deleting: number;
}

/** What a job decided or did, one row per item (retention: an artifact kept or deleted, and which rule decided). */
export interface JobItemsTable {
  id: Generated<number>;
  job_id: number;
  /** What the item is about, e.g. `project/repo@sha256:…`. */
  subject: string;
  /** e.g. `retained`, `deleted`, `would-delete`, `failed`. */
  outcome: string;
  /** JSON with kind-specific facts (tags, the deciding rule…). */
  detail: string | null;
}

/** A project's tag retention policy (src/lifecycle/retention/): its rules as JSON, and an optional schedule. */
export interface RetentionPoliciesTable {
  project_id: number;
  /** JSON array of rules (see RetentionRule). */
  rules: string;
  /** Cron expression (UTC) of scheduled runs; null: manual only. */
  cron: string | null;
  updated_by: string | null;
  updated_at: number;
}

/** A project's tag immutability rule: tags it matches can be pushed once and never moved or deleted. */
export interface ImmutabilityRulesTable {
  id: Generated<number>;
  project_id: number;
  /** A `**` glob over the repository's path within the project (or the full name: see src/domain/patterns.ts). */
  repository_pattern: string;
  /** 1: the rule covers repositories NOT matching the pattern. */
  repository_exclude: number;
  tag_pattern: string;
  tag_exclude: number;
  disabled: number;
  created_by: string | null;
  created_at: number;
}

/** A registry endpoint: another registry Berth pulls from (proxy cache) or replicates with. */
export interface RegistriesTable {
  id: Generated<number>;
  name: string;
  /** One of REGISTRY_TYPES (src/remote/endpoint.ts). */
  type: string;
  /** `https://host[:port]` (no path). */
  url: string;
  username: string | null;
  /** The password or token, sealed with the secrets key (src/auth/sealed.ts); null: anonymous. */
  credential: string | null;
  /** PEM file of the CA that signs the registry's certificate (beside the system's). */
  ca_file: string | null;
  /** 1: do not verify the registry's TLS certificate. */
  insecure: number;
  description: string | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
}

/** When a proxy-cache tag was last confirmed with the upstream, and the digest it had then. */
export interface ProxyTagsTable {
  repository_id: number;
  tag: string;
  digest: string;
  checked_at: number;
}

/** A lease shared by replicas (one upstream fetch of a missing blob at a time). */
export interface LeasesTable {
  key: string;
  /** The replica holding it. */
  owner: string;
  expires_at: number;
}

/** A replication rule (src/replication/rules.ts validates `filters` and `destination`). */
export interface ReplicationRulesTable {
  id: Generated<number>;
  name: string;
  description: string | null;
  /** The other registry (`registries`): the destination of a push rule, the source of a pull rule. */
  registry_id: number;
  /** `push` (Berth → registry) or `pull` (registry → Berth). */
  direction: string;
  /** JSON: repository and tag patterns (match or exclude) and artifact types. */
  filters: string;
  /** JSON: how source repository names map to destination names (keep, replace the first segment, flatten). */
  destination: string;
  /** `manual`, `schedule` (with `cron`) or `event` (push rules only). */
  trigger: string;
  cron: string | null;
  /** 1: an event-triggered push rule also deletes at the destination what was deleted here. */
  replicate_deletes: number;
  /** 1: a destination tag that points elsewhere is overwritten; 0: it is left and reported. */
  override: number;
  /** Bytes per second across the execution's transfers; null: unlimited. */
  bandwidth: number | null;
  /** Artifacts (and blobs within each) copied at once. */
  concurrency: number;
  enabled: number;
  created_by: string | null;
  created_at: number;
  updated_by: string | null;
  updated_at: number;
}

/** An artifact an event-triggered rule still has to replicate (or delete at the destination). */
export interface ReplicationMarksTable {
  id: Generated<number>;
  rule_id: number;
  repository: string;
  tag: string | null;
  digest: string | null;
  /** `sync` (copy what differs) or `delete` (remove at the destination). */
  action: string;
  /** The outbox event that caused it. */
  event_id: number | null;
  created_at: number;
}

/** A project's webhook policy. */
export interface WebhooksTable {
  id: Generated<number>;
  project_id: number;
  name: string;
  description: string | null;
  url: string;
  /** JSON array of webhook event types. */
  events: string;
  /** `harbor` or `cloudevents`. */
  format: string;
  /** Sealed value of an `Authorization` header sent with each delivery; null: none. */
  auth_header: string | null;
  /** Sealed HMAC-SHA256 signing secret (Standard Webhooks); null: unsigned. */
  secret: string | null;
  ca_file: string | null;
  insecure: number;
  enabled: number;
  created_by: string | null;
  created_at: number;
  updated_at: number;
}

/** One message to one webhook, and how its delivery went. */
export interface WebhookDeliveriesTable {
  id: Generated<number>;
  webhook_id: number;
  /** The outbox event; null for a test event or a redelivery copy. */
  event_id: number | null;
  event_type: string;
  /** The `webhook-id` header: the same for every attempt and redelivery of one message. */
  message_id: string;
  /** The body, rendered when the delivery was queued. */
  payload: string;
  /** `pending`, `delivered` or `failed`. */
  state: string;
  attempts: number;
  status_code: number | null;
  /** The start of the receiver's last answer (at most 1 KiB). */
  response: string | null;
  error: string | null;
  duration_ms: number | null;
  /** When a pending delivery is (next) due, ms. */
  next_at: number | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

/** A run-time system setting an administrator set (migration 0014): it overrides the configuration file. */
export interface SettingsTable {
  key: string;
  /** The value as JSON. */
  value: string;
  updated_by: string | null;
  updated_at: number;
}

export type UserRow = Selectable<UsersTable>;
export type GroupRow = Selectable<GroupsTable>;
export type ProjectRow = Selectable<ProjectsTable>;
export type RobotRow = Selectable<RobotsTable>;
export type PersonalTokenRow = Selectable<PersonalTokensTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type ManifestRow = Selectable<ManifestsTable>;
export type NewManifest = Insertable<ManifestsTable>;
export type UploadSessionRow = Selectable<UploadSessionsTable>;
export type JobRow = Selectable<JobsTable>;
export type JobLogRow = Selectable<JobLogsTable>;
export type ScheduleRow = Selectable<SchedulesTable>;
export type EventRow = Selectable<EventsTable>;
export type BlobRow = Selectable<BlobsTable>;
export type JobItemRow = Selectable<JobItemsTable>;
export type RetentionPolicyRow = Selectable<RetentionPoliciesTable>;
export type ImmutabilityRuleRow = Selectable<ImmutabilityRulesTable>;
export type RegistryRow = Selectable<RegistriesTable>;
export type ReplicationRuleRow = Selectable<ReplicationRulesTable>;
export type ReplicationMarkRow = Selectable<ReplicationMarksTable>;
export type WebhookRow = Selectable<WebhooksTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type SettingRow = Selectable<SettingsTable>;
