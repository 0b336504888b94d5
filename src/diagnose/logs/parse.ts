/**
 * Line dispatcher: strips docker-compose (`nginx-1  | …`) and syslog (`May  1 10:00:00 host core[12]: …`)
 * prefixes, tries each format family, labels which hop wrote the line, and folds CNCF Distribution's
 * several lines per request (auth warning, "response completed", its own combined access line) into
 * one event. Unparseable lines are skipped and counted, never fatal: real logs are messy. Lines of
 * services that take no part in a push (Harbor's portal, registryctl, jobservice…) are set aside,
 * and every line stating a time lends it to neighbours that state none (Harbor's nginx).
 */
import type { LogEvent, LogRole } from './event.ts';
import { parseHarborNginx, parseNginxAccess, parseNginxError } from './parse-nginx.ts';
import { parseHarborCore, parseLogrusJson, parseLogrusText } from './parse-logrus.ts';
import { isPinoLine, parseBerthJson } from './parse-berth.ts';
import { lendTimes, parseSyslogStamp, sniffTime, type TimeNotes } from './times.ts';

export interface LogInput {
  /** Shown in evidence: a file name, or `-` for standard input. */
  name: string;
  text: string;
}

export interface InputStats {
  name: string;
  lines: number;
  parsed: number;
  skipped: number;
  /** Lines of services that take no part in pushes and pulls (Harbor's portal, registryctl…): read for their time only. */
  ignored: number;
  /** The first few skipped lines (line number and text, shortened), to show what was not understood. */
  skippedSamples: { line: number; text: string }[];
}

type Parsed = Omit<LogEvent, 'file' | 'line' | 'raw' | 'role' | 'source'> & { requestId?: string };

const COMPOSE_RE = /^([A-Za-z0-9][\w.-]*)\s*\|\s?(.*)$/;
const SYSLOG_RE = /^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) \S+ ([\w.-]+)(?:\[\d+\])?: (.*)$/;
/** `docker compose logs -t` / `docker logs -t` put an RFC 3339 stamp before the line. */
const STAMP_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) (.*)$/;

/**
 * Compose services / syslog tags of parts that never see a registry request from a client: Harbor's
 * portal (the UI's own nginx), registryctl, jobservice, database, cache, scanners, exporter.
 */
const BYSTANDER_RE = /portal|registryctl|jobservice|redis|postgres|harbor-db|trivy|exporter|notary|chartmuseum/;

export function isBystander(service: string): boolean {
  return BYSTANDER_RE.test(service.toLowerCase());
}

/** Which hop a compose service or syslog tag name stands for. */
export function roleOfService(name: string): LogRole | undefined {
  const n = name.toLowerCase();
  if (/nginx|proxy|ingress|traefik|haproxy|caddy|gateway|lb/.test(n)) return 'proxy';
  if (/berth/.test(n)) return 'berth';
  if (/registry|distribution/.test(n) && !/ctl/.test(n)) return 'registry';
  if (/core/.test(n)) return 'harbor-core';
  return undefined;
}

function parseBody(text: string, ctx: { offsetMinutes: number }): Parsed | undefined {
  if (text.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!obj || typeof obj !== 'object') return undefined;
    const rec = obj as Record<string, unknown>;
    return isPinoLine(rec) ? parseBerthJson(rec) : parseLogrusJson(rec);
  }
  return parseLogrusText(text) ?? parseHarborCore(text) ?? parseNginxAccess(text, ctx) ?? parseHarborNginx(text) ?? parseNginxError(text, ctx);
}

function roleOfFormat(format: LogEvent['format']): LogRole {
  switch (format) {
    case 'berth-json':
      return 'berth';
    case 'logrus-text':
    case 'logrus-json':
      return 'registry';
    case 'harbor-core':
      return 'harbor-core';
    case 'nginx-error':
      return 'proxy-error';
    default:
      return 'proxy';
  }
}

