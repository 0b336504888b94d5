// The push/pull walk: ping, challenge, token, blob upload, manifest, pull (cleanup.ts deletes it all again).
import { createHash, randomBytes } from 'node:crypto';
import { type Credentials, basicHeader, explainAuthenticated401, explainDenied, fetchToken } from './auth.ts';
import { findChallenge } from './challenge.ts';
import { type Made, onTypedOrigin } from './cleanup.ts';
import { follow } from './follow.ts';
import { redirectFinding, tlsFinding } from './findings.ts';
import { peerCertificate } from './probe.ts';
import { type Recorder, describe, expect, inform, ociErrorCode } from './recorder.ts';
import type { Exchange } from './types.ts';

const EMPTY_CONFIG = Buffer.from('{}');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const digestOf = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const isRedirect = (ex: Exchange): boolean => ex.status !== undefined && ex.status >= 300 && ex.status < 400;

/** Why the walk stopped early, if it did: `untestable` maps to exit code 2. */
export type WalkEnd = 'done' | 'problem' | 'untestable';

/** Connection-level failure of the first request: TLS or network; always ends the run. */
async function connectionFailure(rec: Recorder, ex: Exchange): Promise<void> {
  const code = ex.error!.code;
  const evidence = [describe(ex)];
  if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ERR_SSL|EPROTO|ALTNAME/.test(code)) {
    // A certificate was presented but refused: read it once more, unverified, to say what is wrong with it.
    const cert = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code) ? await peerCertificate(ex.url, rec.config.timeoutMs) : undefined;
    rec.add(tlsFinding(code, ex.error!.message, rec.target.authority, evidence, cert));
  } else {
    const fix = code === 'ETIMEDOUT'
      ? 'Nothing answered in time: check the address, firewalls, and the proxy timeouts (`proxy_connect_timeout`, `proxy_read_timeout 900s;`).'
      : 'Check the URL, DNS and that the proxy or registry listens there.';
    rec.add({ mechanism: code === 'ETIMEDOUT' ? 'M8' : 'NET', severity: 'problem', title: `cannot reach ${rec.target.base} (${code})`, evidence, fix, clients: ['containerd', 'docker', 'containers-image'] });
  }
}

/** GET /v2/ and the challenge; detects redirects, clock skew, the registry kind and auth scheme. */
export async function ping(rec: Recorder): Promise<WalkEnd> {
  const ex = await rec.request('ping', 'ping GET /v2/', { method: 'GET', url: rec.url('/v2/') }, (e) => ({ ok: e.status === 200 || e.status === 401 }));
  if (ex.error) {
    await connectionFailure(rec, ex);
    return 'untestable';
  }
  if (ex.headers['date'] && ex.receivedAt) {
    const skew = Math.round((Date.parse(ex.headers['date']) - ex.receivedAt) / 1000);
    if (Number.isFinite(skew)) rec.info.clockSkewSeconds = skew;
  }
  if (ex.headers['docker-distribution-api-version']) rec.info.kind = 'distribution';
  if (isRedirect(ex)) {
    rec.add(redirectFinding('GET /v2/', ex.status!, ex.headers['location'], [describe(ex)]));
    return 'problem';
  }
  const header = ex.headers['www-authenticate'];
  const bearer = findChallenge(header, 'bearer');
  if (ex.status === 200) rec.info.auth = 'none';
  else if (bearer) {
    rec.info.auth = 'bearer';
    rec.info.realm = bearer.params['realm'];
    rec.info.service = bearer.params['service'];
    const missing = ['realm', 'service'].filter((p) => !bearer.params[p]);
    if (missing.length > 0) {
      rec.add({ mechanism: 'M11', severity: missing.includes('realm') ? 'problem' : 'warning', title: `Bearer challenge without ${missing.join(' and ')}`, evidence: [describe(ex)], fix: 'The registry must answer 401 with `Bearer realm="<absolute token URL>",service="<name>"` (and `scope` on repository requests); configure its token realm and service.', clients: ['containerd', 'docker', 'containers-image'] });
    }
  } else if (findChallenge(header, 'basic')) rec.info.auth = 'basic';
  else if (ex.status === 401) {
    rec.info.auth = 'other';
    rec.add({ mechanism: 'M11', severity: 'problem', title: '401 on /v2/ without a usable challenge', evidence: [describe(ex)], fix: 'Answer 401 with a `WWW-Authenticate: Bearer realm=…,service=…` (or Basic) challenge; a proxy answering /v2/ itself must pass the registry’s header through.', clients: ['containerd', 'docker', 'containers-image'] });
  } else {
    rec.add({ mechanism: 'NET', severity: 'problem', title: `GET /v2/ answered ${ex.status}: not a registry API here`, evidence: [describe(ex)], fix: 'Point the proxy’s /v2/ location at the registry, or use the registry’s URL.', clients: ['containerd', 'docker', 'containers-image'] });
    return 'untestable';
  }
  return 'done';
}

