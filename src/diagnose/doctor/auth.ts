// Getting credentials the way clients do: Basic, or a Bearer token by POST (OAuth2) then GET.
import { findChallenge, parseChallenges } from './challenge.ts';
import { deniedFinding, realmFinding, redirectFinding } from './findings.ts';
import { type Recorder, type TokenAccess, berthDiagnosis, describe, ociErrorText } from './recorder.ts';
import { judgeRealm } from './urls.ts';
import type { Exchange } from './types.ts';

/** Credentials as given on the command line. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

const isRedirect = (status: number | undefined): boolean => status !== undefined && status >= 300 && status < 400;

interface TokenBody {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
}

function parseToken(ex: Exchange): TokenBody | undefined {
  if (ex.status !== 200) return undefined;
  try {
    const body = JSON.parse(ex.body ?? '') as TokenBody;
    return body.token || body.access_token ? body : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fetches a token for `scope` from the realm of `challenge` (a `WWW-Authenticate` value): first
 * the OAuth2 POST containerd tries, then the GET with Basic auth every client supports. Sets
 * `rec.authorization` on success and returns whether a token was obtained.
 */
export async function fetchToken(rec: Recorder, challengeHeader: string, scope: string, creds: Credentials | undefined): Promise<boolean> {
  const bearer = findChallenge(challengeHeader, 'bearer');
  const realm = bearer?.params['realm'];
  if (!bearer || !realm) return false;
  const service = bearer.params['service'];
  const judged = judgeRealm(realm, rec.target);
  for (const p of judged.problems) rec.note('realm', 'token realm', false, p);
  const realmEvidence = [`challenge: Bearer realm="${realm}"${service ? `,service="${service}"` : ''}`];
  if (judged.mechanisms.includes('M11')) {
    // Not an absolute URL: nothing a client could request.
    rec.add(realmFinding(realm, judged.mechanisms, judged.problems, rec.target, rec.info, realmEvidence, false));
    return false;
  }
  let token: TokenBody | undefined;
  let last: Exchange | undefined;
  if (creds) {
    const form = new URLSearchParams({ grant_type: 'password', client_id: 'berth-doctor', username: creds.username, password: creds.password, scope });
    if (service) form.set('service', service);
    const post = await rec.request('token-post', 'token (POST, OAuth2 password grant)', {
      method: 'POST',
      url: realm,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: Buffer.from(form.toString()),
    }, (ex) => ({ ok: ex.status === 200 ? true : null, note: ex.status === 200 ? undefined : 'clients fall back to GET' }));
    if (isRedirect(post.status)) rec.add(redirectFinding('the token endpoint', post.status!, post.headers['location'], [describe(post)]));
    token = parseToken(post);
    last = post;
  }
  if (!token) {
    const query = new URLSearchParams();
    if (service) query.set('service', service);
    query.set('scope', scope);
    const get = await rec.request('token-get', `token (GET, ${creds ? 'Basic' : 'anonymous'})`, {
      method: 'GET',
      url: `${realm}${realm.includes('?') ? '&' : '?'}${query}`,
      authorization: creds ? basicHeader(creds) : undefined,
    }, (ex) => ({ ok: ex.status === 200 }));
    if (isRedirect(get.status)) rec.add(redirectFinding('the token endpoint', get.status!, get.headers['location'], [describe(get)]));
    if (get.error && !get.error.code.startsWith('ERR_TLS') && !/CERT/.test(get.error.code)) {
      rec.add({
        mechanism: 'M2',
        severity: 'problem',
        title: `token realm ${realm} is unreachable`,
        evidence: [describe(get)],
        fix: 'The realm must be the public token URL: set it from the configured external URL (Berth `externalURL`, Distribution `auth.token.realm`, Harbor `external_url`), and forward `Host $http_host` so registries deriving it from Host see the public name.',
        clients: ['containerd', 'docker', 'containers-image'],
      });
    }
    token = parseToken(get);
    last = get;
    if (!token && get.status === 401 && creds) {
      rec.add({ mechanism: 'AUTH', severity: 'problem', title: `the token endpoint rejected the credentials of "${creds.username}"`, evidence: [describe(get)], fix: 'Check the username and password (or token); if they work inside the network, check that the proxy forwards Authorization to the token endpoint.', clients: ['containerd', 'docker', 'containers-image'] });
    }
  }
  // A realm already judged wrong explains a failed token request (and taints a successful one).
  if (judged.mechanisms.length > 0) {
    rec.add(realmFinding(realm, judged.mechanisms, judged.problems, rec.target, rec.info, [...realmEvidence, ...(last ? [describe(last)] : [])], token !== undefined));
  }
  if (!token) return false;
  const value = (token.token ?? token.access_token)!;
  rec.authorization = `Bearer ${value}`;
  rec.tokenAccess = tokenAccess(value);
  const missing = missingActions(rec.tokenAccess, scope);
  if (missing) rec.note('token-scope', 'token scope', false, `asked for ${scope}; ${grantText(rec.tokenAccess!)}`);
  rec.info.tokenExpiresIn = token.expires_in ?? 60;
  if (token.issued_at) {
    const skew = (Date.parse(token.issued_at) - Date.now()) / 1000;
    if (Number.isFinite(skew) && Math.abs(skew) > 60 && rec.info.clockSkewSeconds === undefined) rec.info.clockSkewSeconds = Math.round(skew);
  }
  return true;
}

