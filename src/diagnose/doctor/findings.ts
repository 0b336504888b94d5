// The rules that turn evidence into findings: mechanism, evidence, fix, affected clients.
import type { CertificateSummary } from './probe.ts';
import { formatSize } from './size.ts';
import type { Target, UrlJudgement } from './urls.ts';
import type { ClientFamily, Finding, LeftBehind, MechanismId, RegistryInfo } from './types.ts';

const ALL: ClientFamily[] = ['containerd', 'docker', 'containers-image'];

/** Names of the mechanisms, as PROXIES.md calls them. */
export const MECHANISM_NAMES: Record<MechanismId, string> = {
  M1: 'scheme lost between the TLS terminator and the registry',
  M2: 'host or port altered by a proxy',
  M3: 'forwarded headers parsed inconsistently',
  M4: 'upload URL outside /v2/',
  M5: 'Authorization header stripped (or auth done by the proxy)',
  M6: 'redirect on /v2/ or the token endpoint',
  M7: 'request body limit',
  M8: 'buffering, chunked encoding or proxy timeouts',
  M9: 'token lifetime shorter than an upload',
  M10: 'upload state lost or not shared between replicas',
  M11: 'incomplete or wrong authentication challenge',
  TLS: 'TLS handshake failed',
  NET: 'registry unreachable',
  AUTH: 'credentials rejected',
  DENIED: 'not allowed to push to the probe repository',
  CLEANUP: 'probe not removed',
};

/**
 * Order in which a conclusion is chosen: the earliest cause first. A probe left behind comes last:
 * any other problem is the reason for the run's result, the leftovers are added to it.
 */
export const PRIORITY: MechanismId[] = ['NET', 'TLS', 'M6', 'M5', 'M1', 'M2', 'M4', 'M7', 'M8', 'M11', 'M10', 'M9', 'AUTH', 'DENIED', 'M3', 'CLEANUP'];

function registrySideFix(kind: RegistryInfo['kind']): string {
  if (kind === 'berth') return ' Berth: set `externalURL` to the URL clients type (and `trustedProxies` to the proxy address).';
  if (kind === 'distribution') return ' Or make the registry independent of Host: Distribution `http: { relativeurls: true }` (Harbor: `external_url`).';
  return ' Or configure the registry to emit relative upload URLs or its public URL (Distribution `http.relativeurls: true`, Harbor `external_url`, Berth `externalURL`).';
}

/**
 * Findings for a URL the server handed back (upload Location or Link). `connectFailed` says the
 * request with credentials to that URL got no usable answer, so even clients that keep
 * credentials (containers/image) fail.
 */
export function urlFindings(j: UrlJudgement, evidence: string[], kind: RegistryInfo['kind'], connectFailed: boolean): Finding[] {
  const out: Finding[] = [];
  const plus = (families: ClientFamily[]): ClientFamily[] => (connectFailed ? ALL : families);
  if (j.mechanisms.includes('M1')) {
    out.push({
      mechanism: 'M1',
      severity: 'problem',
      title: `upload URL changes the scheme: ${j.url.split('/v2/')[0]}`,
      evidence,
      fix:
        'At the proxy that terminates TLS: `proxy_set_header X-Forwarded-Proto $scheme;`; at every inner proxy pass it on unchanged: ' +
        '`proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;` (never `$scheme` behind the TLS terminator).' +
        registrySideFix(kind),
      clients: plus(['containerd', 'docker']),
    });
  }
  if (j.mechanisms.includes('M2')) {
    let fix: string;
    let clients: ClientFamily[];
    if (j.sameCanonical) {
      fix = 'Replace `proxy_set_header Host $host:$server_port;` with `proxy_set_header Host $http_host;` (the Host exactly as the client sent it).';
      clients = ['containerd'];
    } else if (j.sameHostname) {
      fix = '`proxy_set_header Host $host;` drops the port the client used: use `proxy_set_header Host $http_host;`.';
      clients = ['containerd', 'docker'];
    } else {
      fix = 'nginx sends the upstream address as Host unless told otherwise (`$proxy_host`): add `proxy_set_header Host $http_host;`.';
      clients = ['containerd', 'docker'];
    }
    out.push({
      mechanism: 'M2',
      severity: 'problem',
      title: `upload URL names another host: ${j.problems.find((p) => p.includes('host') || p.includes('port')) ?? j.url}`,
      evidence,
      fix: fix + registrySideFix(kind),
      clients: plus(clients),
    });
  }
  if (j.mechanisms.includes('M4')) {
    out.push({
      mechanism: 'M4',
      severity: 'problem',
      title: `upload URL outside /v2/: ${new URL(j.url).pathname}`,
      evidence,
      fix: 'Keep every registry URL under /v2/: remove the `rewrite`/`proxy_redirect` or path prefix that moves upload URLs, or configure the registry to serve uploads under /v2/.',
      clients: plus(['docker']),
    });
  }
  return out;
}

