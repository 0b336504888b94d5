import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientConfig } from 'pg';
import type { Config } from '../config/schema.ts';
import { openDatabase } from './database.ts';
import { sqliteDialect, type DB, type OpenedDialect, type SqliteOptions } from './dialect.ts';
import { SigningKeyStore } from './signing-keys.ts';
import { ManifestStore } from './manifests.ts';
import { ArtifactStore } from './artifacts.ts';
import { RepositoryStore } from './repositories.ts';
import { UploadStore } from './uploads.ts';
import { UserStore } from './users.ts';
import { AuditStore } from './audit.ts';
import { ProjectStore } from './projects.ts';
import { MemberStore } from './members.ts';
import { GroupStore } from './groups.ts';
import { AuthFlowStore } from './auth-flows.ts';
import { RobotStore } from './robots.ts';
import { TokenStore } from './tokens.ts';
import { JobStore } from './jobs.ts';
import { ScheduleStore } from './schedules.ts';
import { EventStore } from './events.ts';
import { BlobRecords } from './blobs.ts';
import { RetentionStore } from './retention.ts';
import { JobItemStore } from './job-items.ts';
import { ImmutabilityStore } from './immutability.ts';
import { LeaseStore } from './leases.ts';
import { RegistryStore } from './registries.ts';
import { ProxyTagStore } from './proxy-tags.ts';
import { ReplicationStore } from './replication.ts';
import { WebhookStore } from './webhooks.ts';
import { SettingStore } from './settings.ts';
import { listenForChanges, localChanges, type ChangeFeed } from './changes.ts';

/** Every metadata aggregate over one database connection. */
export interface Metadata {
  db: DB;
  /** The database underneath: the embedded SQLite file, or a PostgreSQL server shared by replicas. */
  dialect: 'sqlite' | 'postgres';
  /**
   * On PostgreSQL, the configuration for a `pg.Client` of one's own, outside the pool (e.g. for
   * `LISTEN`), TLS included; undefined on SQLite. It holds the password: never log it.
   */
  postgres?: ClientConfig;
  users: UserStore;
  repositories: RepositoryStore;
  /** Every content object storage holds, and the locks that let garbage collection run beside pushes (blobs.ts). */
  blobs: BlobRecords;
  manifests: ManifestStore;
  /** Reads of artifacts for the management and referrers APIs (pages, tags, sizes, referrers). */
  artifacts: ArtifactStore;
  uploads: UploadStore;
  projects: ProjectStore;
  /** Who has which role in which project: users and groups. */
  members: MemberStore;
  /** Groups of the identity sources (LDAP, OIDC) and who is in them. */
  groups: GroupStore;
  /** OpenID Connect sign-ins in progress (src/auth/oidc/flows.ts), shared by replicas. */
  authFlows: AuthFlowStore;
  robots: RobotStore;
  tokens: TokenStore;
  audit: AuditStore;
  /** The durable job queue (src/jobs/ runs it). */
  jobs: JobStore;
  schedules: ScheduleStore;
  /** What jobs decided item by item (a retention run's decisions). */
  jobItems: JobItemStore;
  /** Each project's tag retention policy and schedule, and the artifacts retention evaluates. */
  retention: RetentionStore;
  /** The event outbox, written in the transactions of the changes it records. */
  events: EventStore;
  /** Keys shared through the database (the token signing key on PostgreSQL). */
  signingKeys: SigningKeyStore;
  /** Tag immutability rules per project (cached; consulted by pushes, deletions and retention). */
  immutability: ImmutabilityStore;
  /** Short named leases shared by replicas (one upstream fetch of a missing blob at a time: src/proxy/fill.ts). */
  leases: LeaseStore;
  /** When each proxy-cache tag was last confirmed with its upstream. */
  proxyTags: ProxyTagStore;
  /** Registry endpoints: upstreams of proxy-cache projects, replication peers (credentials sealed). */
  registries: RegistryStore;
  /** Replication rules with their schedules, and the marks event-triggered executions work from. */
  replication: ReplicationStore;
  /** Webhook policies of projects and their deliveries (secrets sealed by src/webhooks/). */
  webhooks: WebhookStore;
  /** Run-time system settings an administrator changed (overriding the configuration), cached and kept current on every replica. */
  settings: SettingStore;
  /** Tells every process sharing the database what changed, so that their caches drop it (changes.ts). */
  changes: ChangeFeed;
  close(): Promise<void>;
}

