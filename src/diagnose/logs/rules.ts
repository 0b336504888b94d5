/**
 * One rule per proxy mechanism (M1–M11 of design/PROXIES.md), plus quota refusals, which clients
 * report like a permission problem. Each rule looks at one session and names the failing step it
 * explains. Rules run in order of specificity; a request explained by an earlier rule is not
 * explained again by a vaguer one, and what no rule explains is still reported.
 */
import { hasDefaultPort, isInternalHost, isRequest, isUploadOutsideV2, scopeOf, stepOf, type LogEvent, type RequestEvent } from './event.ts';
import { isQuotaRefusal, quotaFigures, quotaWords } from './quota.ts';
import type { Session } from './sessions.ts';
import { cite, describe, isContinuation, isFailure, isRedirect, lineWithHost, minutes, registryHosts, requestsOf, sameRequest, shortPath, type Evidence } from './steps.ts';

/** A proxy mechanism of design/PROXIES.md; `quota`: the project's storage quota refused the push; `other`: none of these. */
export type MechanismId = 'M1' | 'M2' | 'M3' | 'M4' | 'M5' | 'M6' | 'M7' | 'M8' | 'M9' | 'M10' | 'M11' | 'quota' | 'other';

export interface Finding {
  mechanism: MechanismId;
  session: number;
  title: string;
  evidence: Evidence[];
  explanation: string;
  /** Exact changes: nginx directives, Berth settings. */
  fix: string[];
  /**
   * Other mechanisms the same lines fit as well, when the logs cannot tell them apart (what they
   * do not record is then named in the explanation, with how to find it out). Absent: none.
   */
  alternatives?: MechanismId[];
}

interface Ctx {
  s: Session;
  reqs: (RequestEvent & { status: number })[];
  claimed: Set<LogEvent>;
  found: Finding[];
}

type Rule = (c: Ctx) => void;

const BERTH_URL_FIX = 'Berth: set `externalURL: [https://<the name clients use>]` (env BERTH_EXTERNAL_URL) and `trustedProxies: [<proxy address>]`; Berth then builds the realm from configuration and keeps upload Locations relative';

function report(c: Ctx, mechanism: MechanismId, title: string, lines: LogEvent[], explanation: string, fix: string[]): void {
  const uniq = [...new Set(lines)].sort((a, b) => a.time - b.time || (a.file === b.file ? a.line - b.line : 0));
  for (const e of uniq) c.claimed.add(e);
  const existing = c.found.find((f) => f.mechanism === mechanism);
  if (existing) {
    existing.evidence.push(...uniq.map(cite).filter((ev) => !existing.evidence.some((x) => x.file === ev.file && x.line === ev.line)));
    return;
  }
  c.found.push({ mechanism, session: c.s.id, title, evidence: uniq.map(cite), explanation, fix });
}

/** Failing requests not yet explained, optionally restricted. */
function open(c: Ctx, pred: (e: RequestEvent & { status: number }) => boolean) {
  return c.reqs.filter((e) => !c.claimed.has(e) && isFailure(c.s, e) && pred(e));
}

const uploadStart = (c: Ctx, before: number) => c.reqs.find((e) => stepOf(e) === 'upload-start' && e.status === 202 && e.time <= before);
const tokenGrants = (c: Ctx) => c.reqs.filter((e) => stepOf(e) === 'token' && e.status === 200);
const text = (e: LogEvent) => `${e.error ?? ''} ${e.message ?? ''} ${e.diagnosis?.code ?? ''}`;

/** A push refused by the project's storage quota: DENIED, but not a permission problem. */
const quotaExceeded: Rule = (c) => {
  for (const e of open(c, (r) => r.status >= 400 && r.status < 500)) {
    const same = sameRequest(c.s, e);
    if (!same.some(isQuotaRefusal)) continue;
    const words = quotaWords(quotaFigures(same), `${e.method} ${shortPath(e.path)}`, c.s.repository);
    report(c, 'quota', words.title, same, words.explanation, words.fix);
  }
};

const m7BodyTooLarge: Rule = (c) => {
  const hits = open(c, (e) => e.status === 413);
  const errs = c.s.events.filter((e) => e.role === 'proxy-error' && /too large (chunked )?body/.test(e.message ?? ''));
  if (!hits.length && !errs.length) return;
  const first = hits[0] ?? errs[0]!;
  const bytes = errs.find((e) => e.bodyBytes)?.bodyBytes;
  report(c, 'M7', `Body too large for the proxy: 413 on ${first.method} ${shortPath(first.path ?? '')}${bytes ? ` (${(bytes / 1048576).toFixed(1)} MiB)` : ''}`, [...hits, ...errs.slice(0, 3)],
    `The proxy refused the upload body before it reached the registry${errs.length ? ' (nginx: "client intended to send too large body")' : ''}. nginx allows 1 MiB by default; layers are larger. Monolithic clients send a whole layer in one PUT, so the registry cannot work around it.`,
    ['nginx: `client_max_body_size 0;` in the server/location that proxies /v2/', 'a CDN or load balancer in front (e.g. a 100 MB limit) must not cap /v2/ uploads: bypass it for the registry host']);
};

