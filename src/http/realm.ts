import type { RequestOrigin } from './forwarded.ts';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** `host[:port]` with the scheme's default port removed and lower-cased, for comparing hosts. */
export function normalizeHost(host: string, protocol: string): string {
  const lower = host.toLowerCase();
  const port = DEFAULT_PORTS[protocol];
  return port && lower.endsWith(`:${port}`) ? lower.slice(0, -port.length - 1) : lower;
}

/** `scheme://host[:port]` with the default port dropped, lower-case: how browsers write `Origin`, and how two URLs' origins compare. */
export function urlOrigin(url: URL): string {
  return `${url.protocol}//${normalizeHost(url.host, url.protocol)}`;
}

/** The host name without any port (IPv6 brackets kept). */
function hostName(host: string): string {
  const lower = host.toLowerCase();
  return lower.startsWith('[') ? lower.slice(0, lower.indexOf(']') + 1) : lower.replace(/:\d+$/, '');
}

/**
 * The external URL a request was addressed to. Matches the host the client used (`origin.host`:
 * the Host header, or a trusted proxy's forwarded host) against the configured URLs: exact
 * host[:port] with default ports normalised first; then the host name alone, preferring the scheme
 * the request came by (a proxy that sends `Host $host` drops a non-default port, M2); else the first
 * URL. Undefined when none is configured.
 */
export function matchExternalURL(origin: RequestOrigin, externalURLs: readonly string[]): string | undefined {
  if (externalURLs.length === 0) return undefined;
  const host = origin.host;
  if (host) {
    const parsed = externalURLs.map((url) => ({ url, u: new URL(url) }));
    const exact = parsed.find(({ u }) => normalizeHost(u.host, u.protocol) === normalizeHost(host, u.protocol));
    if (exact) return exact.url;
    const byName = parsed.filter(({ u }) => hostName(u.host) === hostName(host));
    if (byName.length > 0) return (byName.find(({ u }) => u.protocol === `${origin.scheme}:`) ?? byName[0]!).url;
  }
  return externalURLs[0];
}

/**
 * The base URL for the token realm: the matching external URL, or without any configured, the
 * origin's scheme and host. Upload URLs never use this: they are relative.
 *
 * One exception to "the origin's scheme": a request that reached Berth itself over plain HTTP, with
 * no trusted proxy stating the scheme (one may still have stated the client's address), but
 * addressed to port 443 (`Host: name:443`, as nginx's
 * `proxy_set_header Host $host:$server_port;` sends it) came through a proxy that terminated TLS on
 * 443 — no client speaks plain HTTP to 443. Its realm is `https://name`: `http://name:443` would
 * send clients' passwords in plain HTTP to a TLS port, which answers 400 (PROXIES.md M1/M2). The
 * start-up warning about the missing externalURL still stands.
 */
export function externalBase(origin: RequestOrigin, externalURLs: readonly string[], localAddress: string, localPort: number): string {
  const configured = matchExternalURL(origin, externalURLs);
  if (configured) return configured;
  const protocol = `${origin.scheme}:`;
  if (origin.host && /^[A-Za-z0-9.\-_:[\]]+$/.test(origin.host)) {
    if (origin.scheme === 'http' && !origin.schemeForwarded && /[^:]:443$/.test(origin.host)) return `https://${normalizeHost(origin.host, 'https:')}`;
    return `${protocol}//${normalizeHost(origin.host, protocol)}`;
  }
  return `${protocol}//${localAddress.includes(':') ? `[${localAddress}]` : localAddress}:${localPort}`;
}
