/**
 * Berth's own pino JSON lines (contract C): one `msg:"request"` line per request, carrying the Host,
 * scheme, forwarding headers, peer and — on failed upload-session requests — a `diagnosis`.
 */
import type { AuthSeen, BerthDiagnosis, LogEvent } from './event.ts';

type Parsed = Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'>;

const AUTHS: readonly AuthSeen[] = ['none', 'basic', 'bearer', 'other'];
const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** True for a pino line (numeric level, numeric time): Berth's, or any pino service. */
export function isPinoLine(obj: Record<string, unknown>): boolean {
  return typeof obj.level === 'number' && typeof obj.time === 'number' && typeof obj.msg === 'string';
}

export function parseBerthJson(obj: Record<string, unknown>): Parsed | undefined {
  if (!isPinoLine(obj)) return undefined;
  const str = (k: string) => (typeof obj[k] === 'string' ? (obj[k] as string) : undefined);
  const num = (k: string) => (typeof obj[k] === 'number' ? (obj[k] as number) : undefined);
  const isRequest = obj.msg === 'request' && typeof obj.method === 'string';
  const auth = str('auth') as AuthSeen | undefined;
  const errMessage = typeof obj.err === 'object' && obj.err ? String((obj.err as { message?: unknown }).message ?? '') || undefined : undefined;
  return {
    format: 'berth-json',
    time: obj.time as number,
    level: PINO_LEVELS[obj.level as number] ?? String(obj.level),
    // A request line's own text, when one was logged beside the error code (older lines: the refusal's message).
    message: isRequest ? str('message') ?? str('errorMessage') ?? (str('error') ? errMessage : undefined) : (obj.msg as string),
    method: isRequest ? str('method') : undefined,
    path: isRequest ? str('path') : undefined,
    query: str('query'),
    status: num('status'),
    durationMs: num('durationMs'),
    host: str('host'),
    scheme: str('scheme'),
    client: str('client'),
    peer: str('peer'),
    userAgent: str('userAgent'),
    auth: auth && AUTHS.includes(auth) ? auth : 'unknown',
    user: str('user'),
    forwarded: stringRecord(obj.forwarded),
    location: str('location'),
    error: str('error') ?? errMessage,
    diagnosis: diagnosisOf(obj.diagnosis),
  };
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k.toLowerCase()] = val;
  return Object.keys(out).length ? out : undefined;
}

function diagnosisOf(v: unknown): BerthDiagnosis | undefined {
  if (typeof v === 'string') return { code: v };
  if (!v || typeof v !== 'object') return undefined;
  const d = v as Record<string, unknown>;
  if (typeof d.code !== 'string') return undefined;
  const s = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  const n = (...keys: string[]) => keys.map((k) => d[k]).find((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const out: BerthDiagnosis = { code: d.code, message: s('message'), session: s('session'), openedBy: s('openedBy'), openedVia: s('openedVia') };
  // Quota refusals; `usedBytes`/`size` are the names the quota check's error detail uses.
  const quota = { project: s('project'), quotaBytes: n('quotaBytes'), usageBytes: n('usageBytes', 'usedBytes'), sizeBytes: n('sizeBytes', 'size') };
  for (const [k, v] of Object.entries(quota)) if (v !== undefined) Object.assign(out, { [k]: v });
  return out;
}