/** Contract A: Berth's echo endpoint says what reached it. Without it the kind stays as detected. */
export async function echo(rec: Recorder, id: string, withAuth: boolean): Promise<void> {
  const sent = withAuth ? rec.authorization : undefined;
  const ex = await rec.request(id, `Berth echo${sent ? ' (with credentials)' : ''}`, { method: 'GET', url: rec.url('/v2/_berth/echo'), authorization: sent }, inform);
  if (ex.status !== 200) return;
  let body: { berth?: { version?: string; externalURLs?: string[]; tokenTTLSeconds?: number }; received?: { host?: string | null; origin?: { scheme?: string; host?: string }; authorization?: { present?: boolean } } };
  try {
    body = JSON.parse(ex.body ?? '') as typeof body;
  } catch {
    return;
  }
  if (!body.berth) return;
  rec.info.kind = 'berth';
  rec.info.version = body.berth.version;
  if (Array.isArray(body.berth.externalURLs)) rec.info.externalURLs = body.berth.externalURLs.filter((u) => typeof u === 'string');
  if (sent && body.received?.authorization?.present === false) {
    rec.add({
      mechanism: 'M5',
      severity: 'problem',
      title: 'the Authorization header is stripped before it reaches Berth',
      evidence: [`${describe(ex)}: sent Authorization (${ex.auth}); Berth reports authorization.present: false`],
      fix: 'Remove `proxy_set_header Authorization "";` (or the filter dropping it) and any `auth_basic` for /v2/ and /service/; nginx forwards Authorization by default.',
      clients: ['containerd', 'docker', 'containers-image'],
    });
  }
  const host = body.received?.host;
  if (!withAuth && host && host.toLowerCase() !== rec.target.authority) {
    rec.add({
      mechanism: 'M2',
      severity: 'info',
      title: `the proxy rewrites Host: Berth received "${host}" for "${rec.target.authority}"`,
      evidence: [describe(ex)],
      fix: 'Berth copes (relative upload URLs, realm from externalURL), but other registries behind this proxy would not: prefer `proxy_set_header Host $http_host;`.',
      clients: [],
    });
  }
}

/** The probe image: one random layer, the empty config. */
export interface ProbeImage {
  readonly layer: Buffer;
  readonly layerDigest: string;
  readonly manifest: Buffer;
  readonly manifestDigest: string;
}

export function makeProbeImage(): ProbeImage {
  const layer = randomBytes(2048);
  const layerDigest = digestOf(layer);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(EMPTY_CONFIG), size: EMPTY_CONFIG.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    annotations: { 'org.opencontainers.image.description': 'berth doctor probe; deleted after the run' },
  }));
  return { layer, layerDigest, manifest, manifestDigest: digestOf(manifest) };
}

/**
 * Anonymous HEAD on a blob (the scoped challenge), then credentials as the challenge asks.
 * Returns 'untestable' when credentials are needed but missing or refused.
 */