/**
 * M6: a redirect where a registry must answer itself. The title leaves out the query (the token
 * POST and GET redirect to the same place: one finding). A redirected token realm is cured where
 * the realm is configured, not by typing another registry URL.
 */
export function redirectFinding(where: string, status: number, location: string | undefined, evidence: string[]): Finding {
  const target = location?.replace(/\?.*$/, '');
  const noRedirect =
    'Remove the `return 301`/`rewrite … permanent` that covers /v2/ and the token path (keep it for other paths, e.g. `location / { return 301 https://$host$request_uri; }` ' +
    'but `location /v2/ { proxy_pass …; }` without it)';
  const fix = where === 'the token endpoint'
    ? `The token realm redirects${target ? ` to ${target}` : ''}: make the realm that URL, so clients get their token without a redirect ` +
      '(Berth: `externalURL` set to the URL clients use; Distribution: `auth.token.realm`; Harbor: `external_url`), and ' +
      `${noRedirect.charAt(0).toLowerCase()}${noRedirect.slice(1)}.`
    : `${noRedirect}, and use the final URL${target ? ` (${target.replace(/\/v2\/.*$/, '')})` : ''} when you log in and push.`;
  return { mechanism: 'M6', severity: 'problem', title: `${status} redirect on ${where}${target ? ` to ${target}` : ''}`, evidence, fix, clients: ALL };
}

/** M7: a body limit, with the largest size that passed. */
export function bodyLimitFinding(largestPassed: number | undefined, firstFailed: number, status: number | string, evidence: string[]): Finding {
  const cdn = firstFailed > 95 * 1000 * 1000;
  return {
    mechanism: 'M7',
    severity: 'problem',
    title: `request bodies over ${largestPassed !== undefined ? formatSize(largestPassed) : 'the first probe size'} are refused (${status} at ${formatSize(firstFailed)})`,
    evidence,
    fix: cdn
      ? 'A CDN or load balancer caps request bodies near 100 MB: bypass it for the registry host (DNS-only / grey cloud), or raise its limit; for nginx also `client_max_body_size 0;`.'
      : 'In the nginx server/location for the registry: `client_max_body_size 0;` (nginx defaults to 1m), with `proxy_request_buffering off;`.',
    clients: ALL,
  };
}

/**
 * TLS failures, with node's error code and the fix; `cert` (read without verification) names the
 * issuer a client would have to trust, or the date a certificate expired.
 */
