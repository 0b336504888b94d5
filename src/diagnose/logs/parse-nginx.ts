/**
 * nginx lines: the `combined` access format, `timed_combined` (combined plus
 * `$request_time $upstream_response_time $pipe`), the format Harbor's bundled nginx declares under
 * that name (no `$remote_user`, no time at all), and the error log. CNCF Distribution also writes
 * combined-format access lines of its own; the dispatcher re-labels those as the registry's.
 */
import type { LogEvent } from './event.ts';

type Parsed = Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'>;

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

const Q = '"((?:[^"\\\\]|\\\\.)*)"';
/** `$upstream_response_time`: one value per upstream tried, `, ` between servers, ` : ` across internal redirects. */
const UPSTREAM_TIMES = '((?:[\\d.]+|-)(?:(?:, | : )(?:[\\d.]+|-))*)';
const ACCESS_RE = new RegExp(
  `^(\\S+) - (\\S+) \\[([^\\]]+)\\] ${Q} (\\d{3}) (\\d+|-) ${Q} ${Q}(?: (\\S+) ${UPSTREAM_TIMES} ([.p]))?\\s*$`,
);
/**
 * Harbor's `timed_combined`: `$remote_addr - "$request" $status $body_bytes_sent "$http_referer"
 * "$http_user_agent" $request_time $upstream_response_time $pipe` — no user, no time.
 */
const HARBOR_RE = new RegExp(`^(\\S+) - ${Q} (\\d{3}) (\\d+|-) ${Q} ${Q}(?: (\\S+) ${UPSTREAM_TIMES} ([.p]))?\\s*$`);

/** Undoes nginx's escaping of logged strings (`\x22`, `\x5C`, and a backslash before any other character). */
function unescape(s: string): string {
  return s.replace(/\\x([0-9A-Fa-f]{2})|\\(.)/g, (_, hex: string | undefined, ch: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : ch!));
}

/** The fields both access formats share, from `$request`, `$status`, the user agent and `$request_time`. */
function accessFields(requestLine: string, status: string, userAgent: string, requestTime: string | undefined) {
  const request = unescape(requestLine).split(' ');
  if (request.length < 2) return undefined;
  const [method, target] = request as [string, string];
  const q = target.indexOf('?');
  const seconds = requestTime !== undefined ? Number(requestTime) : undefined;
  return {
    method,
    path: q >= 0 ? target.slice(0, q) : target,
    query: q >= 0 ? target.slice(q + 1) : undefined,
    status: Number(status),
    durationMs: seconds !== undefined && Number.isFinite(seconds) ? seconds * 1000 : undefined,
    userAgent: userAgent === '-' || userAgent === '' ? undefined : unescape(userAgent),
  };
}

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
export function parseNginxAccess(text: string, ctx: { offsetMinutes: number }): Parsed | undefined {
  const m = ACCESS_RE.exec(text);
  if (!m) return undefined;
  const fields = accessFields(m[4]!, m[5]!, m[8]!, m[9]);
  if (!fields) return undefined;
  const { time, offsetMinutes } = parseTimeLocal(m[3]!);
  ctx.offsetMinutes = offsetMinutes;
  const remoteUser = m[2] === '-' ? undefined : m[2];
  return {
    format: m[9] !== undefined ? 'nginx-timed' : 'nginx-combined',
    time,
    ...fields,
    client: m[1],
    // nginx fills $remote_user from any Basic Authorization header, whoever checks it.
    auth: remoteUser ? 'basic' : 'unknown',
    user: remoteUser,
  };
}

/**
 * Parses a line of Harbor's bundled nginx (its `timed_combined`). The line has no time: `time` is
 * NaN and the dispatcher lends it the time of a neighbouring line. Distribution never writes this
 * shape, so it is always the proxy's.
 */
export function parseHarborNginx(text: string): Parsed | undefined {
  const m = HARBOR_RE.exec(text);
  if (!m) return undefined;
  const fields = accessFields(m[2]!, m[3]!, m[6]!, m[7]);
  if (!fields) return undefined;
  return { format: 'nginx-harbor', time: NaN, ...fields, client: m[1], auth: 'unknown' };
}

const ERROR_RE = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$/;

/**
 * Parses an nginx error-log line. Its time has no zone: the offset of the last access line read is
 * used (same server, same clock).
 */
export function parseNginxError(text: string, ctx: { offsetMinutes: number }): Parsed | undefined {
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