/** Parses every input into events (sorted by time) and per-input statistics. */
export function parseInputs(inputs: LogInput[]): { events: LogEvent[]; stats: InputStats[] } {
  const all: (LogEvent & { requestId?: string; service?: string })[] = [];
  const stats: InputStats[] = [];
  const ctx = { offsetMinutes: 0 };
  for (const input of inputs) {
    const st: InputStats = { name: input.name, lines: 0, parsed: 0, skipped: 0, ignored: 0, skippedSamples: [] };
    stats.push(st);
    const notes: TimeNotes = { anchors: new Map(), syslog: new Map() };
    const mine: LogEvent[] = [];
    input.text.split('\n').forEach((rawLine, i) => {
      const raw = rawLine.replace(/\r$/, '');
      if (raw.trim() === '') return;
      st.lines++;
      const line = i + 1;
      const { service, body, syslog } = stripPrefix(raw);
      if (syslog) notes.syslog.set(line, syslog);
      if (service && isBystander(service)) {
        st.ignored++;
        notes.anchors.set(line, sniffTime(body));
        return;
      }
      let parsed = parseBody(body, ctx);
      if (!parsed) {
        const stamped = STAMP_RE.exec(body);
        parsed = stamped ? parseBody(stamped[2]!, ctx) : undefined;
        if (parsed && !Number.isFinite(parsed.time)) parsed.time = Date.parse(stamped![1]!);
      }
      if (!parsed) {
        st.skipped++;
        if (st.skippedSamples.length < 5) st.skippedSamples.push({ line, text: raw.slice(0, 160) });
        notes.anchors.set(line, sniffTime(body));
        return;
      }
      st.parsed++;
      if (Number.isFinite(parsed.time)) notes.anchors.set(line, parsed.time);
      let role = roleOfFormat(parsed.format);
      const serviceRole = service ? roleOfService(service) : undefined;
      if (parsed.format.startsWith('nginx-') && parsed.format !== 'nginx-error' && serviceRole === 'registry') role = 'registry';
      const event = { ...parsed, file: input.name, line, raw, role, source: service ?? '', service };
      all.push(event);
      mine.push(event);
    });
    lendTimes(mine, notes);
  }
  // A combined-format line in a file (or compose service) that also holds logrus lines is Distribution's own access line.
  const logrusOrigins = new Set(all.filter((e) => e.format.startsWith('logrus')).map((e) => `${e.file}\0${e.service ?? ''}`));
  for (const e of all) {
    if ((e.format === 'nginx-combined' || e.format === 'nginx-timed') && logrusOrigins.has(`${e.file}\0${e.service ?? ''}`) && !(e.service && roleOfService(e.service) === 'proxy')) {
      e.role = 'registry';
    }
    if (!e.source) e.source = e.role === 'proxy-error' ? 'nginx-error' : e.role === 'proxy' ? 'nginx' : e.role;
  }
  return { events: mergeByTime(foldRegistryLines(all)), stats };
}

/** Splits a compose (`service  | …`) or syslog (`Oct 29 15:38:26 host tag[pid]: …`) prefix off a line (ANSI colours removed). */
function stripPrefix(raw: string): { service?: string; body: string; syslog?: ReturnType<typeof parseSyslogStamp> } {
  // eslint-disable-next-line no-control-regex
  const body = raw.replace(/\x1b\[[0-9;]*m/g, '');
  const compose = COMPOSE_RE.exec(body);
  if (compose) return { service: compose[1], body: compose[2]! };
  const sys = SYSLOG_RE.exec(body);
  if (sys) return { service: sys[2], body: sys[3]!, syslog: parseSyslogStamp(sys[1]!) };
  return { body };
}

/** Distribution writes up to three lines per request; keep one event with everything they say. */
function foldRegistryLines(all: (LogEvent & { requestId?: string })[]): LogEvent[] {
  const dropped = new Set<LogEvent>();
  const byId = new Map<string, LogEvent & { requestId?: string }>();
  for (const e of all) {
    if (e.role !== 'registry' || !e.requestId) continue;
    const first = byId.get(`${e.file}\0${e.requestId}`);
    if (!first) {
      byId.set(`${e.file}\0${e.requestId}`, e);
      continue;
    }
    first.status ??= e.status;
    first.durationMs ??= e.durationMs;
    first.error ??= e.error;
    first.user ??= e.user;
    first.location ??= e.location;
    if (first.auth === 'unknown') first.auth = e.auth;
    if (e.message && e.message !== first.message) first.message = first.message ? `${first.message}; ${e.message}` : e.message;
    dropped.add(e);
  }
  const claimed = new Set<LogEvent>();
  const logrusRequests = all.filter((e) => e.role === 'registry' && e.format.startsWith('logrus') && e.method && !dropped.has(e));
  for (const e of all) {
    if (e.role !== 'registry' || !e.format.startsWith('nginx-')) continue;
    const twin = logrusRequests.find(
      (l) => !claimed.has(l) && l.file === e.file && l.method === e.method && l.path === e.path && (l.query ?? '') === (e.query ?? '') && Math.abs(l.time - e.time) <= 3000 && (l.status === undefined || l.status === e.status),
    );
    if (!twin) continue;
    claimed.add(twin);
    twin.status ??= e.status;
    dropped.add(e);
  }
  return all.filter((e) => !dropped.has(e)).map(({ requestId: _r, service: _s, ...rest }: LogEvent & { requestId?: string; service?: string }) => rest);
}

/**
 * Orders events by time across inputs but keeps each input's own line order: within one file
 * (e.g. interleaved compose output) nginx's whole-second stamps must not jump ahead of the
 * registry's millisecond ones.
 */
export function mergeByTime(events: LogEvent[]): LogEvent[] {
  const byFile = new Map<string, LogEvent[]>();
  for (const e of events) {
    const list = byFile.get(e.file) ?? [];
    list.push(e);
    byFile.set(e.file, list);
  }
  const queues = [...byFile.values()].map((l) => l.sort((a, b) => a.line - b.line));
  const out: LogEvent[] = [];
  const heads = queues.map(() => 0);
  for (;;) {
    let best = -1;
    for (let i = 0; i < queues.length; i++) {
      const e = queues[i]![heads[i]!];
      if (!e) continue;
      const b = best >= 0 ? queues[best]![heads[best]!]! : undefined;
      if (!b || (e.time || 0) < (b.time || 0)) best = i;
    }
    if (best < 0) return out;
    out.push(queues[best]![heads[best]!++]!);
  }
}
