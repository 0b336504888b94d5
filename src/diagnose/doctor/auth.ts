// Getting credentials the way clients do: Basic, or a Bearer token by POST (OAuth2) then GET.
import { findChallenge, parseChallenges } from './challenge.ts';
import { redirectFinding } from './findings.ts';
import { type Recorder, berthDiagnosis, describe } from './recorder.ts';
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
  for (const p of judgeRealm(realm, rec.target).problems) rec.note('realm', 'token realm', false, p);
  let token: TokenBody | undefined;
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
    if (!token && get.status === 401 && creds) {
      rec.add({ mechanism: 'AUTH', severity: 'problem', title: `the token endpoint rejected the credentials of "${creds.username}"`, evidence: [describe(get)], fix: 'Check the username and password (or token); if they work inside the network, check that the proxy forwards Authorization to the token endpoint.', clients: ['containerd', 'docker', 'containers-image'] });
    }
  }
  if (!token) return false;
  rec.authorization = `Bearer ${token.token ?? token.access_token}`;
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
