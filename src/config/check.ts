import type { Config } from './schema.ts';

const LOOPBACK = /^(localhost|127(?:\.\d+){3}|\[::1\])$/i;

/**
 * Berth's own configuration, checked for what would break clients behind (or without) a proxy.
 * Returns warnings in plain words; none of them stops Berth.
 */
export function checkConfig(config: Config): string[] {
  const warnings: string[] = [];
  const tls = Boolean(config.tls.cert);
  const listenPort = Number(config.addr.slice(config.addr.lastIndexOf(':') + 1));
  const urls = config.externalURL.map((u) => new URL(u));
  const portOf = (u: URL) => (u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port));

  if (urls.length === 0) {
    warnings.push(
      'externalURL is not set: the token realm is derived from each request\'s Host header and scheme. Behind a reverse proxy that rewrites either, ' +
        'clients are sent to a wrong realm; set externalURL to the URL(s) clients use, e.g. https://registry.example.com',
    );
  }
  if (tls && urls.length > 0 && urls.every((u) => u.protocol === 'http:')) {
    warnings.push(`Berth serves HTTPS itself (tls.cert is set) but every externalURL is http:// (${config.externalURL.join(', ')}): clients following the realm will speak plain HTTP to a TLS port`);
  }
  for (const u of urls) {
    const port = portOf(u);
    if (port === listenPort && u.protocol === 'https:' && !tls) {
      warnings.push(`externalURL ${u.origin} names Berth's own listen port ${listenPort} with https, but Berth serves plain HTTP there: set tls.cert and tls.key, or name the TLS proxy's port`);
    }
    if (port === listenPort && u.protocol === 'http:' && tls) {
      warnings.push(`externalURL ${u.origin} names Berth's own listen port ${listenPort} with http, but Berth serves HTTPS there`);
    }
    if (u.protocol === 'http:' && !LOOPBACK.test(u.hostname)) {
      warnings.push(`externalURL ${u.origin} is plain HTTP: passwords and tokens cross the network unencrypted, and Docker needs it listed in insecure-registries`);
    }
  }
  const seen = new Map<string, string>();
  for (const u of urls) {
    const key = `${u.hostname}:${portOf(u)}`;
    const other = seen.get(key);
    if (other && other !== u.protocol) warnings.push(`externalURL lists ${u.host} with both http and https: Berth cannot tell which one a request used, and picks by scheme`);
    seen.set(key, u.protocol);
  }
  // Same host name, different ports: a proxy that drops the port (`proxy_set_header Host $host;`)
  // sends the same Host for both, so Berth cannot tell which URL a request was addressed to (M2).
  const byName = new Map<string, URL[]>();
  for (const u of urls) byName.set(u.hostname, [...(byName.get(u.hostname) ?? []), u]);
  for (const [name, group] of byName) {
    const ports = [...new Set(group.map(portOf))];
    // Only an explicit port can be dropped: https://h and http://h already send the same Host.
    if (ports.length < 2 || !group.some((u) => u.port !== '')) continue;
    warnings.push(
      `externalURL lists ${name} with different ports (${group.map((u) => u.origin).join(', ')}): a proxy that drops the port ` +
        '(`proxy_set_header Host $host;`) makes them indistinguishable: Berth then picks by the scheme of the request, or the first listed; forward `Host $http_host` or give each URL its own host name',
    );
  }
  for (const entry of config.trustedProxies) {
    if (/\/0$/.test(entry.trim())) {
      warnings.push(`trustedProxies contains ${entry}: every client may then forge its address, scheme and host through X-Forwarded-* headers; list only your proxies`);
    }
  }
  if (config.auth.tokenTTL < 300) {
    warnings.push(`auth.tokenTTL is ${config.auth.tokenTTL} s: an upload that takes longer fails on its final request with an expired token (M9); 1800 s or more is safer`);
  }
  warnings.push(...identityWarnings(config));
  return warnings;
}

/** What in `auth.ldap` / `auth.oidc` would expose passwords or tokens, or go unused. */
function identityWarnings(config: Config): string[] {
  const warnings: string[] = [];
  const { mode, ldap, oidc } = config.auth;
  if (ldap && mode !== 'ldap') warnings.push(`auth.ldap is set but auth.mode is ${mode}: the directory is not used`);
  if (oidc && mode !== 'oidc') warnings.push(`auth.oidc is set but auth.mode is ${mode}: the OpenID provider is not used`);
  if (mode === 'ldap' && ldap) {
    const url = new URL(ldap.url);
    if (url.protocol === 'ldap:' && !ldap.startTLS && !LOOPBACK.test(url.hostname)) {
      warnings.push(`auth.ldap.url ${url.host} is plain ldap:// without startTLS: every directory password crosses the network unencrypted; use ldaps:// or startTLS: true`);
    }
    if (ldap.insecure) warnings.push("auth.ldap.insecure is true: the directory's certificate is not checked, so anyone in between can read passwords");
    if (!ldap.groupBaseDN && ldap.adminGroup) warnings.push('auth.ldap.adminGroup is set without groupBaseDN: groups are not read, so nobody becomes an administrator through it');
  }
  if (mode === 'oidc' && oidc) {
    const issuer = new URL(oidc.issuer);
    if (issuer.protocol === 'http:' && !LOOPBACK.test(issuer.hostname)) warnings.push(`auth.oidc.issuer ${issuer.origin} is plain http: ID tokens and codes cross the network unencrypted`);
  }
  return warnings;
}
