/**
 * nginx lines: the `combined` access format, Harbor's `timed_combined` (combined plus
 * `$request_time $upstream_response_time $pipe`), and the error log. CNCF Distribution also writes
 * combined-format access lines of its own; the dispatcher re-labels those as the registry's.
 */
import type { LogEvent } from './event.ts';

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

const Q = '"((?:[^"\\\\]|\\\\.)*)"';
const ACCESS_RE = new RegExp(
  `^(\\S+) - (\\S+) \\[([^\\]]+)\\] ${Q} (\\d{3}) (\\d+|-) ${Q} ${Q}(?: (\\S+) ((?:[\\d.]+|-)(?:, (?:[\\d.]+|-))*) ([.p]))?\\s*$`,
);

/** `29/Nov/2026:01:36:49 +0000` → epoch ms and the zone offset in minutes. */
export function parseTimeLocal(s: string): { time: number; offsetMinutes: number } {
  const m = /^(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? ([+-])(\d{2})(\d{2})$/.exec(s);
  if (!m) return { time: NaN, offsetMinutes: 0 };
  const offsetMinutes = (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  const ms = m[7] ? Number(m[7].padEnd(3, '0').slice(0, 3)) : 0;
  const utc = Date.UTC(Number(m[3]), MONTHS[m[2]!] ?? 0, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  return { time: utc - offsetMinutes * 60_000, offsetMinutes };
}

/** Parses an nginx (or Distribution) combined / timed_combined access line. */
export function parseNginxAccess(text: string, ctx: { offsetMinutes: number }): Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'> | undefined {
  const m = ACCESS_RE.exec(text);
  if (!m) return undefined;
  const request = m[4]!.split(' ');
  if (request.length < 2) return undefined;
  const [method, target] = request as [string, string];
  const { time, offsetMinutes } = parseTimeLocal(m[3]!);
  ctx.offsetMinutes = offsetMinutes;
  const q = target.indexOf('?');
  const remoteUser = m[2] === '-' ? undefined : m[2];
  const requestTime = m[9] !== undefined ? Number(m[9]) : undefined;
  return {
    format: m[9] !== undefined ? 'nginx-timed' : 'nginx-combined',
    time,
    method,
    path: q >= 0 ? target.slice(0, q) : target,
    query: q >= 0 ? target.slice(q + 1) : undefined,
    status: Number(m[5]),
    durationMs: requestTime !== undefined && Number.isFinite(requestTime) ? requestTime * 1000 : undefined,
    client: m[1],
    userAgent: m[8] === '-' || m[8] === '' ? undefined : m[8]!.replace(/\\(.)/g, '$1'),
    // nginx fills $remote_user from any Basic Authorization header, whoever checks it.
    auth: remoteUser ? 'basic' : 'unknown',
    user: remoteUser,
  };
}

const ERROR_RE = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$/;

/**
 * Parses an nginx error-log line. Its time has no zone: the offset of the last access line read is
 * used (same server, same clock).
 */
export function parseNginxError(text: string, ctx: { offsetMinutes: number }): Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'> | undefined {
  const m = ERROR_RE.exec(text);
  if (!m) return undefined;
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  const body = m[8]!;
  const field = (name: string) => new RegExp(`, ${name}: "?([^",]*)"?`).exec(body)?.[1];
  const request = /, request: "(\S+) (\S+)(?: [^"]*)?"/.exec(body);
  const target = request?.[2];
  const q = target?.indexOf('?') ?? -1;
  const big = /client intended to send too large (?:chunked )?body: (\d+) bytes/.exec(body);
  return {
    format: 'nginx-error',
    time: utc - ctx.offsetMinutes * 60_000,
    level: m[7],
    message: body.split(', client: ')[0],
    method: request?.[1],
    path: target === undefined ? undefined : q >= 0 ? target.slice(0, q) : target,
    query: target !== undefined && q >= 0 ? target.slice(q + 1) : undefined,
    client: field('client'),
    host: field('host'),
    auth: 'unknown',
    bodyBytes: big ? Number(big[1]) : undefined,
  };
}