/**
 * A 499 on a request without a body (HEAD, GET, DELETE, the POST opening an upload) is a client that
 * gave up or cancelled — usually because another step failed — not a slow upload.
 */
const clientGaveUp = (r: RequestEvent & { status: number }) =>
  r.status === 499 && (r.method === 'HEAD' || r.method === 'GET' || r.method === 'DELETE' || (stepOf(r) === 'upload-start' && !/[?&]digest=/.test(r.path)));

const m8Timeouts: Rule = (c) => {
  for (const e of open(c, (r) => [408, 411, 499, 502, 504].includes(r.status) && !clientGaveUp(r))) {
    const errs = c.s.events.filter((x) => x.role === 'proxy-error' && x.path === e.path && Math.abs(x.time - e.time) < 5000);
    const what =
      e.status === 411 ? { t: '411 Length Required: the proxy refused a chunked body', fix: ['nginx: `chunked_transfer_encoding on;` and `proxy_http_version 1.1;`', 'nginx: `proxy_request_buffering off;`'] }
      : e.status === 504 || e.status === 502 ? { t: `${e.status}: the proxy gave up waiting for the registry`, fix: ['nginx: `proxy_read_timeout 900;` and `proxy_send_timeout 900;`', 'nginx: `proxy_request_buffering off;` `proxy_buffering off;` so the registry receives the body while it streams'] }
      : e.status === 499 ? { t: '499: the client closed the connection before the proxy answered', fix: ['nginx: `proxy_request_buffering off;` (nginx buffers the whole body before sending it upstream, the client times out waiting)', 'nginx: `proxy_read_timeout 900;` `proxy_send_timeout 900;`'] }
      : { t: '408: the proxy timed out reading the request body', fix: ['nginx: `client_body_timeout 300;`', 'nginx: `proxy_request_buffering off;`'] };
    report(c, 'M8', `Proxy buffering/timeout: ${what.t} on ${e.method} ${shortPath(e.path)}`, [e, ...errs],
      'Large uploads need a proxy that streams request bodies (HTTP/1.1, chunked, no request buffering) and long timeouts; defaults (60 s, buffering on) break big or slow layers.', what.fix);
  }
};

const m10UploadLost: Rule = (c) => {
  for (const e of open(c, (r) => r.status === 404 && isContinuation(r))) {
    const same = sameRequest(c.s, e);
    const t = same.map(text).join(' ');
    const known = /BLOB_UPLOAD_(UNKNOWN|INVALID)|blob upload (unknown|invalid)|upload-session|upload-bytes-lost/i.test(t);
    const start = uploadStart(c, e.time);
    if (!known && !start) continue;
    const why = /invalid secret/i.test(t)
      ? 'Distribution signs upload state (`_state`) with http.secret; this replica has a different secret (each replica generated its own), so it does not recognise the upload another replica began.'
      : /never-issued/.test(t)
        ? 'Berth never issued this upload id: the request reached another registry or a replica that does not share Berth\'s stores.'
        : /upload-session-ended/.test(t)
          ? 'The upload session had ended (completed, cancelled or expired) or its metadata was lost (e.g. a restart without persistent storage) before the client continued it.'
          : /bytes-lost/.test(t)
            ? 'The session is known but its bytes are gone from storage: the data directory or bucket is not the one the upload began on.'
            : 'The registry does not know an upload session it created moments before: typical when replicas behind a load balancer do not share upload state, or the registry restarted and lost it.';
    report(c, 'M10', `Upload session unknown mid-push: 404 BLOB_UPLOAD_UNKNOWN on ${e.method} ${shortPath(e.path)}`, [...(start ? [start] : []), e, ...same], why,
      ['Berth: run every replica on the same PostgreSQL metadata and S3 storage (or one replica with a persistent data directory); `uploads.ttl` longer than your slowest push',
        'CNCF Distribution/Harbor: the same `http.secret` on every replica and shared storage, or sticky sessions on the load balancer']);
  }
};

const m9TokenExpired: Rule = (c) => {
  const grants = tokenGrants(c);
  for (const e of open(c, (r) => r.status === 401 && (isContinuation(r) || stepOf(r) === 'manifest-put' || stepOf(r) === 'upload-start'))) {
    const same = sameRequest(c.s, e);
    const t = same.map(text).join(' ');
    const bearerBefore = c.reqs.some((r) => r.time < e.time && r.status < 300 && r.auth === 'bearer' && stepOf(r) !== 'token');
    const expired = /token-expired|expired/i.test(t) || (/invalid token/i.test(t) && bearerBefore);
    if (!expired) continue;
    const grant = [...grants].reverse().find((g) => g.time <= e.time);
    report(c, 'M9', `Token expired during the upload: 401 on ${e.method} ${shortPath(e.path)}${grant ? ` ${minutes(e.time - grant.time)} after the token was issued` : ''}`, [...(grant ? [grant] : []), ...same],
      'The bearer token was valid when the upload began but expired before the last request of the push; the registry rejects it as an invalid token. Slow links and large layers make pushes outlast the token lifetime.',
      ['Berth: `auth.tokenTTL: 1h` (env BERTH_TOKEN_TTL) — longer than the longest push',
        'Harbor: raise "Token Expiration" in the configuration; CNCF Distribution: raise the token issuer\'s expiration']);
  }
};

