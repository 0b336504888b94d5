// The state of one doctor run: every exchange as a step, the findings so far, what is known.
import { type ProbeConfig, type ProbeRequest, send } from './probe.ts';
import type { Target } from './urls.ts';
import type { Exchange, Finding, RegistryInfo, Step } from './types.ts';

/** Judges an exchange: ok true/false/null and an optional note for the table. */
export type Verdict = (ex: Exchange) => { ok: boolean | null; note?: string };

/** One entry of a token's `access` claim (Docker token spec). */
export interface TokenAccess {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** Collects steps and findings; the walk functions share one. */
export class Recorder {
  readonly steps: Step[] = [];
  readonly findings: Finding[] = [];
  readonly info: RegistryInfo = { kind: 'unknown' };
  /** The Authorization header a client would now send to the registry, if any. */
  authorization?: string;
  /** Who the run acts as (named in findings); undefined without credentials. */
  username?: string;
  /** The repository the probe image goes to. */
  repository = '';
  /** What the last token grants, from its `access` claim; undefined when the token is opaque. */
  tokenAccess?: readonly TokenAccess[];

  constructor(
    readonly target: Target,
    readonly config: ProbeConfig,
  ) {}

  /** Sends a request and records it as a step. */
  async request(id: string, title: string, req: ProbeRequest, verdict: Verdict): Promise<Exchange> {
    const exchange = await send(this.config, req);
    const { ok, note } = exchange.error ? { ok: false, note: `${exchange.error.code}: ${exchange.error.message}` } : verdict(exchange);
    this.steps.push({ id, title, exchange: redactTokens(exchange), ok, ...(note ? { note } : {}) });
    return exchange;
  }

  /** Records a step that sent nothing (a conclusion drawn from earlier answers). */
  note(id: string, title: string, ok: boolean | null, note: string): void {
    this.steps.push({ id, title, ok, note });
  }

  /** Adds a finding unless one with the same mechanism and title exists. */
  add(finding: Finding): void {
    if (!this.findings.some((f) => f.mechanism === finding.mechanism && f.title === finding.title)) this.findings.push(finding);
  }

  has(mechanism: Finding['mechanism']): boolean {
    return this.findings.some((f) => f.mechanism === mechanism);
  }

  /** `/v2/…` URL on the typed origin. */
  url(path: string): string {
    return `${this.target.base}${path}`;
  }
}

/** The report is shared in chats and tickets: tokens in token-endpoint answers are replaced. */
export function redactTokens(ex: Exchange): Exchange {
  if (!ex.body || !/"(token|access_token|refresh_token)"/.test(ex.body)) return ex;
  return { ...ex, body: ex.body.replace(/("(?:token|access_token|refresh_token)"\s*:\s*)"[^"]*"/g, '$1"<redacted>"') };
}

/** Expect exactly these statuses. */
export function expect(...statuses: number[]): Verdict {
  return (ex) => ({ ok: ex.status !== undefined && statuses.includes(ex.status) });
}

/** Informational step: whatever comes back is not itself a failure. */
export const inform: Verdict = () => ({ ok: null });

/** A one-line summary of an exchange for evidence: `PATCH <url> [bearer] → 401 WWW-Authenticate: …`. */
export function describe(ex: Exchange): string {
  const got = ex.error ? ex.error.code : String(ex.status);
  const keys = ['location', 'www-authenticate'].filter((k) => ex.headers[k]).map((k) => `${k}: ${ex.headers[k]}`);
  return shortenState(`${ex.method} ${ex.url} [auth: ${ex.auth}] → ${got}${keys.length ? ` (${keys.join('; ')})` : ''}`);
}

/** Upload URLs carry long opaque `_state` tokens (Distribution); they say nothing to a reader. */
export function shortenState(text: string): string {
  return text.replace(/([?&]_state=)[^&\s;)]+/g, '$1…');
}

/** `detail.diagnosis` of an OCI error body (Berth, contract B), if present. */
export function berthDiagnosis(ex: Exchange): { code: string; message?: string } | undefined {
  try {
    const body = JSON.parse(ex.body ?? '') as { errors?: { message?: string; detail?: { diagnosis?: unknown } }[] };
    const first = body.errors?.find((e) => typeof e.detail?.diagnosis === 'string');
    return first ? { code: first.detail!.diagnosis as string, message: first.message } : undefined;
  } catch {
    return undefined;
  }
}

/** The OCI error code of a response body (`UNSUPPORTED`, `BLOB_UPLOAD_UNKNOWN`…). */
export function ociErrorCode(ex: Exchange): string | undefined {
  try {
    return (JSON.parse(ex.body ?? '') as { errors?: { code?: string }[] }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** The message of an OCI error body, `CODE: message` (`DENIED: requested access to the resource is denied`). */
export function ociErrorText(ex: Exchange): string | undefined {
  try {
    const first = (JSON.parse(ex.body ?? '') as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    if (!first?.code) return undefined;
    return first.message ? `${first.code}: ${first.message}` : first.code;
  } catch {
    return undefined;
  }
}