export async function authenticate(rec: Recorder, repo: string, image: ProbeImage, creds: Credentials | undefined): Promise<WalkEnd> {
  const head = await rec.request('head-anonymous', 'HEAD blob without credentials', { method: 'HEAD', url: rec.url(`/v2/${repo}/blobs/${image.layerDigest}`) }, (e) => ({ ok: e.status === 401 || e.status === 404 }));
  const pingHeader = rec.steps.find((s) => s.id === 'ping')?.exchange?.headers['www-authenticate'];
  const header = head.status === 401 ? head.headers['www-authenticate'] : pingHeader;
  const bearer = findChallenge(header, 'bearer');
  if (head.status === 401 && bearer && !bearer.params['scope']) {
    rec.add({ mechanism: 'M11', severity: 'warning', title: 'repository challenge without scope', evidence: [describe(head)], fix: 'Include `scope="repository:<name>:pull"` (or `pull,push`) in challenges to repository requests, so clients can ask for the right token.', clients: ['containerd'] });
  }
  if (head.status !== 401 && rec.info.auth === 'none') {
    if (creds) rec.note('auth', 'credentials', null, 'GET /v2/ and the blob HEAD need no credentials: none sent (as clients do)');
    return 'done';
  }
  if (!creds) {
    rec.note('auth', 'credentials', false, 'the registry asks for credentials: pass --username/--password (or --token)');
    return 'untestable';
  }
  if (bearer) {
    if (!(await fetchToken(rec, header!, `repository:${repo}:pull,push`, creds))) {
      return rec.findings.some((f) => f.severity === 'problem' && f.mechanism !== 'AUTH') ? 'problem' : 'untestable';
    }
    return login(rec, creds);
  }
  if (rec.info.auth === 'none') {
    rec.add({
      mechanism: 'M5',
      severity: 'problem',
      title: 'GET /v2/ answers 200 without a challenge, but repository requests demand credentials',
      evidence: [describe(rec.steps.find((s) => s.id === 'ping')!.exchange!), describe(head)],
      fix: 'Clients only send credentials after a challenge on /v2/: remove whatever answers /v2/ itself (a `location = /v2/ { return 200; }`, a proxy doing its own auth or injecting Authorization).',
      clients: ['containerd', 'docker', 'containers-image'],
    });
  }
  rec.authorization = basicHeader(creds);
  return login(rec, creds);
}

/**
 * `GET /v2/` with the credentials, as `docker login` does. A refused Basic login is ambiguous
 * (wrong password, or a proxy dropping the header): the push cannot be tested. A refused fresh
 * token is not: the token service just accepted the password, so the header got lost (M5).
 */
async function login(rec: Recorder, creds: Credentials): Promise<WalkEnd> {
  const ex = await rec.request('login', 'login GET /v2/ with credentials', { method: 'GET', url: rec.url('/v2/'), authorization: rec.authorization }, expect(200));
  if (ex.status !== 401) return 'done';
  if (rec.authorization?.startsWith('Bearer')) {
    explainAuthenticated401(rec, ex, 'GET /v2/ with a fresh token');
    return 'problem';
  }
  rec.add({
    mechanism: 'AUTH',
    severity: 'problem',
    title: `the registry refused the credentials of "${creds.username}"`,
    evidence: [describe(ex)],
    fix: 'Check the username and password. If they work when you bypass the proxy, the proxy drops the Authorization header: remove `proxy_set_header Authorization "";` and any `auth_basic` on /v2/.',
    clients: ['containerd', 'docker', 'containers-image'],
  });
  return 'untestable';
}

/** Explains a refused push request: 403 (not allowed here) or 401 (why the credentials did not count). */
function explainRefused(rec: Recorder, ex: Exchange, what: string): void {
  if (ex.status === 403) explainDenied(rec, ex);
  else if (ex.status === 401) explainAuthenticated401(rec, ex, what);
}

/**
 * Push: HEAD, POST, PATCH, PUT for the layer; HEAD and a monolithic PUT for the config; then the
 * manifest. Everything stored is recorded in `made`, so the end of the run can delete it again.
 */
export async function push(rec: Recorder, repo: string, image: ProbeImage, tag: string, made: Made): Promise<boolean> {
  const head = await rec.request('head-blob', 'HEAD blob', { method: 'HEAD', url: rec.url(`/v2/${repo}/blobs/${image.layerDigest}`), authorization: rec.authorization }, expect(404, 200));
  // A 403 here (a HEAD has no body to say why) is explained by the POST that follows, which says more.
  if (head.status === 401) explainAuthenticated401(rec, head, 'HEAD blob');
  if (!(await uploadBlob(rec, repo, 'layer', image.layer, image.layerDigest, true, made))) return false;
  const configDigest = digestOf(EMPTY_CONFIG);
  // Other artifacts of the repository may share the empty config: it is deleted only if this run brought it.
  const config = await rec.request('head-config', 'HEAD config blob', { method: 'HEAD', url: rec.url(`/v2/${repo}/blobs/${configDigest}`), authorization: rec.authorization }, expect(404, 200));
  const configWasThere = config.status === 200;
  if (!(await uploadBlob(rec, repo, 'config', EMPTY_CONFIG, configDigest, false, made, configWasThere))) return false;
  const put = await rec.request('manifest-put', `PUT manifest :${tag}`, {
    method: 'PUT', url: rec.url(`/v2/${repo}/manifests/${tag}`), authorization: rec.authorization, body: image.manifest, headers: { 'Content-Type': OCI_MANIFEST },
  }, (e) => ({ ok: e.status === 201, note: e.status === 201 && e.headers['docker-content-digest'] !== image.manifestDigest ? `digest ${e.headers['docker-content-digest']} ≠ ${image.manifestDigest}` : undefined }));
  explainRefused(rec, put, 'PUT manifest');
  if (put.status === 201) {
    made.manifest = { digest: put.headers['docker-content-digest'] ?? image.manifestDigest, tag };
    made.stored = true;
  }
  return put.status === 201;
}

