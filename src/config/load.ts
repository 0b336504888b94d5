import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

import { configSchema, type Config } from './schema.ts';
import { ConfigError, OVERRIDES, type Kind } from './overrides.ts';

export { ConfigError, OVERRIDES };

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
    const lines = result.error.issues.flatMap((issue) => {
      const at = issue.path.map(String);
      if (issue.code !== 'unrecognized_keys') return [`${at.join('.') || '(root)'}: ${issue.message}`];
      return issue.keys.map((key) => `${[...at, key].join('.')}: unknown setting${suggestion(at, key)}`);
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return result.data;
}

/** ` (did you mean "tokenTTL"?)` when a known setting of that section differs from `key` only in case or separators. */
function suggestion(section: string[], key: string): string {
  let shape: Record<string, unknown> | undefined = configSchema.shape as Record<string, unknown>;
  for (const name of section) {
    const inner = unwrap(shape?.[name]);
    shape = inner && 'shape' in inner ? (inner.shape as Record<string, unknown>) : undefined;
  }
  const simple = (text: string) => text.toLowerCase().replace(/[-_]/g, '');
  const match = Object.keys(shape ?? {}).find((known) => simple(known) === simple(key));
  return match ? ` (did you mean "${[...section, match].join('.')}"?)` : '';
}

/** The object schema inside defaults, prefaults and refinements. */
function unwrap(schema: unknown): { shape?: unknown } | undefined {
  let node = schema as { def?: { innerType?: unknown; in?: unknown }; shape?: unknown } | undefined;
  for (let i = 0; node && !('shape' in node) && i < 5; i++) node = (node.def?.innerType ?? node.def?.in) as typeof node;
  return node;
}