const m4OutsideV2: Rule = (c) => {
  for (const e of open(c, (r) => isUploadOutsideV2(r.path))) {
    report(c, 'M4', `Upload URL outside /v2/: ${e.method} ${shortPath(e.path)} → ${e.status}`, [...(uploadStart(c, e.time) ? [uploadStart(c, e.time)!] : []), e],
      'The upload Location pointed outside /v2/. The classic Docker client only attaches registry credentials to /v2/ URLs, so the continuation arrived without them.',
      ['nginx: remove `proxy_redirect`/`rewrite` rules that move upload Locations out of /v2/ (`proxy_redirect off;`)', 'keep the registry mounted at / so every upload URL stays under /v2/']);
  }
};

const m11ChallengeShape: Rule = (c) => {
  if (c.s.kind !== 'push') return;
  // Only GET token requests show their scope (containerd's OAuth POST carries it in the body).
  const grants = tokenGrants(c).filter((g) => g.method === 'GET');
  if (!grants.length || grants.some((g) => /push/.test(scopeOf(g) ?? ''))) return;
  const denied = open(c, (r) => (r.status === 401 || r.status === 403) && ['upload-start', 'upload-chunk', 'upload-complete', 'manifest-put'].includes(stepOf(r)))
    .filter((r) => !sameRequest(c.s, r).some((o) => o.auth === 'none' || o.diagnosis));
  if (!denied.length) return;
  report(c, 'M11', `Challenge without push scope: tokens requested ${grants.some((g) => scopeOf(g)) ? 'for pull only' : 'without any scope'}, push refused`, [...grants.slice(0, 3), ...denied.slice(0, 3)],
    'The client asks for exactly the scope the 401 challenge names. A challenge without `scope` (or a Basic challenge from a proxy) leaves it with a token that cannot push, and it has no way to upgrade.',
    ['the registry must answer 401 with `WWW-Authenticate: Bearer realm="…",service="…",scope="repository:<name>:pull,push"` (Berth does)', 'nginx: do not replace the challenge (`proxy_hide_header WWW-Authenticate`, `add_header WWW-Authenticate …`) and no `auth_basic` on /v2/']);
};

const M5_FIX = ['nginx: remove `proxy_set_header Authorization "";` (and `more_clear_input_headers Authorization`) from the locations for /v2/ and /service/', 'nginx: no `auth_basic` on /v2/ or /service/ — the registry authenticates', 'check every hop (CDN, ingress, WAF) passes Authorization through unchanged'];

const m5AuthorizationStripped: Rule = (c) => {
  const grants = tokenGrants(c).filter((g) => g.method === 'GET' || g.method === 'POST');
  if (!grants.length) return;
  const firstGrant = grants[0]!;
  const after = c.reqs.filter((r) => r.time >= firstGrant.time && !['ping', 'token'].includes(stepOf(r)) && !clientGaveUp(r));
  if (!after.length || !after.every((r) => r.status === 401) || after.some((r) => r.auth === 'bearer')) return;
  const denied = after.filter((r) => r.status === 401 && !c.claimed.has(r));
  if (denied.length < 2 && grants.length < 2) return;
  report(c, 'M5', 'Authorization header stripped: tokens are granted, yet every authenticated request arrives without credentials (401)', [...grants.slice(0, 2), ...denied.slice(0, 4)],
    'The token service answers (so credentials reach it), but the registry never sees the bearer token the client then sends: a hop between them drops the Authorization header, or does its own basic auth. This cannot be cured on the registry side.',
    M5_FIX);
};

/**
 * Lines showing that some request of the session was sent over plain http: an http:// Location,
 * a redirect (other than a blob GET's storage redirect), nginx's 497, or its error-log note that a
 * plain HTTP request reached the TLS port.
 */
function plainHttpSigns(c: Ctx): LogEvent[] {
  return c.s.events.filter((x) =>
    x.location?.startsWith('http://')
    || (x.status !== undefined && (x.status === 497 || (isRedirect(x.status) && !(x.status === 307 && stepOf(x) === 'blob-get'))))
    || /plain HTTP request.*HTTPS port/i.test(x.message ?? ''));
}

