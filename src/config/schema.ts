import { z } from 'zod';
import { parseCidr } from '../domain/cidr.ts';

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
      })
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
    /** Largest manifest accepted, bytes. */
    maxManifestBytes: z.number().int().positive().default(4 * 1024 * 1024),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
