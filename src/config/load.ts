import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

import { configSchema, type Config } from './schema.ts';

/** A configuration problem, naming the field; Berth stops with it at start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Kind = 'string' | 'list' | 'boolean' | 'number';

/** Each environment variable and flag, and the config field it sets. One table, used by both. */
export const OVERRIDES: readonly { env: string; flag?: string; path: string; kind: Kind; help: string }[] = [
  { env: 'BERTH_ADDR', flag: 'addr', path: 'addr', kind: 'string', help: 'listen address host:port' },
  { env: 'BERTH_DATA_DIR', flag: 'dataDir', path: 'dataDir', kind: 'string', help: 'data directory' },
  { env: 'BERTH_EXTERNAL_URL', flag: 'externalUrl', path: 'externalURL', kind: 'list', help: 'external URL(s), comma-separated' },
  { env: 'BERTH_TRUSTED_PROXIES', flag: 'trustedProxies', path: 'trustedProxies', kind: 'list', help: 'addresses/CIDRs of proxies whose forwarded headers are trusted, comma-separated' },
  { env: 'BERTH_ADMIN_PASSWORD', path: 'adminPassword', kind: 'string', help: 'initial admin password' },
  { env: 'BERTH_LOG_LEVEL', flag: 'logLevel', path: 'log.level', kind: 'string', help: 'log level' },
  { env: 'BERTH_TOKEN_TTL', flag: 'tokenTtl', path: 'auth.tokenTTL', kind: 'string', help: 'access token lifetime' },
  { env: 'BERTH_REFRESH_TOKEN_TTL', path: 'auth.refreshTokenTTL', kind: 'string', help: 'refresh token lifetime' },
  { env: 'BERTH_ANONYMOUS_PULL', flag: 'anonymousPull', path: 'auth.anonymousPull', kind: 'boolean', help: 'allow pulls without credentials' },
  { env: 'BERTH_SERVICE', path: 'auth.service', kind: 'string', help: 'token service name' },
  { env: 'BERTH_TLS_CERT', flag: 'tlsCert', path: 'tls.cert', kind: 'string', help: 'TLS certificate (PEM) path' },
  { env: 'BERTH_TLS_KEY', flag: 'tlsKey', path: 'tls.key', kind: 'string', help: 'TLS private key (PEM) path' },
  { env: 'BERTH_PROJECT_USER_CREATION', path: 'projects.userCreation', kind: 'boolean', help: 'let any user create projects' },
  { env: 'BERTH_AUDIT_PULLS', path: 'audit.pulls', kind: 'boolean', help: 'record pulls in the audit log' },
  { env: 'BERTH_SESSION_TTL', path: 'api.sessionTTL', kind: 'string', help: 'API login session lifetime' },
  { env: 'BERTH_UPLOAD_TTL', path: 'uploads.ttl', kind: 'string', help: 'idle upload session lifetime' },
  { env: 'BERTH_MAX_MANIFEST_BYTES', path: 'maxManifestBytes', kind: 'number', help: 'largest manifest accepted' },
];

function convert(raw: string, kind: Kind, name: string): unknown {
  switch (kind) {
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
    case 'number':
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}: expected a whole number, got "${raw}"`);
      return Number(raw);
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys.at(-1)!] = value;
}

export interface LoadOptions {
  /** Path of a YAML file; `BERTH_CONFIG` when absent. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line values keyed by the `flag` names of OVERRIDES. */
  flags?: Record<string, string | boolean | undefined>;
}

/**
 * Builds the configuration: YAML file, then environment, then flags, validated once.
 * Throws `ConfigError` naming the offending field.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.BERTH_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    try {
      raw = (parseYaml(text) as Record<string, unknown> | null) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${file}: not valid YAML: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`config file ${file}: must be a YAML mapping`);
  }
  for (const key of ['externalURL', 'trustedProxies'] as const) {
    if (typeof raw[key] === 'string') raw[key] = convert(raw[key], 'list', key);
  }
  for (const o of OVERRIDES) {
    const fromEnv = env[o.env];
    if (fromEnv !== undefined && fromEnv !== '') setPath(raw, o.path, convert(fromEnv, o.kind, o.env));
    const fromFlag = o.flag ? options.flags?.[o.flag] : undefined;
    if (fromFlag !== undefined) setPath(raw, o.path, typeof fromFlag === 'boolean' ? fromFlag : convert(fromFlag, o.kind, `--${o.flag}`));
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