/**
 * M5 without tokens (a registry using Basic auth, or Basic credentials sent to the token endpoint):
 * nginx fills `$remote_user` from the Basic Authorization header it receives, so a proxy line with a
 * user, refused 401 by a registry that logged no credentials for the same request, shows the header
 * was dropped between the two. Counted per request (method and path): the registry must have
 * refused as credential-less at least as many of them as one proxy passed on with a 401, so a wrong
 * password (Distribution: "authentication failure", i.e. credentials arrived) is never taken for it.
 */
const m5BasicStripped: Rule = (c) => {
  if (c.found.some((f) => f.mechanism === 'M5')) return;
  type Req = (typeof c.reqs)[number];
  // Per request (method and path): the proxy's 401s per file, and the registry's 401s, in log order.
  const byRequest = new Map<string, { proxy: Map<string, Req[]>; upstream: Req[] }>();
  for (const r of c.reqs) {
    if (r.status !== 401 || !['proxy', 'registry', 'berth'].includes(r.role)) continue;
    const key = `${r.method} ${r.path}`;
    const g = byRequest.get(key) ?? { proxy: new Map<string, Req[]>(), upstream: [] };
    byRequest.set(key, g);
    if (r.role === 'proxy') g.proxy.set(r.file, [...(g.proxy.get(r.file) ?? []), r]);
    else g.upstream.push(r);
  }
  const pairs: [Req, Req][] = [];
  for (const g of byRequest.values()) {
    const none = g.upstream.filter((r) => r.auth === 'none');
    if (!none.length || none.length < Math.max(...[...g.proxy.values()].map((l) => l.length))) continue;
    for (const list of g.proxy.values()) {
      list.forEach((p, k) => {
        if (!p.user) return;
        // Each hop logs a request when it ends, so the k-th 401 of one is the k-th of the other.
        const twin = g.upstream[k]?.auth === 'none' ? g.upstream[k]! : g.upstream.slice(k).find((r) => r.auth === 'none') ?? none[0]!;
        pairs.push([p, twin]);
      });
    }
  }
  if (!pairs.length) return;
  const users = [...new Set(pairs.map(([p]) => p.user!))];
  const registryWords = pairs.some(([, r]) => r.role === 'registry')
    ? 'the registry logged no credentials on the same requests (Distribution\'s htpasswd check says "invalid authorization credential" when no Basic header arrived; a wrong password reads "authentication failure")'
    : 'Berth logged `auth=none` on the same requests';
  report(c, 'M5', `Authorization header stripped: the proxy received Basic credentials (user ${users.map((u) => `"${u}"`).join(', ')}) on ${pairs.length} request(s) the registry refused as carrying none (401)`, pairs.filter(([p], i) => pairs.findIndex(([q]) => q.method === p.method && q.path === p.path) === i).slice(0, 3).flat(),
    `nginx logged the user (\`$remote_user\`, read from the Basic Authorization header the client sent) on requests answered 401, and ${registryWords}. A hop between nginx's log and the registry drops the Authorization header (\`proxy_set_header Authorization "";\`), or checks Basic auth itself and does not pass it on. This cannot be cured on the registry side.`,
    M5_FIX);
  for (const [p, r] of pairs) c.claimed.add(p).add(r);
};

const m1SchemeRedirect: Rule = (c) => {
  for (const e of open(c, (r) => isContinuation(r) && (isRedirect(r.status) || r.status === 400 || r.status === 497))) {
    const start = uploadStart(c, e.time);
    if (!start) continue;
    // A 400 has many causes (a client hanging up mid-body, among them): it is the scheme only when
    // something shows plain http — what a plain request to the TLS port is answered with.
    const http = e.status === 400 ? plainHttpSigns(c).filter((x) => x !== e) : [];
    if (e.status === 400 && !http.length) continue;
    report(c, 'M1', `Scheme lost: the upload URL sent the client to http://, answered ${e.status} on ${e.method} ${shortPath(e.path)}`, [start, e, ...c.s.events.filter((x) => x.location?.startsWith('http://')), ...http.slice(0, 2)],
      'The upload began over https, but the registry built an absolute upload Location with http:// (TLS ends at an outer proxy and the inner hop did not pass X-Forwarded-Proto https). The client followed it to port 80, where the proxy redirects — and clients do not replay an upload body (or credentials) across a redirect.',
      ['nginx (where TLS ends): `proxy_set_header X-Forwarded-Proto $scheme;`; inner hops: `proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;`', BERTH_URL_FIX, 'CNCF Distribution: `http.relativeurls: true` and `http.host: https://<name>`']);
  }
};

const m6Redirect: Rule = (c) => {
  const hits = open(c, (r) => isRedirect(r.status) && !isContinuation(r));
  if (!hits.length) return;
  const e = hits[0]!;
  report(c, 'M6', `Redirect on the registry API: ${e.status} on ${e.method} ${shortPath(e.path)}`, hits.slice(0, 4),
    'A proxy redirects /v2/ (or the token endpoint). Clients do not follow redirects for pushes the way browsers do: methods, bodies and credentials are lost, and "301 trying to push" follows.',
    ['nginx: no `return 301`/`rewrite … permanent` covering /v2/ or /service/; serve them on the URL clients use (`location /v2/ { proxy_pass …; }`)', 'use the https URL in `docker login` / the client configuration']);
};

