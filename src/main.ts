import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { sql } from 'kysely';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { checkConfig } from './config/check.ts';
import { ConfigError } from './config/overrides.ts';
import { logDestination as logDestinationFor } from './logging/pretty.ts';
import { prepareDataDir, type DataDirState } from './config/data-dir.ts';
import { blobRedirector, openBlobStore } from './storage/index.ts';
import { openMetadataFor, type Metadata } from './metadata/index.ts';
import { createRegistry } from './registry/index.ts';
import { ProjectAuthorizer } from './auth/authorizer.ts';
import { Authenticator } from './auth/authenticator.ts';
import { CredentialCheck } from './auth/credentials.ts';
import { openIdentitySources, type IdentitySources } from './auth/sources.ts';
import { deriveSecret, loadSigningKey } from './auth/keys.ts';
import { hashPassword, verifyPassword } from './auth/passwords.ts';
import { TokenService } from './auth/tokens.ts';
import { createHandler } from './http/server.ts';
import { connectionDrainer } from './http/connections.ts';
import { AddressSet } from './domain/cidr.ts';
import { createMetrics } from './http/metrics.ts';
import { OciAccess } from './http/oci/access.ts';
import { ociRoutes } from './http/oci/index.ts';
import { opsRoutes } from './http/ops/ops.ts';
import { tokenRoutes } from './http/token/token.ts';
import { apiRoutes } from './http/api/index.ts';
import { portalRoutes } from './http/portal/portal.ts';
import { PACKAGE_ROOT } from './version.ts';
import { parseSecretsKey, Sealer } from './auth/sealed.ts';
import { EndpointService } from './remote/endpoints.ts';
import { createProxyCache } from './proxy/index.ts';
import { createProxyMetrics } from './proxy/metrics.ts';
import { MirrorAuthorizer } from './proxy/mirror.ts';
import { startJobs } from './jobs/index.ts';
import { builtinKinds } from './jobs/kinds/index.ts';
import { blobReferencesOf } from './jobs/kinds/verify-blobs.ts';
import { createGcMetrics } from './lifecycle/gc/index.ts';
import { startConsumer, type EventHandler } from './events/consumer.ts';
import type { NewJob } from './metadata/jobs.ts';
import { replicationEvents, REPLICATION_CONSUMER } from './replication/events.ts';
import { WebhookService } from './webhooks/policies.ts';
import { webhookFanout, WEBHOOKS_CONSUMER } from './webhooks/fanout.ts';

export interface RunningBerth {
  /** The URL Berth listens on (its own address, not the external URL). */
  url: string;
  port: number;
  log: Logger;
  /** Stops accepting requests, lets in-flight ones finish (bounded), closes the stores. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 30_000;

/** Splits `host:port` (IPv6 hosts in brackets). */
function splitAddr(addr: string): { host: string; port: number } {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host: host || '0.0.0.0', port: Number(addr.slice(colon + 1)) };
}

/**
 * Creates the `admin` user on first start (once Berth listens, so a start that fails creates no
 * user); prints a generated password once, outside the logs. On a later start `adminPassword` is
 * not used: if it differs from the admin's password, that is logged.
 */
async function bootstrapAdmin(meta: Metadata, config: Config, log: Logger): Promise<void> {
  if ((await meta.users.count()) > 0) {
    const admin = config.adminPassword === undefined ? undefined : await meta.users.find('admin');
    if (admin && !(await verifyPassword(admin.password_hash, config.adminPassword!))) {
      log.warn({ setting: 'adminPassword' }, 'adminPassword (BERTH_ADMIN_PASSWORD) is ignored: it sets the password of "admin" only when the first user is created; change it with berth user passwd admin (after berth login, or with --data-dir)');
    }
    return;
  }
  const password = config.adminPassword ?? randomBytes(15).toString('base64url');
  await meta.users.create('admin', await hashPassword(password), true);
  log.info({ username: 'admin', generated: !config.adminPassword }, 'created the admin user');
  if (!config.adminPassword) {
    process.stderr.write(`\n  Berth created the user "admin" with the password:\n\n      ${password}\n\n  It is shown only this once. Change it with: berth login <url> -u admin, then berth user passwd admin\n\n`);
  }
}

/** Says when preparing the data directory changed (or failed to change) its permissions. */
function logDataDir(dataDir: string, state: DataDirState, log: Logger): void {
  const octal = (mode: number | undefined) => mode?.toString(8);
  if (state.tightenError) log.warn({ dataDir, mode: octal(state.tightenedFrom), err: state.tightenError }, 'could not make the data directory private (mode 0700)');
  else if (state.tightenedFrom !== undefined) log.info({ dataDir, was: octal(state.tightenedFrom), now: '700' }, 'tightened the data directory permissions');
}

