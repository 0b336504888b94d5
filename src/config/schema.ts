import { z } from 'zod';
import { parseCidr } from '../domain/cidr.ts';
import { parseSecretsKey } from '../auth/sealed.ts';
import { ldapSchema, oidcSchema } from './identity.ts';

const duration = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m|h|d)?$/, 'a duration such as 900, 15m, 1h or 7d')])
  .transform((value) => (typeof value === 'number' ? value : parseDuration(value)));

/** Parses `15m`-style durations into seconds (plain numbers are seconds). */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)!;
  const n = Number(match[1]);
  const unit = match[2] ?? 's';
  const seconds = { ms: n / 1000, s: n, m: n * 60, h: n * 3600, d: n * 86400 }[unit]!;
  return seconds;
}

/** The URL, or undefined when `text` is not one (URL's constructor throws a TypeError). */
function parseURL(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

const externalURL = z
  .string()
  .refine((u) => parseURL(u) !== undefined, 'must be a URL such as https://registry.example.com (with the scheme)')
  .refine((u) => { const p = parseURL(u); return !p || /^https?:$/.test(p.protocol); }, 'must start with http:// or https://')
  .refine((u) => { const p = parseURL(u); return !p || ((p.pathname === '/' || p.pathname === '') && !p.search && !p.hash); }, 'must be scheme://host[:port] with no path')
  .transform((u) => parseURL(u)?.origin ?? u);

/** An IPv4/IPv6 address or CIDR block, e.g. `10.0.0.0/8`, `127.0.0.1`, `fd00::/8`. */
const addressOrCidr = z.string().refine((value) => parseCidr(value) !== undefined, 'an IP address or CIDR block such as 10.0.0.0/8');

/** Every configuration option of Berth, with its default. The README's configuration table mirrors it. */
export const configSchema = z
  .object({
    /** Address to listen on, host:port. */
    addr: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$/, 'host:port, e.g. 0.0.0.0:5000')
      .refine((a) => !(Number(a.slice(a.lastIndexOf(':') + 1)) > 65535), 'port must be at most 65535')
      .default('0.0.0.0:5000'),
    /** Where SQLite, blobs, upload sessions and the signing key live. */
    dataDir: z.string().min(1).default('./data'),
    /** The URL(s) clients use to reach Berth; the token realm is built from them. */
    externalURL: z.array(externalURL).default([]),
    /**
     * Proxies whose `Forwarded` / `X-Forwarded-*` headers are believed (client address, scheme, host).
     * Headers from anyone else are logged but ignored.
     */
    trustedProxies: z.array(addressOrCidr).default([]),
    /** Password for the `admin` user created on first start; generated and printed once if unset. */
    adminPassword: z.string().min(8, 'at least 8 characters').optional(),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** `json`: one JSON object a line (for log collectors); `pretty`: readable lines; `auto`: pretty when stdout is a terminal. */
        format: z.enum(['json', 'pretty', 'auto']).default('auto'),
      })
      .prefault({}),
    auth: z
      .strictObject({
        /** Lifetime of access tokens, seconds or e.g. `30m`. */
        tokenTTL: duration.default(1800),
        /** Lifetime of OAuth2 refresh tokens. */
        refreshTokenTTL: duration.default(30 * 86400),
        /** Whether clients without credentials may pull. */
        anonymousPull: z.boolean().default(false),
        /** The `service` name in challenges and the token audience. */
        service: z.string().min(1).default('berth'),
        /** The token issuer claim. */
        issuer: z.string().min(1).default('berth'),
        /**
         * A PEM private key (Ed25519, ECDSA P-256 or RSA) every replica signs tokens with. Unset: the key
         * under `dataDir/keys` on SQLite; on PostgreSQL the key kept in the database (created once by the
         * first replica that starts, then shared).
         */
        signingKey: z.string().min(1).optional(),
        /**
         * Where people's accounts live: `local` (Berth's own users), `ldap` (a directory) or `oidc`
         * (an OpenID provider). Local users (the `admin` account among them) and robots keep
         * working beside either.
         */
        mode: z.enum(['local', 'ldap', 'oidc']).default('local'),
        ldap: ldapSchema(duration).optional(),
        oidc: oidcSchema(duration).optional(),
      })
      .refine((a) => a.mode !== 'ldap' || a.ldap !== undefined, { message: 'auth.mode ldap needs the auth.ldap section (url, baseDN…)', path: ['ldap'] })
      .refine((a) => a.mode !== 'oidc' || a.oidc !== undefined, { message: 'auth.mode oidc needs the auth.oidc section (issuer, clientId…)', path: ['oidc'] })
      .prefault({}),
    tls: z
      .strictObject({ cert: z.string().min(1).optional(), key: z.string().min(1).optional() })
      .refine((t) => Boolean(t.cert) === Boolean(t.key), 'tls.cert and tls.key must be given together')
      .prefault({}),
    uploads: z
      .strictObject({
        /** Upload sessions untouched this long are removed. */
        ttl: duration.default(7 * 86400),
      })
      .prefault({}),
    projects: z
      .strictObject({
        /** Whether any signed-in user may create projects (otherwise system administrators only). */
        userCreation: z.boolean().default(false),
      })
      .prefault({}),
    audit: z
      .strictObject({
        /** Also record every manifest pull (pushes, deletes, logins and changes are always recorded). */
        pulls: z.boolean().default(false),
      })
      .prefault({}),
    api: z
      .strictObject({
        /** Lifetime of a management API login session (the web portal's cookie). */
        sessionTTL: duration.default(12 * 3600),
      })
      .prefault({}),
    database: z
      .strictObject({
        /**
         * `postgres://user:password@host:port/database` (libpq URL parameters such as `sslmode` and
         * `sslrootcert` work). Unset: SQLite at `dataDir/berth.db`.
         */
        url: z
          .string()
          .refine((u) => /^postgres(ql)?:$/.test(parseURL(u)?.protocol ?? ''), 'must be a postgres:// URL, e.g. postgres://berth:secret@db.example.com:5432/berth')
          .optional(),
        /** Connections each replica keeps open to PostgreSQL. */
        poolSize: z.number().int().min(1).max(1000).default(10),
        /** TLS to PostgreSQL beyond the URL's `sslmode`: PEM paths, and whether to verify the server. */
        tls: z
          .strictObject({
            ca: z.string().min(1).optional(),
            cert: z.string().min(1).optional(),
            key: z.string().min(1).optional(),
            /** Verify the server's certificate against `ca` (or the system's CAs). */
            verify: z.boolean().default(true),
          })
          .optional(),
      })
      .prefault({}),
    storage: z
      .strictObject({
        /** S3-compatible object storage (AWS S3, MinIO, Ceph RGW…). Unset: the filesystem under `dataDir/storage`. */
        s3: z
          .strictObject({
            /** Unset for AWS itself; e.g. `https://minio.example.com:9000`. */
            endpoint: z.string().refine((u) => /^https?:$/.test(parseURL(u)?.protocol ?? ''), 'must be an http:// or https:// URL').optional(),
            region: z.string().min(1).default('us-east-1'),
            bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens'),
            /** Key prefix inside the bucket, e.g. `berth/` (lets several registries share one bucket). */
            prefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/, 'path segments each ending in /, e.g. berth/ or site-a/berth/').default(''),
            /** Static credentials; unset: the AWS SDK's default chain (environment, profile, instance role). */
            accessKeyId: z.string().min(1).optional(),
            secretAccessKey: z.string().min(1).optional(),
            /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, Ceph and most self-hosted servers need it). */
            forcePathStyle: z.boolean().default(false),
            /** Multipart part size, bytes (S3's minimum is 5 MiB; 10,000 parts make the largest layer 10,000 × this). */
            partSize: z.number().int().min(5 * 1024 * 1024).max(5 * 1024 * 1024 * 1024).default(16 * 1024 * 1024),
            /** Attempts per S3 request (retried with backoff and jitter on throttling and 5xx). */
            maxAttempts: z.number().int().min(1).max(20).default(8),
          })
          .refine((s) => Boolean(s.accessKeyId) === Boolean(s.secretAccessKey), 'storage.s3.accessKeyId and storage.s3.secretAccessKey must be given together')
          .optional(),
        /** Answer blob GETs with a redirect to a pre-signed S3 URL (off: many proxies and clients mishandle it). */
        redirect: z.boolean().default(false),
      })
      .refine((s) => !s.redirect || s.s3 !== undefined, 'storage.redirect needs storage.s3 (the filesystem cannot pre-sign URLs)')
      .prefault({}),
    jobs: z
      .strictObject({
        /** Jobs one replica runs at once. 0: this replica runs no background jobs (others do). */
        concurrency: z.number().int().min(0).max(64).default(4),
        /** How often an idle replica looks for due jobs (PostgreSQL also wakes it at once through LISTEN/NOTIFY). */
        pollInterval: duration.default(5),
        /** How long a claimed job stays a replica's without a heartbeat before another replica takes it over. */
        lease: duration.default(60),
      })
      .prefault({}),
    events: z
      .strictObject({
        /** How often the replica holding an outbox consumer (webhooks, event-based replication) looks for new events. */
        pollInterval: duration.default(0.2),
        /** How long a consumer's lease lasts unrenewed before another replica takes the consumer over. */
        lease: duration.default(15),
      })
      .prefault({}),
    webhooks: z
      .strictObject({
        /** How long a receiver has to answer one delivery. */
        timeout: duration.default(10),
        /** Attempts of one delivery before it is marked failed. */
        maxAttempts: z.number().int().min(1).max(50).default(8),
        /** The wait before the first retry; it doubles with each attempt, at most 1 h. */
        retryDelay: duration.default(10),
        /** Deliveries to one webhook in flight at once. */
        concurrency: z.number().int().min(1).max(64).default(8),
      })
      .prefault({}),
    replication: z
      .strictObject({
        /** How long a peer registry may stay silent during one request. */
        timeout: duration.default(60),
        /** Blobs larger than this are pushed in chunks of this size (a broken transfer resumes from the last chunk). */
        chunkSize: z.number().int().min(65_536).default(16 * 1024 * 1024),
        /** Attempts of one artifact within an execution before its task is marked failed. */
        maxAttempts: z.number().int().min(1).max(20).default(3),
        /** The wait before an artifact's second attempt; it doubles with each attempt. */
        retryDelay: duration.default(2),
      })
      .prefault({}),
    gc: z
      .strictObject({
        /**
         * Garbage collection's grace period, seconds or e.g. `2h`: blobs unreferenced for less than
         * this, upload storage and orphaned objects written less than this ago, and untagged
         * manifests pushed less than this ago are never deleted. 0 is allowed (tests, emergencies).
         */
        grace: z
          .union([z.number().int().min(0), z.string().regex(/^\d+(ms|s|m|h|d)?$/, 'a duration such as 0, 900, 30m or 2h')])
          .transform((value) => (typeof value === 'number' ? value : parseDuration(value)))
          .default(7200),
      })
      .prefault({}),
    secrets: z
      .strictObject({
        /**
         * The key that seals secrets at rest (registry endpoint credentials): 32 bytes as 64 hex
         * digits or base64 (`openssl rand -hex 32`). Unset: derived from the token signing key.
         */
        key: z.string().refine((k) => parseSecretsKey(k) !== undefined, '32 bytes as 64 hex digits or base64, e.g. the output of openssl rand -hex 32').optional(),
      })
      .prefault({}),
    proxy: z
      .strictObject({
        /** How long a proxy-cache project serves a cached tag before asking its upstream again (per project: --freshness). */
        freshness: z
          .union([z.number().int().min(0), z.string().regex(/^\d+(ms|s|m|h|d)?$/, 'a duration such as 0, 300, 5m or 1h')])
          .transform((value) => (typeof value === 'number' ? value : parseDuration(value)))
          .default(300),
        /** How long to wait for an upstream registry to connect and answer (then a cached copy is served, if any). */
        timeout: duration.default(30),
        /**
         * Upstream hosts mirrored transparently by proxy-cache projects, e.g. `{docker.io: hub}`:
         * Docker's `registry-mirrors` and containerd's `hosts.toml` mirrors then pull `alpine` through
         * project `hub`. Also `docker.io=hub,ghcr.io=ghcr` (BERTH_PROXY_MIRRORS).
         */
        mirrors: z
          .union([
            z.record(z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, 'a registry host such as docker.io or ghcr.io'), z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'a project name')),
            z.array(z.string().regex(/^[a-z0-9.-]+(:\d+)?=[a-z0-9][a-z0-9._-]*$/, 'host=project, e.g. docker.io=hub')),
          ])
          .transform((value) => (Array.isArray(value) ? Object.fromEntries(value.map((pair) => pair.split('=') as [string, string])) : value))
          .default({}),
      })
      .prefault({}),
    /** Largest manifest accepted, bytes. */
    maxManifestBytes: z.number().int().positive().default(4 * 1024 * 1024),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
