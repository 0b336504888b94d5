/**
 * Small facts about requests inside a session that several rules share: which requests failed (as
 * opposed to the protocol's expected 401 challenges and 404 existence checks), what each hop saw,
 * and how to cite a line as evidence.
 */
import { isRequest, stepOf, type LogEvent, type RequestEvent, type Step } from './event.ts';
import type { Session } from './sessions.ts';

export interface Evidence {
  file: string;
  line: number;
  source: string;
  /** What the line shows, in a few words (method, shortened path, status, the telling field). */
  text: string;
}

/** Requests that carry a status (error-log lines and core messages excluded). */
export function requestsOf(s: Session): (RequestEvent & { status: number })[] {
  return s.events.filter((e): e is RequestEvent & { status: number } => isRequest(e) && e.status !== undefined && e.role !== 'proxy-error');
}

export const UPLOAD_CONTINUATION: readonly Step[] = ['upload-chunk', 'upload-complete', 'upload-status'];

export function isContinuation(e: LogEvent): boolean {
  return isRequest(e) && UPLOAD_CONTINUATION.includes(stepOf(e));
}

export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Did this request fail, as opposed to an expected protocol step? A 401 answered by a token fetch
 * is a challenge; 404 on HEAD is an existence check; the token POST falls back to GET; a 307 on a
 * blob GET is a storage redirect.
 */
export function isFailure(s: Session, e: LogEvent): boolean {
  if (!isRequest(e) || e.status === undefined || e.role === 'proxy-error') return false;
  const step = stepOf(e);
  const status = e.status;
  if (status < 300 || status === 304) return false;
  // An unanswered 401 on the ping is a probe (or a client without credentials), not a failed step.
  if (step === 'ping' && status === 401) return false;
  if (step === 'token' && e.method === 'POST' && [400, 401, 404, 405].includes(status)) return false;
  if (status === 404 && (e.method === 'HEAD' || step === 'blob-check')) return false;
  if (status === 307 && step === 'blob-get') return false;
  if (refusedUpstream(s, e as RequestEvent & { status: number })) return false;
  if (status === 401 && !UPLOAD_CONTINUATION.includes(step)) {
    const at = s.events.indexOf(e);
    const answered = s.events.some((t, i) => i > at && isRequest(t) && stepOf(t) === 'token' && t.time - e.time <= 60_000);
    if (answered) return false;
    // A Basic-auth registry: the same request sent again (with credentials) soon after succeeded.
    const retried = s.events.some(
      (t, i) => i > at && isRequest(t) && t.method === e.method && t.path === e.path && t.status !== undefined && (t.status < 300 || t.status === 404) && t.time - e.time <= 60_000,
    );
    if (retried) return false;
  }
  return true;
}

/**
 * A proxy's 499 (client went away) or 400 on a request that the registry behind it refused itself
 * (a 4xx of its own, not a timeout): the registry's line says what happened to that request. The
 * proxy's status only records that the client, told no, hung up before the answer was relayed or
 * mid-body — e.g. a sibling upload of the same push failed and the client cancelled the rest.
 */
export function refusedUpstream(s: Session, e: RequestEvent & { status: number }): boolean {
  if (e.role !== 'proxy' || (e.status !== 499 && e.status !== 400)) return false;
  return sameRequest(s, e).some((o) => (o.role === 'registry' || o.role === 'berth') && o.status !== undefined && o.status >= 400 && o.status < 500 && o.status !== 408 && o.status !== 499);
}

/** The other lines (other hops) that describe the same request: same method and path within a few seconds. */
export function sameRequest(s: Session, e: RequestEvent): RequestEvent[] {
  return s.events.filter((o): o is RequestEvent => isRequest(o) && o.method === e.method && o.path === e.path && Math.abs(o.time - e.time) <= 5000);
}

/** Shortens digests and upload ids so timelines stay readable. */
export function shortPath(path: string): string {
  return path
    .replace(/sha256:([0-9a-f]{8})[0-9a-f]{56}/g, 'sha256:$1…')
    .replace(/(\/uploads\/)([^/?]{10})[^/?]{6,}/, '$1$2…');
}

/** A one-line description of an event for evidence and timelines. */
export function describe(e: LogEvent): string {
  const parts: string[] = [];
  if (e.method && e.path) parts.push(`${e.method} ${shortPath(e.path)}${e.query && /scope=/.test(e.query) ? `?${decodeURIComponent(e.query).replace(/.*?(scope=[^&]*).*/, '$1')}` : ''}`);
  if (e.status !== undefined) parts.push(String(e.status));
  if (e.host && (e.role === 'berth' || e.role === 'registry')) parts.push(`Host=${e.host}`);
  if (e.scheme) parts.push(`scheme=${e.scheme}`);
  if (e.forwarded) parts.push(`forwarded=${Object.entries(e.forwarded).map(([k, v]) => `${k}:${v}`).join(',')}`);
  if (e.role === 'berth' || e.role === 'registry') parts.push(`auth=${e.auth}${e.user ? `(${e.user})` : ''}`);
  else if (e.user) parts.push(`user=${e.user}`);
  if (e.location) parts.push(`Location=${e.location}`);
  if (e.error) parts.push(`error=${e.error}`);
  if (e.diagnosis) parts.push(`diagnosis=${e.diagnosis.code}${e.diagnosis.message ? ` "${e.diagnosis.message.slice(0, 200)}"` : ''}`);
  if (e.message) parts.push(`"${e.message.slice(0, 140)}"`);
  return parts.join(' ');
}

export function cite(e: LogEvent): Evidence {
  return { file: e.file, line: e.line, source: e.source, text: describe(e) };
}

/** Hosts the registry (or Berth) saw in this session, most frequent first. */
export function registryHosts(s: Session): string[] {
  const counts = new Map<string, number>();
  for (const e of s.events) if ((e.role === 'berth' || e.role === 'registry') && e.host) counts.set(e.host, (counts.get(e.host) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([h]) => h);
}

/** The first line of the session that shows a given host value. */
export function lineWithHost(s: Session, host: string): LogEvent | undefined {
  return s.events.find((e) => (e.role === 'berth' || e.role === 'registry') && e.host === host);
}

/** Minutes, for explanations. */
export function minutes(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 6000) / 10} min` : `${Math.round(ms / 1000)} s`;
}
