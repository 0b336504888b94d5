/**
 * `explainLogs`: the whole explainer as one pure function (text in, report out), so the CLI, unit
 * tests and the end-to-end matrix all call the same thing; plus the human-readable rendering.
 */
import { isRequest, stepOf, type LogEvent } from './event.ts';
import { parseInputs, type InputStats, type LogInput } from './parse.ts';
import { diagnoseSession, type Finding, type MechanismId } from './rules.ts';
import { groupSessions } from './sessions.ts';
import { cite, shortPath, type Evidence } from './steps.ts';

export type { LogInput, InputStats, Finding, MechanismId, Evidence };

export interface TimelineEntry {
  /** ISO time, or `?` when no line of the input states one (then entries are in file order). */
  time: string;
  /** Set when the line states no time of its own (Harbor's nginx): `neighbour` — borrowed from a nearby line. */
  timeFrom?: 'neighbour' | 'position';
  file: string;
  line: number;
  source: string;
  method?: string;
  path?: string;
  step?: string;
  status?: number;
  /** `bearer (alice)`, `none`, `basic alice`… as far as the line tells. */
  auth: string;
  note?: string;
}

export interface SessionReport {
  id: number;
  kind: 'push' | 'pull' | 'login' | 'other';
  repository?: string;
  client?: string;
  userAgent?: string;
  /** ISO times, or `?` when none of the session's lines (nor their neighbours) state a time. */
  start: string;
  end: string;
  verdict: 'ok' | 'failed';
  /** The first request that failed (not counting expected 401 challenges and existence checks). */
  failingStep?: Evidence;
  mechanisms: MechanismId[];
  timeline: TimelineEntry[];
}

export interface Report {
  inputs: InputStats[];
  parsedLines: number;
  skippedLines: number;
  /** Lines of services that take no part in pushes (Harbor's portal, registryctl…), read for their time only. */
  ignoredLines: number;
  sessions: SessionReport[];
  findings: Finding[];
  /** 0: nothing failing; 1: a problem was named; 2: no line could be parsed. */
  exitCode: 0 | 1 | 2;
}

function iso(t: number): string {
  return Number.isFinite(t) ? new Date(t).toISOString() : '?';
}

function authOf(e: LogEvent): string {
  if (e.role === 'proxy' || e.role === 'proxy-error') return e.user ? `basic ${e.user}` : '-';
  if (e.auth === 'unknown' && !e.user) return '?';
  return `${e.auth === 'unknown' ? '' : e.auth}${e.user ? ` (${e.user})` : ''}`.trim();
}

function noteOf(e: LogEvent): string | undefined {
  const notes: string[] = [];
  if (e.diagnosis) notes.push(`diagnosis=${e.diagnosis.code}`);
  if (e.error) notes.push(e.error);
  if ((e.role === 'berth' || e.role === 'registry') && e.host) notes.push(`Host=${e.host}`);
  if (e.scheme && e.scheme !== 'https') notes.push(`scheme=${e.scheme}`);
  if (e.message) notes.push(e.message.slice(0, 100));
  return notes.length ? notes.join('; ') : undefined;
}

/** Parses, groups and diagnoses the given logs. Pure: no I/O. */
export function explainLogs(inputs: LogInput[]): Report {
  const { events, stats } = parseInputs(inputs);
  const parsedLines = stats.reduce((n, s) => n + s.parsed, 0);
  const skippedLines = stats.reduce((n, s) => n + s.skipped, 0);
  const ignoredLines = stats.reduce((n, s) => n + s.ignored, 0);
  const sessions = groupSessions(events);
  const findings: Finding[] = [];
  const reports = sessions.map((s): SessionReport => {
    const { findings: found, failing } = diagnoseSession(s);
    findings.push(...found);
    // Lines ordered only by position carry line numbers as times: not a time to show.
    const dated = s.events.filter((e) => e.timeFrom !== 'position' && Number.isFinite(e.time)).map((e) => e.time);
    return {
      id: s.id,
      kind: s.kind,
      repository: s.repository,
      client: s.client,
      userAgent: s.userAgent,
      start: dated.length ? iso(dated.reduce((a, b) => Math.min(a, b))) : '?',
      end: dated.length ? iso(dated.reduce((a, b) => Math.max(a, b))) : '?',
      verdict: found.length ? 'failed' : 'ok',
      failingStep: failing ? cite(failing) : undefined,
      mechanisms: found.map((f) => f.mechanism),
      timeline: s.events.map((e) => ({
        time: e.timeFrom === 'position' ? '?' : iso(e.time),
        ...(e.timeFrom ? { timeFrom: e.timeFrom } : {}),
        file: e.file,
        line: e.line,
        source: e.source,
        method: e.method,
        path: e.path,
        step: isRequest(e) ? stepOf(e) : undefined,
        status: e.status,
        auth: authOf(e),
        note: noteOf(e),
      })),
    };
  });
  const exitCode = parsedLines === 0 ? 2 : findings.length ? 1 : 0;
  return { inputs: stats, parsedLines, skippedLines, ignoredLines, sessions: reports, findings, exitCode };
}

