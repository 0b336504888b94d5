/**
 * CNCF Distribution (and Harbor's registry, which is Distribution) logs through logrus, as text
 * (`time="…" level=info msg="…" key=value…`) or JSON; Harbor's core writes
 * `2024-05-01T10:00:00Z [INFO] [/file.go:12]: message`. All become LogEvents here.
 */
import type { AuthSeen, LogEvent } from './event.ts';

type Parsed = Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'> & { requestId?: string };

/** Splits logrus text output into its key=value fields (values may be quoted with Go escapes). */
export function logrusFields(text: string): Record<string, string> | undefined {
  const fields: Record<string, string> = {};
  const re = /([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)\s*/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    const v = m[2]!;
    fields[m[1]!] = v.startsWith('"') ? unquote(v) : v;
  }
  if (re.lastIndex !== 0 && re.lastIndex < text.length) return undefined;
  return 'time' in fields && 'level' in fields ? fields : undefined;
}

function unquote(v: string): string {
  try {
    return JSON.parse(v) as string;
  } catch {
    return v.slice(1, -1);
  }
}

/**
 * How Distribution's message tells what credentials reached it. Its token check says
 * "authorization token required" when no Bearer header arrived; its htpasswd check says "invalid
 * authorization credential" when no (readable) Basic header arrived, and "authentication failure"
 * when one arrived with a wrong user or password.
 */
export function authFromMessage(message: string | undefined, user: string | undefined): AuthSeen {
  if (user) return 'bearer';
  if (!message) return 'unknown';
  if (/authorization token required|invalid authorization credential/i.test(message)) return 'none';
  if (/basic authentication challenge.*authentication failure|error authenticating user/i.test(message)) return 'basic';
  if (/invalid token|malformed token|token expired|expired token|insufficient scope|token.*(not valid|expire)/i.test(message)) return 'bearer';
  return 'unknown';
}

/** Turns logrus fields (text or JSON alike) into an event, or undefined when they are not logrus'. */
export function fromLogrusFields(f: Record<string, unknown>, format: 'logrus-text' | 'logrus-json'): Parsed | undefined {
  const s = (k: string): string | undefined => (f[k] === undefined || f[k] === null ? undefined : String(f[k]));
  const time = Date.parse(s('time') ?? '');
  if (Number.isNaN(time) || s('level') === undefined) return undefined;
  const uri = s('http.request.uri');
  const q = uri?.indexOf('?') ?? -1;
  const status = s('http.response.status');
  const duration = s('http.response.duration');
  const user = s('auth.user.name');
  const message = s('msg');
  const errParts = [s('err.code'), s('err.detail'), s('err.message')].filter((x, i, a) => x && a.indexOf(x) === i);
  const remote = s('http.request.remoteaddr');
  return {
    format,
    time,
    level: s('level'),
    message,
    method: s('http.request.method'),
    path: uri === undefined ? undefined : q >= 0 ? uri.slice(0, q) : uri,
    query: uri !== undefined && q >= 0 ? uri.slice(q + 1) : undefined,
    status: status !== undefined ? Number(status) : undefined,
    durationMs: duration !== undefined ? goDurationMs(duration) : undefined,
    host: s('http.request.host'),
    client: remote?.replace(/:\d+$/, ''),
    userAgent: s('http.request.useragent'),
    auth: authFromMessage(message, user),
    user,
    error: errParts.length ? errParts.join(': ') : undefined,
    location: s('http.response.location'),
    requestId: s('http.request.id'),
  };
}

/** `9.97391ms`, `1.5s`, `2m3s` → milliseconds. */
function goDurationMs(d: string): number | undefined {
  const units: Record<string, number> = { ns: 1e-6, 'µs': 1e-3, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  const re = /([\d.]+)(ns|µs|us|ms|s|m|h)/g;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(d))) {
    total += Number(m[1]) * units[m[2]!]!;
    any = true;
  }
  return any ? total : undefined;
}

export function parseLogrusText(text: string): Parsed | undefined {
  if (!text.startsWith('time=')) return undefined;
  const fields = logrusFields(text);
  return fields ? fromLogrusFields(fields, 'logrus-text') : undefined;
}

/** Logrus JSON: an object with string `time`, string `level` and `msg` (Berth's pino lines have a numeric level). */
export function parseLogrusJson(obj: Record<string, unknown>): Parsed | undefined {
  if (typeof obj.level !== 'string' || typeof obj.time !== 'string' || !('msg' in obj)) return undefined;
  return fromLogrusFields(obj, 'logrus-json');
}

const CORE_RE = /^(\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})) \[(\w+)\] \[([^\]]*)\](?:\[[^\]]*\])*: ?(.*)$/;

/** Harbor core: `2024-05-01T10:00:00Z [ERROR] [/server/middleware/…:42][requestID="…"]: message`. */
export function parseHarborCore(text: string): Parsed | undefined {
  const m = CORE_RE.exec(text);
  if (!m) return undefined;
  const message = m[4]!;
  // Core messages often quote the request they are about: "… request GET /v2/team/app/manifests/1.0".
  const req = /\b(GET|HEAD|POST|PUT|PATCH|DELETE) (\/v2\/\S+)/.exec(message);
  return {
    format: 'harbor-core',
    time: Date.parse(m[1]!),
    level: m[2]!.toLowerCase(),
    message: `${message} (${m[3]})`,
    method: req?.[1],
    path: req?.[2],
    auth: 'unknown',
  };
}