/**
 * POST, then PATCH + PUT (chunked style) or a monolithic PUT, following every Location. A stored
 * blob goes into `made` unless `wasThere`; a session left unfinished goes into `made.uploads`.
 */
async function uploadBlob(rec: Recorder, repo: string, what: string, bytes: Buffer, digest: string, patch: boolean, made: Made, wasThere = false): Promise<boolean> {
  const start = rec.url(`/v2/${repo}/blobs/uploads/`);
  const post = await rec.request(`${what}-post`, `POST upload (${what})`, { method: 'POST', url: start, authorization: rec.authorization }, expect(202));
  explainRefused(rec, post, 'POST upload');
  if (isRedirect(post)) rec.add(redirectFinding('POST /v2/…/blobs/uploads/', post.status!, post.headers['location'], [describe(post)]));
  if (post.status !== 202 || !post.headers['location']) return false;
  let location = post.headers['location'];
  let from = start;
  const unfinished = (): false => {
    made.uploads.push(onTypedOrigin(rec, location, from));
    return false;
  };
  const octets = { 'Content-Type': 'application/octet-stream' };
  if (patch) {
    const ex = await follow(rec, { id: `${what}-patch`, title: `PATCH ${what} chunk`, method: 'PATCH', reference: location, from, body: bytes, headers: octets, verdict: expect(202) });
    if (ex.status !== 202 || !ex.headers['location']) {
      if (ex.status === 404) noteLostUpload(rec, ex);
      if (ex.status === 403) explainDenied(rec, ex);
      return ex.status === 404 ? false : unfinished();
    }
    location = ex.headers['location'];
    from = ex.url;
  }
  const put = await follow(rec, {
    id: `${what}-put`, title: `PUT ${what} ?digest`, method: 'PUT', reference: location, from, query: { digest },
    body: patch ? undefined : bytes, headers: patch ? undefined : octets, verdict: expect(201),
  });
  if (put.status === 404) noteLostUpload(rec, put);
  if (put.status === 403) explainDenied(rec, put);
  if (put.status !== 201) return put.status === 404 ? false : unfinished();
  made.stored = true;
  if (!wasThere) made.blobs.push({ digest, what });
  return true;
}

function noteLostUpload(rec: Recorder, ex: Exchange): void {
  const code = ociErrorCode(ex);
  if (code !== 'BLOB_UPLOAD_UNKNOWN' && code !== 'BLOB_UPLOAD_INVALID') return;
  rec.add({ mechanism: 'M10', severity: 'problem', title: `the upload session vanished mid-upload (${code})`, evidence: [describe(ex)], fix: 'Replicas behind one name must share upload state and storage (Distribution: the same `http.secret` and storage on every replica; or sticky sessions).', clients: ['containerd', 'docker', 'containers-image'] });
}

/** Pull: the manifest by tag, then the layer (a redirect to storage is followed without credentials). */
export async function pull(rec: Recorder, repo: string, image: ProbeImage, tag: string): Promise<boolean> {
  const man = await rec.request('manifest-get', `GET manifest :${tag}`, { method: 'GET', url: rec.url(`/v2/${repo}/manifests/${tag}`), authorization: rec.authorization, headers: { Accept: OCI_MANIFEST } }, (e) => ({ ok: e.status === 200 && e.bodyDigest === image.manifestDigest }));
  let blob = await rec.request('blob-get', 'GET layer blob', { method: 'GET', url: rec.url(`/v2/${repo}/blobs/${image.layerDigest}`), authorization: rec.authorization }, (e) => ({ ok: isRedirect(e) ? null : e.status === 200 && e.bodyDigest === image.layerDigest }));
  if (isRedirect(blob) && blob.headers['location']) {
    blob = await rec.request('blob-get-redirect', 'GET layer at the redirect (no credentials, as clients do)', { method: 'GET', url: new URL(blob.headers['location'], blob.url).toString() }, (e) => ({ ok: e.status === 200 && e.bodyDigest === image.layerDigest }));
  }
  return man.status === 200 && blob.status === 200;
}
