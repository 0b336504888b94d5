// Following a URL the server handed back, the way strict clients do.
import { explainAuthenticated401 } from './auth.ts';
import { urlFindings } from './findings.ts';
import { type Recorder, type Verdict, berthDiagnosis, describe, shortenState } from './recorder.ts';
import { familiesDroppingCredentials, judgeNextUrl } from './urls.ts';
import type { Exchange } from './types.ts';

/** The next request of an upload, sent to a server-given Location. */
export interface FollowRequest {
  readonly id: string;
  readonly title: string;
  readonly method: string;
  /** The Location (or Link target) as the server sent it. */
  readonly reference: string;
  /** URL of the request whose answer carried `reference`. */
  readonly from: string;
  /** Query parameters to add (e.g. `digest`). */
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
  readonly headers?: Readonly<Record<string, string>>;
  readonly verdict: Verdict;
}

function withQuery(url: string, query: Readonly<Record<string, string>> | undefined): string {
  if (!query) return url;
  const extra = new URLSearchParams(query).toString();
  return `${url}${url.includes('?') ? '&' : '?'}${extra}`;
}

const failed = (ex: Exchange): boolean => ex.error !== undefined || (ex.status !== undefined && ex.status >= 300 && ex.status < 400);

/**
 * Judges the reference against the typed URL, then: when some client family would drop its
 * credentials there, sends the request without them first, exactly as that client would (a 401
 * there is the failure users see); then with credentials, to see whether the rest works; and if
 * that URL cannot be reached at all, once more on the typed origin, so the walk can go on.
 * Returns the exchange the walk continues from.
 */
export async function follow(rec: Recorder, f: FollowRequest): Promise<Exchange> {
  const judgement = judgeNextUrl(f.reference, f.from, rec.target);
  const url = withQuery(judgement.url, f.query);
  const dropping = familiesDroppingCredentials(judgement);
  const evidence: string[] = [];
  const request = (authorization: string | undefined, to: string) => ({ method: f.method, url: to, authorization, body: f.body, headers: f.headers });

  if (judgement.problems.length > 0) {
    rec.note(`${f.id}-judge`, `judge ${judgement.absolute ? 'absolute' : 'relative'} Location`, false, shortenState(`${f.reference}: ${judgement.problems.join('; ')}`));
  }
  if (dropping.length > 0 && rec.authorization) {
    const strict = await rec.request(`${f.id}-as-${dropping.join('+')}`, `${f.title} as ${dropping.join('/')} (no credentials)`, request(undefined, url), (ex) => ({
      ok: ex.status !== undefined && ex.status < 400,
      note: ex.status === 401 ? `401: this is what ${dropping.join(' and ')} ${dropping.length === 1 ? 'gets' : 'get'}` : undefined,
    }));
    evidence.push(shortenState(`Location: ${f.reference} (from ${f.from})`), `${describe(strict)}: ${dropping.join(', ')} ${dropping.length === 1 ? 'sends' : 'send'} no credentials to this URL`);
    const diagnosis = berthDiagnosis(strict);
    if (diagnosis) evidence.push(`Berth diagnosis: ${diagnosis.code}${diagnosis.message ? ` — ${diagnosis.message}` : ''}`);
    if (strict.status !== undefined && strict.status < 400) {
      for (const finding of urlFindings(judgement, evidence, rec.info.kind, false)) rec.add({ ...finding, severity: 'warning' });
      return strict;
    }
  }
  let ex = await rec.request(f.id, dropping.length > 0 ? `${f.title} (with credentials)` : f.title, request(rec.authorization, url), f.verdict);
  let connectFailed = false;
  if (failed(ex) && (!judgement.sameAuthority || !judgement.sameScheme)) {
    connectFailed = true;
    evidence.push(`${describe(ex)}: the URL as given does not work even with credentials`);
    const path = new URL(url);
    const rewritten = `${rec.target.base}${path.pathname}${path.search}`;
    ex = await rec.request(`${f.id}-on-typed-origin`, `${f.title} (Location moved onto ${rec.target.base})`, request(rec.authorization, rewritten), f.verdict);
  } else if (dropping.length > 0) {
    evidence.push(`${describe(ex)}: with credentials`);
  }
  if (judgement.mechanisms.length > 0) for (const finding of urlFindings(judgement, evidence, rec.info.kind, connectFailed)) rec.add(finding);
  if (ex.status === 401 && rec.authorization) explainAuthenticated401(rec, ex, f.title);
  return ex;
}