export function tlsFinding(code: string, message: string, host: string, evidence: string[], cert?: CertificateSummary): Finding {
  const caFix =
    `Trust the CA that signed the certificate: \`berth doctor --ca-file ca.crt\`; Docker: /etc/docker/certs.d/${host}/ca.crt; ` +
    `containerd: /etc/containerd/certs.d/${host}/hosts.toml (\`ca = "…/ca.crt"\`); podman/skopeo: /etc/containers/certs.d/${host}/ca.crt; ` +
    'or add it to the system store (`update-ca-certificates`). If the server sends only its leaf, make it send the full chain.';
  let fix = caFix;
  let title = `TLS: ${code}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    title = `TLS: the certificate is not valid for ${host}`;
    fix = `Issue a certificate whose subjectAltName includes ${host.replace(/:\d+$/, '')} (clients ignore the CN), or use the name the certificate was made for.`;
  } else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    title = code === 'CERT_HAS_EXPIRED'
      ? `TLS: the certificate has expired${cert ? ` (valid until ${cert.validTo})` : ''}`
      : `TLS: the certificate is not valid yet${cert ? ` (valid from ${cert.validFrom})` : ''} (clock?)`;
    fix = 'Renew the certificate (and reload the proxy), or fix the clock of whichever machine is wrong.';
  } else if (/WRONG_VERSION_NUMBER|EPROTO/.test(code) || /wrong version number/i.test(message)) {
    title = 'TLS: the server does not speak TLS on this port';
    fix = 'Use http:// for this port (and configure clients for an insecure registry), or point at the TLS port.';
  } else {
    title = `TLS: certificate not trusted (${code})${cert ? `: issued by "${cert.issuer}"` : ''}`;
  }
  const shown = cert ? [`certificate: subject ${cert.subject}; ${cert.altNames}; issuer ${cert.issuer}; valid ${cert.validFrom} to ${cert.validTo}`] : [];
  return { mechanism: 'TLS', severity: 'problem', title, evidence: [...evidence, `node: ${code}: ${message}`, ...shown], fix, clients: ALL };
}

/**
 * The token realm, judged wrong before it was used ({@link judgeRealm}). `fetched`: a token came
 * back all the same (then credentials went to a wrong URL: a warning); otherwise the failed token
 * request is explained by it, and this is the problem. Berth's fix depends on whether it has an
 * `externalURL` (its echo says): without one it builds the realm from each request, and only a
 * trusted proxy's `X-Forwarded-Proto` tells it that the client used https.
 */
export function realmFinding(realm: string, mechanisms: readonly MechanismId[], problems: readonly string[], target: Target, registry: RegistryInfo, evidence: string[], fetched: boolean): Finding {
  const what: string[] = [];
  if (mechanisms.includes('M1')) what.push(`uses ${realm.slice(0, realm.indexOf(':'))}:// while the registry is ${target.scheme}://`);
  if (mechanisms.includes('M2')) what.push('names an internal address');
  if (what.length === 0) what.push('is not usable');
  let fix: string;
  if (registry.kind === 'berth' && (registry.externalURLs?.length ?? 0) === 0) {
    fix = mechanisms.includes('M1')
      ? 'Berth has no `externalURL`, so it builds the realm from each request, and this one reached it as plain HTTP: ' +
        `set \`externalURL: ${target.base}\` (the URL clients use), or list the TLS-terminating proxy in \`trustedProxies\` so its \`X-Forwarded-Proto\` is believed ` +
        '(that proxy sends `proxy_set_header X-Forwarded-Proto $scheme;`).'
      : 'Berth has no `externalURL`, so it builds the realm from the Host each request carries: ' +
        `set \`externalURL: ${target.base}\` (the URL clients use), or forward the Host as the client sent it (\`proxy_set_header Host $http_host;\`).`;
  } else if (registry.kind === 'berth') {
    fix = `Berth's \`externalURL\` (${registry.externalURLs!.join(', ')}) makes the realm ${realm}: set \`externalURL\` to ${target.base}, the URL clients use.`;
  } else {
    fix = `The realm must be the public token URL${target.scheme === 'https' ? ' over https' : ''}: configure it from the URL clients use (Distribution \`auth.token.realm\`, Harbor \`external_url\`, Berth \`externalURL\`); ` +
      'a registry deriving it from the request needs `proxy_set_header X-Forwarded-Proto $scheme;` and `proxy_set_header Host $http_host;` at the TLS-terminating proxy.';
  }
  return {
    mechanism: mechanisms[0] ?? 'M11',
    severity: fetched ? 'warning' : 'problem',
    title: `token realm ${realm} ${what.join(' and ')}`,
    evidence: [...evidence, ...problems],
    fix,
    clients: ALL,
  };
}

