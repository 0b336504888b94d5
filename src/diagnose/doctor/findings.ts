// The rules that turn evidence into findings: mechanism, evidence, fix, affected clients.
import type { CertificateSummary } from './probe.ts';
import { formatSize } from './size.ts';
import type { UrlJudgement } from './urls.ts';
import type { ClientFamily, Finding, MechanismId, RegistryInfo } from './types.ts';

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
};

/** Order in which a conclusion is chosen: the earliest cause first. */
export const PRIORITY: MechanismId[] = ['NET', 'TLS', 'M6', 'M5', 'M1', 'M2', 'M4', 'M7', 'M8', 'M11', 'M10', 'M9', 'AUTH', 'M3'];

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
