// Text output of a report: the step table, the findings, the conclusion.
import { formatSize } from './size.ts';
import { CLIENT_NAMES, type DoctorReport, type Exchange, type Step } from './types.ts';
import { MECHANISM_NAMES } from './findings.ts';
import { parseTarget } from './urls.ts';

const MAX_URL = 64;

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

/** The whole human-readable report, lines ready to print. */
export function renderReport(report: DoctorReport): string[] {
  let base = '';
  try {
    base = parseTarget(report.target).base;
  } catch {
    /* shown in full */
  }
  const rows = report.steps.map((s, i) => [String(i + 1), mark(s), s.title, s.exchange ? sent(s.exchange, base) : '', s.exchange ? got(s.exchange) : '']);
  const header = ['#', '', 'STEP', 'SENT', 'GOT'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  // Notes go on a line of their own under their step, so one long note does not widen the table.
  const indent = ' '.repeat(widths[0]! + widths[1]! + 4);
  const table = report.steps.flatMap((s, i) => [line(rows[i]!), ...(s.note ? [`${indent}↳ ${s.note}`] : [])]);
  const out = [`berth doctor ${report.target}${base && base !== report.target ? ` (${base})` : ''}`, `registry: ${report.registry.kind}${report.registry.version ? ` ${report.registry.version}` : ''}, auth: ${report.registry.auth ?? '?'}`, '', line(header), ...table];
  const r = report.registry;
  const facts: string[] = [];
  if (r.bodyLimit) facts.push(`largest PATCH body that passed: ${r.bodyLimit.largestPassed !== undefined ? formatSize(r.bodyLimit.largestPassed) : 'none'}${r.bodyLimit.firstFailed ? `, first refused: ${formatSize(r.bodyLimit.firstFailed)}` : ''}`);
  if (r.uploadBytesPerSecond) facts.push(`upload speed: ${(r.uploadBytesPerSecond / 1e6).toFixed(1)} MB/s`);
  if (r.tokenExpiresIn !== undefined) facts.push(`token lifetime: ${r.tokenExpiresIn}s`);
  if (r.clockSkewSeconds !== undefined) facts.push(`clock skew (server − local): ${r.clockSkewSeconds}s`);
  if (facts.length) out.push('', ...facts);
  for (const f of report.findings) {
    out.push('', `${f.severity.toUpperCase()} ${f.mechanism} — ${MECHANISM_NAMES[f.mechanism]}: ${f.title}`);
    for (const e of f.evidence) out.push(`  evidence: ${e}`);
    if (f.clients.length) out.push(`  fails for: ${f.clients.map((c) => CLIENT_NAMES[c]).join('; ')}`);
    out.push(`  fix: ${f.fix}`);
  }
  out.push('', `${report.exitCode === 0 ? 'OK' : report.exitCode === 1 ? 'PROBLEM' : 'NOT TESTED'}: ${report.verdict}`);
  return out;
}