/** Options of {@link openMetadataFor}. */
export interface MetadataOptions {
  /** Told about PostgreSQL connections that failed while idle (see PostgresOptions.onConnectionError). */
  onConnectionError?: (err: Error) => void;
}

/**
 * Opens (creating and migrating as needed) the metadata of `config`: on PostgreSQL when
 * `database.url` is set, otherwise the embedded SQLite under `dataDir`. Rejects with a ConfigError
 * when PostgreSQL cannot be reached or refuses the connection (naming `database.url` without its
 * password), or when the database was migrated by a newer Berth.
 */
export async function openMetadataFor(config: Config, options: MetadataOptions = {}): Promise<Metadata> {
  if (!config.database.url) return openMetadata(config.dataDir);
  // Loaded only when configured: the embedded default never needs the PostgreSQL driver.
  const { postgresClientConfig, postgresDialect } = await import('./postgres.ts');
  const opened = await postgresDialect({ url: config.database.url, poolSize: config.database.poolSize, tls: config.database.tls, onConnectionError: options.onConnectionError });
  return assemble(opened, postgresClientConfig(config));
}

/** Opens (creating and migrating as needed) the embedded SQLite metadata under `dataDir`. */
export async function openMetadata(dataDir: string, options: SqliteOptions = {}): Promise<Metadata> {
  // Private, as the server's start makes it (src/config/data-dir.ts) when it is not there yet.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return assemble(sqliteDialect(join(dataDir, 'berth.db'), options), undefined);
}

/** Migrates the database of `opened` and builds every store over it. */
async function assemble(opened: OpenedDialect, postgres: ClientConfig | undefined): Promise<Metadata> {
  const db = await openDatabase(opened);
  const changes = postgres ? await listenForChanges(db, postgres) : localChanges();
  const projects = new ProjectStore(db, changes);
  const blobs = new BlobRecords(db, projects);
  const repositories = new RepositoryStore(db, projects, changes, blobs);
  await repositories.adoptOrphans();
  const audit = new AuditStore(db);
  const settings = new SettingStore(db, changes);
  // Loaded before the first request: a pull must not miss an auditPulls set at run time.
  await settings.load();
  const events = new EventStore(db, { dialect: opened.name });
  // A push that takes its project past the warning share of its quota says so, in its own transaction.
  projects.onQuotaWarning = (tx, w) => events.append(tx, { type: 'quota.warning', project: w.project, digest: w.digest, detail: { quotaBytes: w.quotaBytes, usageBytes: w.usageBytes } });
  return {
    db,
    dialect: opened.name,
    postgres,
    users: new UserStore(db),
    repositories,
    blobs,
    artifacts: new ArtifactStore(db),
    manifests: new ManifestStore(db, projects, events, blobs),
    uploads: new UploadStore(db, projects, repositories, blobs),
    projects,
    members: new MemberStore(db),
    groups: new GroupStore(db),
    authFlows: new AuthFlowStore(db),
    robots: new RobotStore(db),
    tokens: new TokenStore(db),
    audit,
    jobs: new JobStore(db, opened.name),
    schedules: new ScheduleStore(db),
    jobItems: new JobItemStore(db),
    retention: new RetentionStore(db),
    events,
    signingKeys: new SigningKeyStore(db),
    immutability: new ImmutabilityStore(db, changes, projects),
    leases: new LeaseStore(db),
    registries: new RegistryStore(db, changes),
    replication: new ReplicationStore(db),
    proxyTags: new ProxyTagStore(db),
    webhooks: new WebhookStore(db, changes),
    settings,
    changes,
    async close() {
      await changes.close();
      // Audit rows still queued are written before the database closes.
      await audit.flush();
      await db.destroy();
    },
  };
}
