// Text output of a report: the step table, the findings, the conclusion.
import { formatSize } from './size.ts';
import { CLIENT_NAMES, type DoctorReport, type Exchange, type Step } from './types.ts';
import { MECHANISM_NAMES } from './findings.ts';
import { parseTarget } from './urls.ts';
import { layoutTable, wrap } from './wrap.ts';

const MAX_URL = 64;
/** The width when the output is not a terminal (piped, redirected, or a test). */
export const DEFAULT_WIDTH = 80;
/** Narrower than this, lines are still kept within the width but little of anything fits. */
const MIN_WIDTH = 30;

function shortUrl(url: string, base?: string): string {
  // Upload URLs carry long state tokens in the query, digests and ids are long: the path's shape,
  // the host and the port are what matter here.
  const local = base && url.startsWith(`${base}/`) ? url.slice(base.length) : url;
  const cut = local
    .replace(/([?&]_state=)[^&]+/, '$1…')
    .replace(/(sha256:[0-9a-f]{8})[0-9a-f]{56}/g, '$1…')
    .replace(/(\/uploads\/[^/?]{8})[^/?]{4,}/, '$1…');
  return cut.length > MAX_URL ? `${cut.slice(0, MAX_URL - 1)}…` : cut;
}

function sent(ex: Exchange, base: string): string {
  const body = ex.bodyBytes > 0 ? ` ${formatSize(ex.bodyBytes)}${ex.chunked ? ' chunked' : ''}` : '';
  return `${ex.method} ${shortUrl(ex.url, base)} [${ex.auth}]${body}`;
}

function got(ex: Exchange): string {
  if (ex.error) return ex.error.code;
  const keys = ['location', 'www-authenticate'].filter((k) => ex.headers[k]).map((k) => `${k === 'location' ? 'Location' : 'WWW-Authenticate'}: ${shortUrl(ex.headers[k]!)}`);
  return [String(ex.status), ...keys].join(' ');
}

const mark = (s: Step): string => (s.ok === true ? '✓' : s.ok === false ? '✗' : '·');

/** Flexible columns narrower than this make a table harder to read than one block per step. */
const MIN_COLUMN = 28;

/**
 * The step table: `#  ✓  STEP  SENT  GOT` with cells wrapped within their columns, each note on
 * lines of its own under its step (so one long note does not widen the table). On a terminal too
 * narrow for three readable columns (80 columns is), one block per step instead: the title, then
 * what was sent and what came back, each on lines of their own.
 */
function renderSteps(report: DoctorReport, base: string, width: number): string[] {
  const rows = report.steps.map((s, i) => [String(i + 1), mark(s), s.title, s.exchange ? sent(s.exchange, base) : '', s.exchange ? got(s.exchange) : '']);
  const header = ['#', '', 'STEP', 'SENT', 'GOT'];
  const layout = layoutTable([header, ...rows], width, [0, 1], MIN_COLUMN);
  if (layout) {
    const indent = ' '.repeat(layout.widths[0]! + layout.widths[1]! + 4);
    return [...layout.row(header), ...report.steps.flatMap((s, i) => [...layout.row(rows[i]!), ...(s.note ? wrap(s.note, width, `${indent}↳ `, `${indent}  `) : [])])];
  }
  const numbers = String(rows.length).length;
  const indent = ' '.repeat(numbers + 3);
  return [
    `${'#'.padStart(numbers)}   STEP, then SENT and → GOT`,
    ...report.steps.flatMap((s, i) => {
      const [n, m, title, out, back] = rows[i]!;
      return [
        ...wrap(title!, width, `${n!.padStart(numbers)} ${m} `, indent),
        ...(out ? wrap(out, width, indent, `${indent}  `) : []),
        ...(back ? wrap(back, width, `${indent}→ `, `${indent}  `) : []),
        ...(s.note ? wrap(s.note, width, `${indent}↳ `, `${indent}  `) : []),
      ];
    }),
  ];
}

/** `sha256:0123456789ab…` for lines that name what was deleted (the JSON report keeps the whole digest). */
const shortDigests = (text: string): string => text.replace(/(sha256:[0-9a-f]{12})[0-9a-f]{52}/g, '$1…');

/**
 * The whole human-readable report, lines ready to print, none longer than `width` (the terminal's
 * columns; {@link DEFAULT_WIDTH} when not a terminal): long values wrap with a hanging indent.
 */
export function renderReport(report: DoctorReport, width: number = DEFAULT_WIDTH): string[] {
  const w = Math.max(MIN_WIDTH, Math.floor(width));
  let base = '';
  try {
    base = parseTarget(report.target).base;
  } catch {
    /* shown in full */
  }
  const r = report.registry;
  const out = [
    ...wrap(`berth doctor ${report.target}${base && base !== report.target ? ` (${base})` : ''}`, w, '', '  '),
    ...wrap(`registry: ${r.kind}${r.version ? ` ${r.version}` : ''}, auth: ${r.auth ?? '?'}`, w, '', '  '),
    '',
    ...renderSteps(report, base, w),
  ];
  const facts: string[] = [];
  if (r.bodyLimit) facts.push(`largest PATCH body that passed: ${r.bodyLimit.largestPassed !== undefined ? formatSize(r.bodyLimit.largestPassed) : 'none'}${r.bodyLimit.firstFailed ? `, first refused: ${formatSize(r.bodyLimit.firstFailed)}` : ''}`);
  if (r.uploadBytesPerSecond) facts.push(`upload speed: ${(r.uploadBytesPerSecond / 1e6).toFixed(1)} MB/s`);
  if (r.tokenExpiresIn !== undefined) facts.push(`token lifetime: ${r.tokenExpiresIn}s`);
  if (r.clockSkewSeconds !== undefined) facts.push(`clock skew (server − local): ${r.clockSkewSeconds}s`);
  if (facts.length) out.push('', ...facts.flatMap((f) => wrap(f, w, '', '  ')));
  // What stayed is a CLEANUP finding below, with the reason for each item.
  if (report.cleanup.removed.length) out.push('', ...report.cleanup.removed.flatMap((item) => wrap(shortDigests(item), w, 'deleted again: ', '    ')));
  for (const f of report.findings) {
    out.push('', ...wrap(`${f.severity.toUpperCase()} ${f.mechanism} — ${MECHANISM_NAMES[f.mechanism]}: ${f.title}`, w, '', '  '));
    for (const e of f.evidence) out.push(...wrap(e, w, '  evidence: ', '    '));
    if (f.clients.length) out.push(...wrap(f.clients.map((c) => CLIENT_NAMES[c]).join('; '), w, '  fails for: ', '    '));
    out.push(...wrap(f.fix, w, '  fix: ', '    '));
  }
  out.push('', ...wrap(`${report.exitCode === 0 ? 'OK' : report.exitCode === 1 ? 'PROBLEM' : 'NOT TESTED'}: ${report.verdict}`, w, '', '  '));
  return out;
}