/**
 * Harbor in the session: its bundled nginx's lines (a format no other hop writes) or harbor-core's.
 * Its nginx passes on the Host it receives, so a port in the registry's Host was added by a proxy
 * in front of Harbor. That proxy is the client nginx logged when the registry (which reads the
 * first X-Forwarded-For address) names another client, or — without registry lines — when
 * nginx's client is a private address.
 */
function harborFront(s: Session): { front?: string; client?: string } | undefined {
  if (!s.events.some((e) => e.format === 'nginx-harbor' || e.role === 'harbor-core')) return undefined;
  const seen = s.events.find((e) => e.format === 'nginx-harbor' && e.client)?.client ?? s.events.find((e) => e.role === 'proxy' && e.client)?.client;
  const client = s.events.find((e) => e.role === 'registry' && e.client && e.format.startsWith('logrus'))?.client;
  const front = seen && (client ? client !== seen : isInternalHost(seen)) ? seen : undefined;
  return { front, client: front && client ? client : undefined };
}

/** The classic failure: upload started fine, then a continuation arrives with no credentials. */
const m2CredentialsDropped: Rule = (c) => {
  for (const e of open(c, (r) => r.status === 401 && isContinuation(r) && !isUploadOutsideV2(r.path))) {
    const start = uploadStart(c, e.time);
    if (!start) continue;
    const same = sameRequest(c.s, e);
    if (same.some((r) => r.auth === 'bearer' || r.auth === 'basic')) continue;
    const hosts = registryHosts(c.s);
    const portHost = hosts.find(hasDefaultPort);
    const internal = hosts.find(isInternalHost);
    const diag = same.find((r) => r.diagnosis)?.diagnosis;
    const shown = portHost ?? internal;
    const hostLine = shown ? same.find((r) => r.host === shown) ?? lineWithHost(c.s, shown) : undefined;
    const absLoc = c.s.events.find((x) => x.location && /^https?:\/\//.test(x.location));
    const harbor = harborFront(c.s);
    // A registry using Basic auth grants no tokens: the client's credentials are the password.
    const cred = tokenGrants(c).length ? 'token' : 'credentials';
    // Harbor's core answers the 401 itself and says so: cite it beside the proxy's line.
    const coreSays = harbor ? c.s.events.filter((x) => x.role === 'harbor-core' && /unauthori[sz]ed/i.test(x.message ?? '') && Math.abs(x.time - e.time) <= 5000).slice(0, 1) : [];
    const cause = portHost
      ? `the proxy ${harbor ? 'in front of Harbor ' : ''}rewrote Host to ${portHost} (\`$host:$server_port\`)`
      : internal
        ? `the registry saw Host ${internal}, the upstream's own address (nginx's default \`$proxy_host\`)`
        : absLoc
          ? `the upload Location ${absLoc.location} names another host/port/scheme`
          : 'the upload URL\'s host, port or scheme differs from the one the client authenticated against';
    const name = portHost?.replace(/:\d+$/, '');
    const harborWhy = harbor && portHost
      ? ` Harbor's bundled nginx passes on the Host it receives, so the port was added by the proxy in front of it${harbor.front ? ` (Harbor's nginx received these requests from ${harbor.front}${harbor.client ? `, while the registry names the client ${harbor.client}` : ', a private address'}: that is the proxy)` : ''}; the registry's lines show the Host it ended up with.`
      : '';
    const fix = harbor
      ? [
          `on the proxy in front of Harbor (the load balancer or outer nginx serving ${name ?? 'the registry name'}${harbor.front ? `, at ${harbor.front}` : ''}): ${portHost ? 'replace `proxy_set_header Host $host:$server_port;` with' : 'set'} \`proxy_set_header Host $http_host;\` (or \`proxy_set_header Host $host;\`, the name without the port) where it proxies to Harbor, and reload it (\`nginx -s reload\`); with another proxy, remove the rule that appends the port to Host${harbor.front ? '. Harbor\'s own configuration needs no change for this' : '. With no proxy in front of Harbor, look for the same setting in Harbor\'s own nginx configuration'}`,
          `or run Berth instead of Harbor: ${BERTH_URL_FIX.replace(/^Berth: /, '')}, so a Host with a port cannot send the client to another origin`,
        ]
      : [`nginx: ${portHost ? 'replace `proxy_set_header Host $host:$server_port;` with' : internal ? 'add' : 'use'} \`proxy_set_header Host $http_host;\` in the location proxying /v2/ (and \`proxy_set_header X-Forwarded-Proto $scheme;\` where TLS ends)`, BERTH_URL_FIX, 'CNCF Distribution: `http.relativeurls: true`'];
    report(c, 'M2', `Credentials dropped on ${e.method} ${shortPath(e.path)} (401, no Authorization) after the upload started: ${cause}`, [start, ...same, ...coreSays, ...(hostLine ? [hostLine] : []), ...(absLoc ? [absLoc] : [])],
      `The ${cred} was good (the upload started with ${start.status}), but the next request of the same upload arrived without credentials${diag?.openedBy ? ` (Berth: session opened by "${diag.openedBy}"${diag.openedVia ? ` via ${diag.openedVia}` : ''})` : ''}. The registry built an absolute upload Location from the Host${portHost ? ` it received (${portHost})` : ''}; containerd${/containerd/.test(c.s.userAgent ?? '') ? ` (${c.s.userAgent})` : ''} compares that URL's host with the one it authenticated against as plain strings, finds them different, and drops the ${cred}. The classic Docker engine normalises default ports, so some clients work and others do not.${harborWhy}`,
      fix);
  }
};

/** nginx's default Host (`$proxy_host`) without a 401: the client was sent to an internal address and never came back. */
const m2InternalHost: Rule = (c) => {
  const internal = registryHosts(c.s).find(isInternalHost);
  if (!internal || c.found.some((f) => f.mechanism === 'M2')) return;
  const hasProxy = c.s.events.some((e) => e.role === 'proxy') || c.s.events.some((e) => e.forwarded);
  if (!hasProxy) return;
  const start = c.reqs.find((e) => stepOf(e) === 'upload-start' && e.status === 202);
  const abandoned = start && !c.reqs.some((e) => e.time > start.time && (isContinuation(e) || stepOf(e) === 'manifest-put'));
  const failures = open(c, () => true);
  if (!abandoned && !failures.length) return;
  const last = c.reqs[c.reqs.length - 1];
  report(c, 'M2', `Host was the upstream's own address ${internal}: ${abandoned ? 'the upload started, then the client never came back' : 'the push failed'}`, [lineWithHost(c.s, internal)!, ...(start ? [start] : []), ...(last ? [last] : []), ...failures.slice(0, 2)],
    `The registry built its upload Location (and possibly the token realm) from Host ${internal}, which only resolves inside the proxy's network. nginx sends \`Host: $proxy_host\` unless told otherwise, so the client was pointed at an address it cannot reach (or authenticated against another name).`,
    ['nginx: `proxy_set_header Host $http_host;` in the location proxying /v2/ and /service/', BERTH_URL_FIX]);
};

const SCHEME_FIX = 'nginx (where TLS ends): `proxy_set_header X-Forwarded-Proto $scheme;`; inner hops pass it on with `proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;`';
const HOST_FIX = 'nginx: `proxy_set_header Host $http_host;` — the Host as the client sent it, port included (`$host` drops the port)';
const cap = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);
const DISTRIBUTION_URL_FIX = 'CNCF Distribution: `http.relativeurls: true` (a relative upload Location keeps the client on the scheme, host and port it chose), or `http.host: https://<name>[:<port>]`';