/**
 * Explains a 401 to a request that carried credentials the registry just issued or accepted.
 * Berth says what happened (contract B); elsewhere a challenge without `error=` means no
 * Authorization header arrived (M5), `invalid_token` means it arrived but was refused.
 */
export function explainAuthenticated401(rec: Recorder, ex: Exchange, what: string): void {
  const diagnosis = berthDiagnosis(ex);
  const challenges = parseChallenges(ex.headers['www-authenticate']);
  const error = challenges.find((c) => c.params['error'])?.params['error'];
  const evidence = [describe(ex)];
  if (diagnosis) evidence.push(`Berth diagnosis: ${diagnosis.code}${diagnosis.message ? ` — ${diagnosis.message}` : ''}`);
  if (diagnosis?.code === 'token-expired' || error === 'invalid_token') {
    rec.add({
      mechanism: diagnosis?.code === 'token-expired' ? 'M9' : 'M11',
      severity: 'problem',
      title: `${what}: the registry refused a token it had just issued (${diagnosis?.code ?? error})`,
      evidence,
      fix: 'Check the clocks of the registry and the token service (NTP), and that the token service and registry share the signing key and `service` name.',
      clients: ['containerd', 'docker', 'containers-image'],
    });
    return;
  }
  if (error === 'insufficient_scope' && !diagnosis) {
    // The token arrived and was read: it just does not allow this (the token service granted less).
    explainDenied(rec, ex, ['the challenge says error="insufficient_scope": the token arrived, but does not grant this request']);
    return;
  }
  if (rec.authorization?.startsWith('Bearer') && challenges.some((c) => c.scheme === 'basic') && !challenges.some((c) => c.scheme === 'bearer')) {
    rec.add({ mechanism: 'M11', severity: 'problem', title: `${what}: a Basic challenge answered a Bearer token`, evidence, fix: 'Something in front of the registry does its own basic auth (`auth_basic`): remove it for /v2/ and the token path; the registry must answer with a complete Bearer challenge.', clients: ['containerd', 'docker', 'containers-image'] });
    return;
  }
  rec.add({
    mechanism: 'M5',
    severity: 'problem',
    title: `${what}: credentials were sent but the registry saw none`,
    evidence: [...evidence, 'the challenge carries no error="invalid_token": the request arrived without an Authorization header'],
    fix: 'Remove `proxy_set_header Authorization "";` (or any header filter that drops Authorization) and any `auth_basic` on /v2/ and the token path; nginx forwards Authorization by default.',
    clients: ['containerd', 'docker', 'containers-image'],
  });
}

/**
 * The credentials work but may not push to the probe repository: a 403 (Berth and Distribution say
 * `DENIED`), or a 401 `insufficient_scope` to a token the token service issued with fewer actions.
 */
export function explainDenied(rec: Recorder, ex: Exchange, extra: readonly string[] = []): void {
  const evidence = [describe(ex)];
  const text = ociErrorText(ex);
  if (text) evidence.push(`the registry says ${text}`);
  evidence.push(...extra);
  if (rec.tokenAccess) evidence.push(`the token service was asked for repository:${rec.repository}:pull,push; ${grantText(rec.tokenAccess)}`);
  rec.add(deniedFinding(rec.username ?? 'anonymous', rec.repository, evidence, rec.info.kind, text));
}

/** The `access` claim of a JWT bearer token (Docker token spec), read without verifying it. */
export function tokenAccess(token: string): TokenAccess[] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { access?: unknown };
    if (!Array.isArray(claims.access)) return undefined;
    return claims.access.filter((a): a is TokenAccess =>
      typeof a === 'object' && a !== null && typeof (a as TokenAccess).type === 'string' && typeof (a as TokenAccess).name === 'string' && Array.isArray((a as TokenAccess).actions));
  } catch {
    return undefined;
  }
}

/** `the token grants repository:a/b:pull` or `the token grants nothing`. */
export function grantText(access: readonly TokenAccess[]): string {
  return access.length === 0 ? 'the token grants nothing' : `the token grants ${access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ')}`;
}

/** Whether a decoded token lacks an action `scope` (`type:name:actions`, several space-separated) asked for. */
export function missingActions(access: readonly TokenAccess[] | undefined, scope: string): boolean {
  if (!access) return false;
  return scope.split(' ').filter(Boolean).some((entry) => {
    const first = entry.indexOf(':');
    const last = entry.lastIndexOf(':');
    if (first < 0 || last <= first) return false;
    const [type, name] = [entry.slice(0, first), entry.slice(first + 1, last)];
    const granted = access.filter((a) => a.type === type && a.name === name).flatMap((a) => a.actions);
    return entry.slice(last + 1).split(',').some((action) => !granted.includes(action) && !granted.includes('*'));
  });
}