/** A TLS file's contents, or a ConfigError naming the setting. */
function readTLS(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${setting} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a PEM file`);
  }
}

/** Why Berth cannot listen on `addr`, naming the setting and the fix. */
function listenError(err: NodeJS.ErrnoException, addr: string): Error {
  const fix = 'choose another with --addr, BERTH_ADDR or addr in the config file';
  switch (err.code) {
    case 'EADDRINUSE':
      return new ConfigError(`addr ${addr}: the address is in use (another process listens there — is Berth already running?); stop it or ${fix}`);
    case 'EACCES':
      return new ConfigError(`addr ${addr}: permission denied (ports below 1024 need privileges); ${fix}`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new ConfigError(`addr ${addr}: no such address on this machine; ${fix}`);
    default:
      return err;
  }
}

/** Composition root: config → stores → services → HTTP. */
export async function startBerth(config: Config, logDestination?: DestinationStream): Promise<RunningBerth> {
  const log = pino({ level: config.log.level, base: { service: 'berth' } }, logDestination ?? logDestinationFor(config.log.format));
  for (const warning of checkConfig(config)) log.warn({ check: 'config' }, warning);
  logDataDir(config.dataDir, prepareDataDir(config.dataDir), log);
  const store = await openBlobStore(config);
  const meta = await openMetadataFor(config, { onConnectionError: (err) => log.warn({ err }, 'a database connection failed') }).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  meta.audit.onError = (err, rows) => log.error({ err, rows }, 'audit rows could not be written');
  meta.changes.onError = (err, context) => log.warn({ err, context }, 'change feed failed');

  const signingKey = await loadSigningKey(config, meta).catch(async (err: unknown) => {
    await store.close();
    await meta.close();
    throw err;
  });
  const tokens = new TokenService(signingKey, {
    issuer: config.auth.issuer,
    service: config.auth.service,
    ttl: config.auth.tokenTTL,
    refreshTTL: config.auth.refreshTokenTTL,
  });
  // Secrets at rest (registry endpoint credentials, OIDC refresh tokens): under secrets.key, else a key derived from the signing key.
  const sealer = new Sealer(config.secrets.key ? parseSecretsKey(config.secrets.key)! : deriveSecret(signingKey, 'secrets at rest'));
  const credentials = new CredentialCheck(meta);
  const authorizer = new ProjectAuthorizer(meta, config.auth.anonymousPull);
  // Where people's accounts live (auth.mode): a sign-in that changes a user drops what every replica caches of them.
  let identity: IdentitySources;
  try {
    identity = openIdentitySources(config, meta, log, (name) => {
      authorizer.forget(name);
      credentials.forget(name);
    }, sealer);
  } catch (err) {
    await store.close();
    await meta.close();
    throw err;
  }
  const passwords = new Authenticator(meta, {}, identity.external);
  // Refresh grants and sessions of directory users work while the directory still lists them.
  credentials.recheck = (user) => passwords.recheck(user, { client: 'system', via: 'refresh' });
  const registry = createRegistry(store, meta, deriveSecret(signingKey, 'upload session ids'), { auditPulls: config.audit.pulls, uploads: { resumableHash: meta.dialect === 'postgres' } });
  const metrics = createMetrics();
  const endpoints = new EndpointService({ registries: meta.registries, sealer, timeoutMs: config.proxy.timeout * 1000 });
  // Resource URLs in webhook payloads name the first external URL, else the address Berth listens on.
  let ownURL: string | undefined;
  const externalURL = () => config.externalURL[0] ?? ownURL;
  const webhookPolicies = new WebhookService({ webhooks: meta.webhooks, sealer, externalURL });
  const proxy = createProxyCache({
    meta,
    store,
    registry,
    log,
    metrics: createProxyMetrics(metrics.registry),
    endpoint: (id) => endpoints.endpointById(id),
    freshness: config.proxy.freshness,
    timeout: config.proxy.timeout,
    mirrors: config.proxy.mirrors,
    dataDir: config.dataDir,
  });
  // Pulls of names the transparent mirror serves are allowed as pulls from the mirroring project.
  const pullAuthorizer = proxy.mirrors.enabled ? new MirrorAuthorizer(authorizer, proxy.mirrors) : authorizer;
  const access = new OciAccess({ tokens, passwords, authorizer: pullAuthorizer, credentials, externalURLs: config.externalURL, anonymousPull: config.auth.anonymousPull });
  let draining = false;
  let started = false;
  const routes = [
    ...opsRoutes({ metrics, draining: () => draining, started: () => started, ready: async () => void (await sql`select 1`.execute(meta.db)) }),
    ...tokenRoutes({ tokens, passwords, authorizer: pullAuthorizer, credentials }),
    ...apiRoutes({
      meta, registry, store, passwords, authorizer, credentials, config, endpoints, webhookPolicies,
      onboarding: identity.onboarding,
      testIdentity: (username) => identity.test(username),
      ...(identity.oidcFlows ? { oidc: identity.oidcFlows } : {}),
      ...(identity.directoryGroups ? { directoryGroups: identity.directoryGroups } : {}),
    }),
    ...ociRoutes({ registry, access, authorizer: pullAuthorizer, maxManifestBytes: config.maxManifestBytes, tokenTTL: config.auth.tokenTTL, externalURLs: config.externalURL, blobRedirect: blobRedirector(config, store), proxy }),
    // Last: every path the others do not own is the portal's (BERTH_PORTAL_DIR: a build of one's own, for work on the portal).
    ...portalRoutes(process.env.BERTH_PORTAL_DIR || join(PACKAGE_ROOT, 'dist', 'ui')),
  ];

  const secure = Boolean(config.tls.cert);
  const handler = createHandler(routes, { log, metrics, secure, trustedProxies: new AddressSet(config.trustedProxies) });
  // No overall request timeout: a multi-gigabyte layer may take long; idle sockets still time out.
  const options = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 };
  let server: Server;
  let connections: { drain(): void };
  try {
    server = secure ? createHttpsServer({ ...options, cert: readTLS(config.tls.cert!, 'tls.cert'), key: readTLS(config.tls.key!, 'tls.key') }, handler) : createHttpServer(options, handler);
    connections = connectionDrainer(server, secure);
    const { host, port } = splitAddr(config.addr);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, config.addr)));
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
  } catch (err) {
    await store.close();
    await meta.close();
    throw err;
  }
  await bootstrapAdmin(meta, config, log);
  const { host } = splitAddr(config.addr);
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `${secure ? 'https' : 'http'}://${shownHost}:${bound}`;
  ownURL = url;
  log.info({ addr: `${host}:${bound}`, tls: secure, externalURL: config.externalURL, dataDir: config.dataDir }, 'berth listening');

  // Background work (upload expiry and the rest) runs as jobs, shared with the other replicas.
  const context = {
    uploads: registry.uploads,
    uploadTTL: config.uploads.ttl,
    jobs: meta.jobs,
    events: meta.events,
    store,
    blobReferences: blobReferencesOf(meta.blobs),
    meta,
    // Garbage collection runs in the job worker; its metrics are the server's (GET /metrics).
    gc: { grace: config.gc.grace, metrics: createGcMetrics(metrics.registry) },
    // Retention deletes through the API's artifact deletion (quota, events, immutability guard).
    retention: { meta, deleteArtifact: (repository: string, digest: string, actor: string) => registry.manifests.delete(repository, digest, actor) },
    // Replication executions: Berth's own registry services on one end, the rule's endpoint on the other.
    replication: {
      meta,
      registry,
      endpoints,
      settings: { timeoutMs: config.replication.timeout * 1000, chunkBytes: config.replication.chunkSize, maxAttempts: config.replication.maxAttempts, retryDelayMs: config.replication.retryDelay * 1000 },
    },
    webhookDeliveries: meta.webhooks,
    webhook: {
      webhooks: meta.webhooks,
      policies: webhookPolicies,
      timeoutMs: config.webhooks.timeout * 1000,
      maxAttempts: config.webhooks.maxAttempts,
      retryDelayMs: config.webhooks.retryDelay * 1000,
      concurrency: config.webhooks.concurrency,
    },
  };
  const jobs = await startJobs({ meta, log, config, kinds: builtinKinds, context }).catch(async (err: unknown) => {
    server.close();
    server.closeAllConnections();
    await store.close();
    await meta.close();
    throw err;
  });
  // The outbox's consumers, each read by one replica at a time: webhooks (deliveries then run as
  // jobs on any replica) and event-triggered replication.
  const enqueue = (job: NewJob) => jobs.queue.enqueue(job);
  const consume = (name: string, handler: EventHandler, sweepMs: number) =>
    startConsumer({ name, handler, sweepMs, events: meta.events, leases: meta.leases, owner: jobs.queue.replica, log, pollMs: config.events.pollInterval * 1000, leaseMs: config.events.lease * 1000 });
  const fanout = webhookFanout({ webhooks: meta.webhooks, projects: meta.projects, enqueue, externalURL: externalURL(), log });
  // Sweeps find retries that came due, and work a dead replica left, within a second or two.
  const consumers = [consume(WEBHOOKS_CONSUMER, fanout, 1000), consume(REPLICATION_CONSUMER, replicationEvents({ replication: meta.replication, enqueue, log }), 2000)];
  started = true;
  void identity.probe();

  return {
    url,
    port: bound,
    log,
    async close() {
      draining = true;
      await Promise.all(consumers.map((c) => c.stop()));
      fanout.close();
      const jobsStopped = jobs.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      connections.drain();
      const timer = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await closed;
      clearTimeout(timer);
      await jobsStopped;
      await proxy.close();
      await identity.close();
      await store.close();
      await meta.close();
      log.info('berth stopped');
    },
  };
}