/**
 * The upload started (POST …/blobs/uploads/ → 202) behind a proxy, and the client never sent a
 * PATCH, PUT or manifest: it followed the absolute upload Location — which the registry builds from
 * the Host and X-Forwarded-Proto it receives — to an address where nothing answered, so no log has
 * a failing line. (An internal Host is m2InternalHost's.) What the Location was decides the
 * mechanism: http:// is the scheme lost (M1); an https Location, or a Host with a port clients
 * do not send, is the host/port altered (M2); a Host that kept a non-default port leaves only the
 * scheme (M1). When neither the Location nor a port shows — nginx's
 * combined format and Distribution's info-level lines record neither — both fit the same lines: M1
 * is named (nginx passes no X-Forwarded-Proto unless told to, while a port can only be dropped when
 * clients use a non-default one), M2 is the alternative, and the explanation says how to tell.
 */
const uploadAbandoned: Rule = (c) => {
  if (c.found.length || c.s.kind !== 'push') return;
  if (!c.s.events.some((e) => e.role === 'proxy' || e.forwarded)) return;
  const starts = c.reqs.filter((e) => stepOf(e) === 'upload-start' && e.status === 202);
  if (!starts.length) return;
  if (c.reqs.some((e) => isContinuation(e) || ['upload-cancel', 'manifest-put'].includes(stepOf(e)))) return;
  // A relative Location keeps the client where it was: the reason it stopped lies elsewhere.
  const locations = c.s.events.filter((e) => e.location);
  if (locations.length && locations.every((e) => e.location!.startsWith('/'))) return;
  const httpLoc = locations.find((e) => e.location!.startsWith('http://'));
  const httpsLoc = locations.find((e) => e.location!.startsWith('https://'));
  const hosts = registryHosts(c.s);
  const portHost = hosts.find(hasDefaultPort);
  // A Host with another port reached the registry as the client sent it: the Location's host and port were right.
  const keptPort = hosts.find((h) => /:\d+$/.test(h) && !hasDefaultPort(h) && !isInternalHost(h));
  const host = portHost ?? keptPort ?? hosts[0];
  const hostLine = host && !starts.some((e) => e.host === host) ? lineWithHost(c.s, host) : undefined;
  const loc = (httpLoc ?? httpsLoc)?.location;
  const decided: MechanismId | undefined = httpLoc || (!httpsLoc && !portHost && keptPort) ? 'M1' : httpsLoc || portHost ? 'M2' : undefined;
  // The first upload start as each hop logged it, so the evidence shows every hop saw the 202.
  const startFiles = [...new Set(starts.map((e) => e.file))];
  const firstOfEach = startFiles.map((f) => starts.find((e) => e.file === f)!);
  const n = Math.max(...startFiles.map((f) => starts.filter((e) => e.file === f).length));
  const proxyFiles = new Set(c.s.events.filter((e) => e.role === 'proxy').map((e) => e.file));
  const last = c.reqs[c.reqs.length - 1]!;
  const began = cap(`the registry accepted ${n} upload start${n > 1 ? 's' : ''} (POST …/blobs/uploads/ → 202), then received no PATCH, PUT or manifest from this client`);
  const hops = proxyFiles.size > 1
    ? ` Here each request passed ${proxyFiles.size} proxies (each logged it): TLS ends at the outermost, and an inner hop that sets X-Forwarded-Proto from its own \`$scheme\` passes on http`
    : '';
  const evidence = [...firstOfEach, ...(hostLine ? [hostLine] : []), ...(httpLoc ?? httpsLoc ? [(httpLoc ?? httpsLoc)!] : []), last];
  const gone = 'the upload started, then the client never came back';
  if (decided === 'M1') {
    report(c, 'M1', loc ? `Scheme lost: the upload Location was ${loc}; ${gone}` : `Scheme lost: ${gone}, though Host ${keptPort} kept its port`, evidence,
      `${began}. ${loc ? 'The registry built its absolute upload Location with http://' : `Host ${keptPort} reached the registry with the port the client uses, so its absolute upload Location named the right host and port: only the scheme can have sent the client away — it said http://`} (no hop told the registry that TLS ends at the proxy: X-Forwarded-Proto missing or http), and the client followed it over plain http, where nothing answered.${hops ? `${hops}.` : ''}`,
      [SCHEME_FIX, DISTRIBUTION_URL_FIX, BERTH_URL_FIX]);
    return;
  }
  if (decided === 'M2') {
    report(c, 'M2', `Host/port altered: ${loc ? `the upload Location was ${loc}` : `the registry saw Host ${portHost}`}; ${gone}`, evidence,
      `${began}. The registry built an absolute upload Location${loc ? ` (${loc})` : ''} from the Host it received${portHost ? ` (${portHost})` : ''}, which names another host or port than the one the client uses; the client followed it there, where nothing answered.`,
      [HOST_FIX, DISTRIBUTION_URL_FIX, BERTH_URL_FIX]);
    return;
  }
  const name = host ?? '<name>';
  const saw = host ? `The registry saw Host ${host}, without a port, so` : 'These logs hold no line of the registry, so the Host it saw is unknown; with the public name and no port,';
  report(c, 'M1', 'Upload started, then the client never came back: the upload Location led where nothing answers (http:// — the scheme lost — or a port dropped from Host)', evidence,
    `${began}: it followed the absolute upload Location, which the registry builds from the Host and X-Forwarded-Proto it receives, to an address where nothing answered. `
      + `${saw} the Location was http://${name}/… if no hop passed X-Forwarded-Proto: https (M1), or https://${name}/… — port 443 — if clients use another port that the proxy dropped from Host (\`proxy_set_header Host $host;\`, M2). `
      + `These logs cannot tell which: nginx's combined format and the registry's info-level lines record neither the Location nor the port the client connected to. If the registry address clients use has a port (e.g. ${name}:8443), it is M2; otherwise M1, the commoner (nginx sends no X-Forwarded-Proto unless told to).${hops ? `${hops} — which points to M1.` : ''} \`curl -si -u <user> -X POST https://<the address clients use>/v2/${c.s.repository ?? '<repository>'}/blobs/uploads/\` prints the Location.`,
    [SCHEME_FIX, HOST_FIX, DISTRIBUTION_URL_FIX, BERTH_URL_FIX]);
  c.found.find((f) => f.mechanism === 'M1')!.alternatives = ['M2'];
};

