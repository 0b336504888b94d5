/**
 * Time for lines that carry none. Harbor's bundled nginx logs no timestamp at all, so its lines
 * take the time of the nearest timestamped line around them in the same input — the registry's
 * logrus line for the same request usually sits just above — including lines of services the
 * explainer otherwise ignores (harbor-core, registryctl, the portal). With no time anywhere in an
 * input, lines keep their order by position and nothing more.
 */
import type { LogEvent } from './event.ts';
import { parseTimeLocal } from './parse-nginx.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A syslog stamp (`Oct 29 15:38:26`): no year and no zone (taken as UTC, as Harbor's log container writes). */
export interface SyslogStamp {
  month: number;
  day: number;
  hms: [number, number, number];
}

export function parseSyslogStamp(s: string): SyslogStamp | undefined {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s);
  const month = m ? MONTHS.indexOf(m[1]!) : -1;
  if (!m || month < 0) return undefined;
  return { month, day: Number(m[2]), hms: [Number(m[3]), Number(m[4]), Number(m[5])] };
}

export function syslogTime(st: SyslogStamp, year: number): number {
  return Date.UTC(year, st.month, st.day, ...st.hms);
}

/** ISO 8601 with or without `T`, comma or dot fractions, any zone or none (UTC then). */
function isoTime(s: string): number {
  const norm = s.replace(' ', 'T').replace(',', '.');
  return Date.parse(/(?:Z|[+-]\d{2}:?\d{2})$/.test(norm) ? norm : `${norm}Z`);
}

const LEADING_ISO = /^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)(?=[\s\]|]|$)/;
const BRACKETED_LOCAL = /\[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)? [+-]\d{4})\]/;
const LOGRUS_TIME = /\btime="([^"]+)"/;
const JSON_TIME = /"(?:time|ts|timestamp|@timestamp)":\s*(?:(\d{12,14})\b|"([^"]+)")/;

/**
 * The time a line the parsers did not take (or a bystander service's line) states, if any: a
 * leading ISO stamp (harbor-core, registryctl, `docker compose logs -t`), nginx's `[29/Oct/2025:…]`,
 * logrus' `time="…"`, or a JSON time field. NaN when none is found.
 */
export function sniffTime(body: string): number {
  const iso = LEADING_ISO.exec(body);
  if (iso) return isoTime(iso[1]!);
  const local = BRACKETED_LOCAL.exec(body);
  if (local) return parseTimeLocal(local[1]!).time;
  const logrus = LOGRUS_TIME.exec(body);
  if (logrus) return isoTime(logrus[1]!);
  const json = JSON_TIME.exec(body);
  if (json) return json[1] ? Number(json[1]) : isoTime(json[2]!);
  return NaN;
}

/** What one input's reading learned about time: dated lines, and stamps without a year. */
export interface TimeNotes {
  /** Line number → time, for every line whose own content (or prefix) states a full date. */
  anchors: Map<number, number>;
  /** Line number → syslog stamp (no year) from the line's prefix. */
  syslog: Map<number, SyslogStamp>;
}

/**
 * Fills the time of one input's events that have none: the line's syslog stamp (year from the
 * input's dated lines, else the current year), else the nearest dated line above (below, for
 * lines before the first one), else the line number, marked `position`.
 */
export function lendTimes(events: LogEvent[], notes: TimeNotes): void {
  const missing = events.filter((e) => !Number.isFinite(e.time));
  if (!missing.length) return;
  const dated = [...notes.anchors.entries()].filter(([, t]) => Number.isFinite(t)).sort((a, b) => a[0] - b[0]);
  const year = dated.length ? new Date(dated[0]![1]).getUTCFullYear() : new Date().getUTCFullYear();
  for (const [line, st] of notes.syslog) if (!Number.isFinite(notes.anchors.get(line) ?? NaN)) dated.push([line, syslogTime(st, year)]);
  dated.sort((a, b) => a[0] - b[0]);
  // Both lists are in line order (events are collected as lines are read): one sweep.
  let next = 0;
  for (const e of missing) {
    const own = notes.syslog.get(e.line);
    if (own) {
      e.time = syslogTime(own, year);
      continue;
    }
    if (!dated.length) {
      e.time = e.line;
      e.timeFrom = 'position';
      continue;
    }
    while (next < dated.length && dated[next]![0] < e.line) next++;
    e.time = (next > 0 ? dated[next - 1]! : dated[next]!)[1];
    e.timeFrom = 'neighbour';
  }
}
