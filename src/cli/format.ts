// Parsing and printing the values the management commands show people: sizes, times, durations.
import { parseSize } from '../diagnose/doctor/size.ts';
import { CliError } from './output.ts';

/**
 * A quota as typed: `10GiB`, `500MB`, `1073741824`, or `unlimited` / `none` (null: no limit).
 * `flag` names the option in the error, so `--quota 10 GB` says which value was wrong.
 */
export function parseQuota(text: string, flag = '--quota'): number | null {
  if (/^(unlimited|none|-1)$/i.test(text.trim())) return null;
  try {
    return parseSize(text);
  } catch (err) {
    throw new CliError(`${flag}: ${(err as Error).message}, or "unlimited"`);
  }
}

/** 10737418240 → `10 GiB`, 1536 → `1.5 KiB`, 12 → `12 B`: one decimal at most, for tables. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '-';
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 'B';
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  const rounded = value >= 100 ? Math.round(value).toString() : value.toFixed(1).replace(/\.0$/, '');
  return `${rounded} ${unit}`;
}

/** A quota for display: `10 GiB`, or `unlimited` when null. */
export function formatQuota(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? 'unlimited' : formatBytes(bytes);
}

/** `1.2 GiB of 10 GiB (12%)`, or just the usage when there is no quota. */
export function formatUsage(usage: number | undefined, quota: number | null | undefined): string {
  if (usage === undefined) return '-';
  if (quota === null || quota === undefined) return `${formatBytes(usage)} (no quota)`;
  const percent = quota > 0 ? (usage / quota) * 100 : 100;
  const shown = percent > 0 && percent < 0.1 ? '<0.1' : percent < 10 ? percent.toFixed(1).replace(/\.0$/, '') : Math.round(percent).toString();
  return `${formatBytes(usage)} of ${formatBytes(quota)} (${shown}%)`;
}

/**
 * A time from the API (ISO string or milliseconds) as `2025-06-01 14:03:22Z` — seconds, UTC,
 * no milliseconds — or `-` / `never` when absent.
 */
export function formatTime(value: string | number | null | undefined, absent = '-'): string {
  if (value === null || value === undefined || value === '') return absent;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

const DURATION_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * `--since` / `--until` as typed: a duration back from `now` (`90s`, `30m`, `24h`, `7d`, `2w`) or a date/time
 * (`2025-06-01`, `2025-06-01T12:00:00Z`). Returns an ISO time for the API.
 */
export function parseSince(text: string, flag = '--since', now: number = Date.now()): string {
  const duration = /^(\d+)\s*([smhdw])$/i.exec(text.trim());
  if (duration) return new Date(now - Number(duration[1]) * DURATION_UNITS[duration[2]!.toLowerCase()]!).toISOString();
  const time = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim()) && !Number.isNaN(time)) return new Date(time).toISOString();
  throw new CliError(`${flag}: "${text}" is neither a duration (30m, 24h, 7d) nor a date (2025-06-01, 2025-06-01T12:00:00Z)`);
}

/** A whole number option (`--expires-days`, `--limit`), checked against a lower bound. */
export function parseInteger(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    throw new CliError(`${flag}: a whole number of at least ${min}, not "${text}"`);
  }
  return value;
}

/** `sha256:0123456789abcdef…` → `sha256:0123456789ab`, so digests fit a table column. */
export function shortDigest(digest: string): string {
  const match = /^([a-z0-9]+):([0-9a-f]{12})[0-9a-f]+$/.exec(digest);
  return match ? `${match[1]}:${match[2]}` : digest;
}

/** Prints `value` as indented JSON, the output of every `--json`. */
export function printJSON(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Prints `label: value` lines with the values aligned, for `show` commands. */
export function printFields(fields: [string, string][]): void {
  const width = Math.max(...fields.map(([label]) => label.length)) + 1;
  for (const [label, value] of fields) console.log(`${`${label}:`.padEnd(width)} ${value}`);
}
