// The configuration's environment variables and flags, and its error type: kept apart from the
// loader (zod, yaml) so the CLI can define its options without loading either.

/** A configuration problem, naming the field; Berth stops with it at start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Kind = 'string' | 'list' | 'boolean' | 'number';

/** Each environment variable and flag, and the config field it sets. One table, used by both. */
export const OVERRIDES: readonly { env: string; flag?: string; path: string; kind: Kind; help: string }[] = [
  { env: 'BERTH_ADDR', flag: 'addr', path: 'addr', kind: 'string', help: 'listen address host:port' },
  { env: 'BERTH_DATA_DIR', flag: 'dataDir', path: 'dataDir', kind: 'string', help: 'data directory' },
  { env: 'BERTH_EXTERNAL_URL', flag: 'externalUrl', path: 'externalURL', kind: 'list', help: 'external URL(s), comma-separated' },
  { env: 'BERTH_TRUSTED_PROXIES', flag: 'trustedProxies', path: 'trustedProxies', kind: 'list', help: 'addresses/CIDRs of proxies whose forwarded headers are trusted, comma-separated' },
  { env: 'BERTH_ADMIN_PASSWORD', path: 'adminPassword', kind: 'string', help: 'initial admin password' },
  { env: 'BERTH_LOG_LEVEL', flag: 'logLevel', path: 'log.level', kind: 'string', help: 'log level' },
  { env: 'BERTH_LOG_FORMAT', flag: 'logFormat', path: 'log.format', kind: 'string', help: 'log format: json, pretty or auto (pretty on a terminal)' },
  { env: 'BERTH_TOKEN_TTL', flag: 'tokenTtl', path: 'auth.tokenTTL', kind: 'string', help: 'access token lifetime' },
  { env: 'BERTH_REFRESH_TOKEN_TTL', path: 'auth.refreshTokenTTL', kind: 'string', help: 'refresh token lifetime' },
  { env: 'BERTH_ANONYMOUS_PULL', flag: 'anonymousPull', path: 'auth.anonymousPull', kind: 'boolean', help: 'allow pulls without credentials' },
  { env: 'BERTH_AUTH_MODE', path: 'auth.mode', kind: 'string', help: 'where accounts live: local, ldap or oidc' },
  { env: 'BERTH_LDAP_BIND_PASSWORD', path: 'auth.ldap.bindPassword', kind: 'string', help: "the LDAP service account's password" },
  { env: 'BERTH_OIDC_CLIENT_SECRET', path: 'auth.oidc.clientSecret', kind: 'string', help: "the OpenID Connect client's secret" },
  { env: 'BERTH_SERVICE', path: 'auth.service', kind: 'string', help: 'token service name' },
  { env: 'BERTH_TLS_CERT', flag: 'tlsCert', path: 'tls.cert', kind: 'string', help: 'TLS certificate (PEM) path' },
  { env: 'BERTH_TLS_KEY', flag: 'tlsKey', path: 'tls.key', kind: 'string', help: 'TLS private key (PEM) path' },
  { env: 'BERTH_PROJECT_USER_CREATION', path: 'projects.userCreation', kind: 'boolean', help: 'let any user create projects' },
  { env: 'BERTH_AUDIT_PULLS', path: 'audit.pulls', kind: 'boolean', help: 'record pulls in the audit log' },
  { env: 'BERTH_SESSION_TTL', path: 'api.sessionTTL', kind: 'string', help: 'API login session lifetime' },
  { env: 'BERTH_UPLOAD_TTL', path: 'uploads.ttl', kind: 'string', help: 'idle upload session lifetime' },
  { env: 'BERTH_DATABASE_URL', flag: 'databaseUrl', path: 'database.url', kind: 'string', help: 'PostgreSQL URL (unset: SQLite in the data directory)' },
  { env: 'BERTH_DATABASE_POOL_SIZE', path: 'database.poolSize', kind: 'number', help: 'PostgreSQL connections per replica' },
  { env: 'BERTH_S3_ENDPOINT', path: 'storage.s3.endpoint', kind: 'string', help: 'S3 endpoint URL (unset: AWS)' },
  { env: 'BERTH_S3_REGION', path: 'storage.s3.region', kind: 'string', help: 'S3 region' },
  { env: 'BERTH_S3_BUCKET', path: 'storage.s3.bucket', kind: 'string', help: 'S3 bucket (set: blobs in S3 instead of the data directory)' },
  { env: 'BERTH_S3_PREFIX', path: 'storage.s3.prefix', kind: 'string', help: 'key prefix in the bucket' },
  { env: 'BERTH_S3_ACCESS_KEY_ID', path: 'storage.s3.accessKeyId', kind: 'string', help: 'S3 access key id (unset: the AWS default chain)' },
  { env: 'BERTH_S3_SECRET_ACCESS_KEY', path: 'storage.s3.secretAccessKey', kind: 'string', help: 'S3 secret access key' },
  { env: 'BERTH_S3_FORCE_PATH_STYLE', path: 'storage.s3.forcePathStyle', kind: 'boolean', help: 'path-style S3 URLs' },
  { env: 'BERTH_S3_PART_SIZE', path: 'storage.s3.partSize', kind: 'number', help: 'S3 multipart part size, bytes' },
  { env: 'BERTH_STORAGE_REDIRECT', path: 'storage.redirect', kind: 'boolean', help: 'redirect blob GETs to pre-signed S3 URLs' },
  { env: 'BERTH_SIGNING_KEY', path: 'auth.signingKey', kind: 'string', help: 'token signing key (PEM file) shared by every replica' },
  { env: 'BERTH_JOBS_CONCURRENCY', path: 'jobs.concurrency', kind: 'number', help: 'background jobs this replica runs at once (0: none)' },
  { env: 'BERTH_JOBS_LEASE', path: 'jobs.lease', kind: 'string', help: "how long a job's claim lasts unrenewed before another replica takes it over (e.g. 60s)" },
  { env: 'BERTH_GC_GRACE', path: 'gc.grace', kind: 'string', help: 'garbage collection grace period: younger unreferenced content is kept (e.g. 2h; 0: none)' },
  { env: 'BERTH_SECRETS_KEY', path: 'secrets.key', kind: 'string', help: 'key sealing secrets at rest, 64 hex digits (unset: derived from the signing key)' },
  { env: 'BERTH_PROXY_FRESHNESS', path: 'proxy.freshness', kind: 'string', help: 'how long proxy-cache projects serve a cached tag before asking the upstream again (e.g. 5m)' },
  { env: 'BERTH_PROXY_TIMEOUT', path: 'proxy.timeout', kind: 'string', help: 'how long to wait for an upstream registry to answer (e.g. 30s)' },
  { env: 'BERTH_PROXY_MIRRORS', path: 'proxy.mirrors', kind: 'list', help: 'upstream hosts mirrored by proxy-cache projects, e.g. docker.io=hub,ghcr.io=ghcr' },
  { env: 'BERTH_EVENTS_POLL_INTERVAL', path: 'events.pollInterval', kind: 'string', help: 'how often webhook and replication consumers look for new events (e.g. 200ms)' },
  { env: 'BERTH_EVENTS_LEASE', path: 'events.lease', kind: 'string', help: "how long an event consumer's lease lasts unrenewed before another replica takes it over (e.g. 15s)" },
  { env: 'BERTH_WEBHOOKS_TIMEOUT', path: 'webhooks.timeout', kind: 'string', help: 'how long a webhook receiver has to answer (e.g. 10s)' },
  { env: 'BERTH_WEBHOOKS_MAX_ATTEMPTS', path: 'webhooks.maxAttempts', kind: 'number', help: 'attempts of one webhook delivery before it is marked failed' },
  { env: 'BERTH_WEBHOOKS_RETRY_DELAY', path: 'webhooks.retryDelay', kind: 'string', help: 'wait before the first webhook retry, doubling (e.g. 10s)' },
  { env: 'BERTH_REPLICATION_TIMEOUT', path: 'replication.timeout', kind: 'string', help: 'how long a peer registry may stay silent during one request (e.g. 60s)' },
  { env: 'BERTH_REPLICATION_MAX_ATTEMPTS', path: 'replication.maxAttempts', kind: 'number', help: 'attempts of one artifact within a replication execution' },
  { env: 'BERTH_MAX_MANIFEST_BYTES', path: 'maxManifestBytes', kind: 'number', help: 'largest manifest accepted' },
];