/**
 * The account works but may not push to the probe repository (403 DENIED, or a token without
 * push). `refusal` is the registry's own message: a project over its quota is refused the same way
 * (Berth: 403 DENIED "quota exceeded: …"), and is named as such.
 */
export function deniedFinding(username: string, repository: string, evidence: string[], kind: RegistryInfo['kind'], refusal?: string): Finding {
  const slash = repository.indexOf('/');
  const project = slash > 0 ? repository.slice(0, slash) : repository;
  if (refusal && /quota/i.test(refusal)) {
    return {
      mechanism: 'DENIED',
      severity: 'problem',
      title: `pushing to ${repository} is refused: the project is over its quota`,
      evidence,
      fix: `Free space in project ${project} (delete artifacts) or raise its quota${kind === 'berth' ? ` (\`berth project update ${project} --quota …\`)` : ''}; or run with --repository in another project.`,
      clients: [],
    };
  }
  const list = kind === 'berth' ? ' (`berth project list` shows the projects you can see, `berth project show <name>` what you may do there)' : '';
  return {
    mechanism: 'DENIED',
    severity: 'problem',
    title: `${username} may not push to ${repository}`,
    evidence,
    fix: `Run with --repository <a project you can push to>/probe${list}, or ask a project admin of ${project} for the developer role.`,
    clients: [],
  };
}

/** What a run made that decides how to remove its leftovers by hand. */
export interface LeftoverContext {
  readonly repository: string;
  readonly kind: RegistryInfo['kind'];
  /** The probe manifest, when it is among the leftovers. */
  readonly manifestDigest?: string;
  /** Berth: whether this run created the repository / the project. */
  readonly repositoryCreated: boolean;
  readonly projectCreated: boolean;
}

/** What the doctor made and could not delete again: every item with its reason, and how to remove it. */
export function cleanupFinding(left: readonly LeftBehind[], c: LeftoverContext): Finding {
  const slash = c.repository.indexOf('/');
  const project = slash > 0 ? c.repository.slice(0, slash) : c.repository;
  const onlySessions = left.every((l) => l.what.startsWith('an unfinished upload session'));
  let fix: string;
  if (onlySessions) {
    fix = 'Nothing to delete by hand: unfinished upload sessions expire on their own.';
  } else if (c.kind === 'berth') {
    const calls: string[] = [];
    if (c.repositoryCreated) calls.push(`\`DELETE /api/v1/repositories/${c.repository}\` (this run created it: it goes with everything in it)`);
    else if (c.manifestDigest) calls.push(`\`DELETE /api/v1/repositories/${c.repository}/artifacts/${c.manifestDigest}\` (the probe and its tag)`);
    if (c.projectCreated) calls.push(`then \`DELETE /api/v1/projects/${project}\``);
    fix = `As a user who may delete in project ${project} (maintainer or projectAdmin; the portal does the same): ${calls.length ? calls.join(', ') : 'delete what is listed'}; ` +
      'or run the doctor with --repository in a project where you may delete.';
  } else {
    fix = `As a user who may delete: ${c.manifestDigest ? `\`DELETE /v2/${c.repository}/manifests/${c.manifestDigest}\`, then the blobs listed` : 'delete what is listed'} ` +
      '(Distribution must allow it: `storage: { delete: { enabled: true } }`); or point --repository at a throw-away repository.';
  }
  return {
    mechanism: 'CLEANUP',
    severity: 'problem',
    title: `the doctor could not delete ${left.length === 1 ? 'one thing' : `${left.length} things`} it made`,
    evidence: left.map((l) => `left behind: ${l.what} — ${l.why}`),
    fix,
    clients: [],
  };
}