const MAX_TIMELINE = 24;

/** The human-readable report: per session a short timeline and its verdict, then a summary. */
export function renderText(report: Report): string {
  const out: string[] = [];
  const files = report.inputs.map((i) => `${i.name} (${i.parsed}/${i.lines} lines${i.skipped ? `, ${i.skipped} skipped` : ''}${i.ignored ? `, ${i.ignored} from services outside the push path` : ''})`).join(', ');
  out.push(`Read ${files}.`);
  if (report.exitCode === 2) {
    out.push(report.ignoredLines
      ? 'No line of a registry or its proxy: the lines read belong to services outside the push path (Harbor\'s portal, registryctl, jobservice…). Include the nginx, registry and core logs.'
      : 'No line could be parsed: expected nginx access/error logs, CNCF Distribution or Harbor logs, or Berth JSON logs.');
    for (const i of report.inputs) for (const s of i.skippedSamples.slice(0, 3)) out.push(`  ${i.name}:${s.line}: ${s.text}`);
    return out.join('\n') + '\n';
  }
  for (const s of report.sessions) {
    out.push('');
    const when = s.start === '?' ? 'no time logged (lines in file order)' : `${s.start.slice(0, 19).replace('T', ' ')} → ${s.end.slice(11, 19)} UTC`;
    out.push(`Session ${s.id}: ${s.kind}${s.repository ? ` ${s.repository}` : ''} — ${s.userAgent ?? 'unknown client'}${s.client ? ` from ${s.client}` : ''}, ${when}`);
    const rows = s.timeline.filter((t) => t.method || t.note);
    const shown = rows.length > MAX_TIMELINE ? [...rows.slice(0, MAX_TIMELINE / 2), undefined, ...rows.slice(-MAX_TIMELINE / 2)] : rows;
    const cells = shown.map((t) =>
      t === undefined
        ? ['…', '', '', `(${rows.length - MAX_TIMELINE} more lines)`, '', '', '']
        : [t.time === '?' ? '?' : `${t.timeFrom === 'neighbour' ? '~' : ''}${t.time.slice(11, 23)}`, t.source, t.method ?? '', t.path ? shortPath(t.path) : '', t.status === undefined ? '' : String(t.status), t.auth, `${t.file}:${t.line}${t.note ? `  ${t.note}` : ''}`],
    );
    if (s.timeline.some((t) => t.timeFrom === 'neighbour')) out.push('  (~ time not logged by that line: taken from the nearest line above that has one)');
    const header = ['TIME', 'SOURCE', 'METHOD', 'PATH', 'STATUS', 'AUTH', 'LINE'];
    const widths = header.map((h, i) => Math.min(i === 3 ? 56 : 40, Math.max(h.length, ...cells.map((r) => r[i]!.length))));
    const fmt = (r: string[]) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
    out.push(fmt(header));
    for (const r of cells) out.push(fmt(r));
    const found = report.findings.filter((f) => f.session === s.id);
    if (!found.length) {
      out.push(`  Verdict: OK — ${s.kind === 'push' ? 'the push' : s.kind === 'pull' ? 'the pull' : 'the session'} shows no failing step.`);
      continue;
    }
    if (s.failingStep) out.push(`  Failing step: ${s.failingStep.file}:${s.failingStep.line} ${s.failingStep.text}`);
    for (const f of found) {
      out.push(`  Verdict: ${f.mechanism === 'other' ? 'FAILED' : f.mechanism === 'quota' ? 'QUOTA' : f.mechanism}${f.alternatives?.length ? ` (or ${f.alternatives.join(', or ')}: the logs do not tell them apart)` : ''} — ${f.title}`);
      out.push('    Evidence:');
      for (const ev of f.evidence.slice(0, 8)) out.push(`      ${ev.file}:${ev.line} [${ev.source}] ${ev.text}`);
      out.push(`    Why: ${f.explanation}`);
      out.push('    Fix:');
      for (const fx of f.fix) out.push(`      - ${fx}`);
    }
  }
  out.push('');
  const failed = report.sessions.filter((s) => s.verdict === 'failed').length;
  const mech = [...new Set(report.findings.map((f) => f.mechanism))].join(', ');
  out.push(`${report.sessions.length} session(s), ${failed} failed${mech ? ` (${mech})` : ''}; ${report.parsedLines} lines parsed, ${report.skippedLines} skipped${report.ignoredLines ? `, ${report.ignoredLines} from services outside the push path` : ''}.`);
  return out.join('\n') + '\n';
}