/** Scheme evidence next to dropped credentials: Berth saw http with no (or http) X-Forwarded-Proto. */
const m1SchemeEvidence: Rule = (c) => {
  if (c.found.some((f) => f.mechanism === 'M1') || !c.found.some((f) => f.mechanism === 'M2')) return;
  const httpLoc = c.s.events.find((e) => e.location?.startsWith('http://'));
  const viaHttps = c.s.events.some((e) => e.diagnosis?.openedVia?.startsWith('https://') || e.forwarded?.['x-forwarded-proto'] === 'https');
  const plain = c.s.events.find((e) => e.role === 'berth' && e.scheme === 'http' && (e.forwarded?.['x-forwarded-proto'] ?? 'http') === 'http' && !/proto=https/.test(e.forwarded?.forwarded ?? ''));
  const ev = httpLoc ?? (plain && (viaHttps || c.s.events.some((e) => e.diagnosis?.code === 'credentials-dropped')) ? plain : undefined);
  if (!ev) return;
  report(c, 'M1', `Scheme lost as well: the registry saw ${httpLoc ? `Location ${httpLoc.location}` : 'plain http with no X-Forwarded-Proto: https'}`, [ev],
    'TLS ends at a proxy in front, but no hop told the registry so; any absolute URL it builds says http://, which clients treat as a different origin (no credentials, or a redirect on port 80).',
    ['nginx (where TLS ends): `proxy_set_header X-Forwarded-Proto $scheme;`; inner hops pass it on with `$http_x_forwarded_proto`', BERTH_URL_FIX]);
};

/** Conflicting or comma-listed forwarded headers on a failing session (M3). */
const m3ForwardedQuirks: Rule = (c) => {
  if (!c.found.length && !open(c, () => true).length) return;
  const odd = c.s.events.find((e) => {
    const f = e.forwarded;
    if (!f) return false;
    if (/,/.test(f['x-forwarded-proto'] ?? '') || /,/.test(f['x-forwarded-host'] ?? '')) return true;
    const fw = f.forwarded;
    const proto = fw && /proto=([^;,\s]+)/i.exec(fw)?.[1];
    const host = fw && /host="?([^;,"\s]+)/i.exec(fw)?.[1];
    return (!!proto && !!f['x-forwarded-proto'] && proto !== f['x-forwarded-proto']) || (!!host && !!f['x-forwarded-host'] && host !== f['x-forwarded-host']);
  });
  if (!odd) return;
  report(c, 'M3', 'Conflicting forwarded headers: hops appended to or disagree on Forwarded / X-Forwarded-*', [odd],
    'Two hops each added their own forwarding headers (a comma list, or Forwarded and X-Forwarded-* with different values). Registries that read the wrong one build URLs with the wrong host or scheme.',
    ['nginx: set the headers once at the outermost proxy (`proxy_set_header X-Forwarded-Proto $scheme;`), inner hops pass them unchanged (`$http_x_forwarded_proto`, `$http_x_forwarded_host`); do not add `Forwarded` as well', 'Berth: list only the outermost proxy chain in `trustedProxies`']);
};

/** Whatever failed and no mechanism explains. */
const other: Rule = (c) => {
  if (c.found.length) return;
  const e = open(c, () => true)[0];
  if (!e) return;
  const same = sameRequest(c.s, e);
  const detail = same.map(text).join(' ').trim();
  // A quota refusal is DENIED too, but never a permission problem (the quota rule names those it can read).
  const denied = (e.status === 403 || /DENIED|insufficient scope/i.test(detail)) && !/quota/i.test(detail);
  report(c, 'other', `${e.method} ${shortPath(e.path)} failed with ${e.status}${detail ? ` (${detail.slice(0, 80)})` : ''}`, same,
    denied ? 'The registry refused the operation for this account: a permission problem, not a proxy one.' : 'This failure does not match a known proxy mechanism; the evidence lines show what each hop saw.',
    denied ? ['grant the account push/pull on the repository (project membership or robot permissions)'] : ['run `berth doctor https://<registry>` from the client network to probe the proxy chain']);
};

/** The rules, most specific first. */
export const RULES: readonly Rule[] = [quotaExceeded, m7BodyTooLarge, m8Timeouts, m10UploadLost, m9TokenExpired, m4OutsideV2, m11ChallengeShape, m5AuthorizationStripped, m5BasicStripped, m1SchemeRedirect, m6Redirect, m2CredentialsDropped, m2InternalHost, uploadAbandoned, m1SchemeEvidence, m3ForwardedQuirks, other];

/** Runs every rule on a session; returns its findings and the first failing request. */
export function diagnoseSession(s: Session): { findings: Finding[]; failing?: LogEvent } {
  const c: Ctx = { s, reqs: requestsOf(s), claimed: new Set(), found: [] };
  for (const rule of RULES) rule(c);
  // The first failure a finding explains (not, say, a challenge the client could not answer), else the first one.
  const failing = c.reqs.find((e) => isFailure(s, e) && c.claimed.has(e)) ?? c.reqs.find((e) => isFailure(s, e)) ?? s.events.find((e) => e.role === 'proxy-error' && isRequest(e));
  return { findings: c.found, failing };
}

export { describe };
