// Options of `berth proxy-config`, validated once into a shape every generator can render directly.
import net from 'node:net';

/** The reverse proxies `berth proxy-config` writes a configuration for. */
export const PROXY_KINDS = ['nginx', 'haproxy', 'caddy', 'traefik'] as const;
export type ProxyKind = (typeof PROXY_KINDS)[number];

/** Placeholder certificate paths, used (and said to be placeholders) when no --tls-* flag is given. */
export const DEFAULT_TLS_CERT = '/etc/ssl/berth/fullchain.pem';
export const DEFAULT_TLS_KEY = '/etc/ssl/berth/privkey.pem';
export const DEFAULT_UPSTREAM = 'http://127.0.0.1:5000';

/** The flags as commander hands them over (all strings, all optional). */
export interface ProxyConfigInput {
  readonly externalUrl?: string;
  readonly upstream?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly listen?: string;
  readonly inner?: boolean;
}

/** A host and port; `host` undefined means every address. IPv6 hosts are kept without brackets. */
export interface HostPort {
  readonly host: string | undefined;
  readonly port: number;
}

/** Validated options: everything a generator needs, nothing it must parse again. */
export interface ProxyConfigOptions {
  /** The URL clients use, normalised: no trailing slash, default port dropped (`https://hub.example.com`). */
  readonly externalUrl: string;
  readonly scheme: 'http' | 'https';
  /** Host name (or IP literal, IPv6 without brackets) of the external URL. */
  readonly hostname: string;
  /** Host[:port] exactly as clients send it in the Host header for this URL. */
  readonly hostHeader: string;
  /** Port clients connect to (443/80 when the URL has none). */
  readonly externalPort: number;
  /** Where Berth listens, normalised (`http://127.0.0.1:5000`). */
  readonly upstream: string;
  readonly upstreamScheme: 'http' | 'https';
  /** Upstream host (IPv6 without brackets) and port. */
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  /** Where this proxy listens. */
  readonly listen: HostPort;
  /**
   * Whether this proxy terminates TLS: yes for an https external URL, unless it is an inner hop
   * (TLS ended further out) without certificates of its own.
   */
  readonly tls: boolean;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** True when the certificate paths are the placeholders, so generators say to replace them. */
  readonly tlsPlaceholder: boolean;
  /** Behind another TLS-terminating proxy: pass X-Forwarded-Proto on instead of setting it. */
  readonly inner: boolean;
  /**
   * What Berth's `trustedProxies` must hold: this proxy's address as Berth sees it. Known only when
   * Berth is on loopback (the proxy then connects from loopback too); otherwise a placeholder.
   */
  readonly trustedProxies: readonly string[];
}

/** A bad flag value; the message names the flag. (The CLI turns it into a CliError.) */
export class ProxyConfigError extends Error {
  override name = 'ProxyConfigError';
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
/** Characters that would break out of a quoted string or a directive in one of the four formats. */
const UNSAFE_PATH = /[\s;{}"'`#\\$]/;

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `host` as written in a URL or `host:port` (IPv6 in brackets). */
export function hostForUrl(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

function parseBaseUrl(flag: string, raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProxyConfigError(`${flag}: "${raw}" is not a URL; expected ${what}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProxyConfigError(`${flag}: scheme must be http or https, got "${url.protocol.replace(/:$/, '')}"`);
  }
  if (url.username || url.password) throw new ProxyConfigError(`${flag}: must not contain a user name or password`);
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new ProxyConfigError(`${flag}: must be the registry's root, without a path, query or fragment (got "${raw}")`);
  }
  const host = unbracket(url.hostname);
  if (!net.isIP(host) && !HOSTNAME.test(host)) throw new ProxyConfigError(`${flag}: "${url.hostname}" is not a valid host name`);
  return url;
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

function parsePort(flag: string, raw: string): number {
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ProxyConfigError(`${flag}: port must be 1-65535, got "${raw}"`);
  }
  return Number(raw);
}

/**
 * Parses --listen: `443`, `:443`, `10.0.0.5`, `10.0.0.5:443`, `::`, `[::1]:443`. The address must be
 * an IP literal (proxies bind to addresses, not names); a missing port is `defaultPort`.
 */
export function parseListen(raw: string, defaultPort: number): HostPort {
  const flag = '--listen';
  const value = raw.trim();
  let host: string | undefined;
  let port = defaultPort;
  if (/^\d+$/.test(value)) port = parsePort(flag, value);
  else if (value.startsWith('[')) {
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
    if (!match) throw new ProxyConfigError(`${flag}: expected [ipv6]:port, got "${raw}"`);
    host = match[1];
    if (match[2] !== undefined) port = parsePort(flag, match[2]);
  } else if (net.isIPv6(value)) host = value;
  else {
    const colon = value.lastIndexOf(':');
    if (colon >= 0) {
      port = parsePort(flag, value.slice(colon + 1));
      host = value.slice(0, colon) || undefined;
    } else host = value;
  }
  if (host === '*') host = undefined;
  if (host !== undefined && !net.isIP(host)) {
    throw new ProxyConfigError(`${flag}: "${host}" is not an IP address (give an address, a port, or address:port)`);
  }
  return { host, port };
}

function checkPath(flag: string, value: string): string {
  if (value === '') throw new ProxyConfigError(`${flag}: must not be empty`);
  if (!value.startsWith('/')) throw new ProxyConfigError(`${flag}: must be an absolute path, got "${value}"`);
  if (UNSAFE_PATH.test(value)) throw new ProxyConfigError(`${flag}: path must not contain spaces, quotes, ";", "#", "$", "{" or "}" (got "${value}")`);
  return value;
}

/** What Berth will see as the peer address of a proxy that reaches it at `host`. */
function trustedProxiesFor(host: string): string[] {
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  if (net.isIPv4(host) && host.startsWith('127.')) return ['127.0.0.1'];
  if (host === '::1') return ['::1'];
  return ["<this proxy's address as Berth sees it>"];
}

/** Validates the flags; throws ProxyConfigError naming the flag at the first bad one. */
export function resolveOptions(input: ProxyConfigInput): ProxyConfigOptions {
  if (input.externalUrl === undefined || input.externalUrl.trim() === '') {
    throw new ProxyConfigError('--external-url: required, the URL clients use (e.g. https://hub.example.com)');
  }
  const external = parseBaseUrl('--external-url', input.externalUrl.trim(), 'the URL clients use, e.g. https://hub.example.com');
  const upstream = parseBaseUrl('--upstream', (input.upstream ?? DEFAULT_UPSTREAM).trim(), "Berth's address, e.g. http://127.0.0.1:5000");
  const scheme = external.protocol === 'https:' ? 'https' : 'http';
  const inner = Boolean(input.inner);
  const explicitTls = input.tlsCert !== undefined || input.tlsKey !== undefined;
  if (scheme === 'http' && explicitTls) {
    throw new ProxyConfigError('--tls-cert/--tls-key: the external URL is http, so this proxy serves no TLS; use an https URL or drop them');
  }
  if (explicitTls && (input.tlsCert === undefined || input.tlsKey === undefined)) {
    throw new ProxyConfigError(`${input.tlsCert === undefined ? '--tls-cert' : '--tls-key'}: give both --tls-cert and --tls-key`);
  }
  // An inner hop serves TLS only when given certificates: usually the outer proxy talks plain HTTP to it.
  const tls = scheme === 'https' && (!inner || explicitTls);
  const tlsCert = checkPath('--tls-cert', input.tlsCert ?? DEFAULT_TLS_CERT);
  const tlsKey = checkPath('--tls-key', input.tlsKey ?? DEFAULT_TLS_KEY);
  const externalPort = portOf(external);
  const defaultListenPort = inner ? (tls ? 443 : 80) : externalPort;
  const listen = input.listen === undefined ? { host: undefined, port: defaultListenPort } : parseListen(input.listen, defaultListenPort);
  const upstreamHost = unbracket(upstream.hostname);
  const externalHost = unbracket(external.hostname);
  return {
    externalUrl: external.origin,
    scheme,
    hostname: externalHost,
    hostHeader: external.host,
    externalPort,
    upstream: upstream.origin,
    upstreamScheme: upstream.protocol === 'https:' ? 'https' : 'http',
    upstreamHost,
    upstreamPort: portOf(upstream),
    listen,
    tls,
    tlsCert,
    tlsKey,
    tlsPlaceholder: !explicitTls,
    inner,
    trustedProxies: trustedProxiesFor(upstreamHost),
  };
}

/** `host:port` of the listen address for formats that write IPv6 in brackets. */
export function listenHostPort(listen: HostPort): string {
  return listen.host === undefined ? `:${listen.port}` : `${hostForUrl(listen.host)}:${listen.port}`;
}

/** `host:port` of the upstream, IPv6 in brackets. */
export function upstreamHostPort(options: ProxyConfigOptions): string {
  return `${hostForUrl(options.upstreamHost)}:${options.upstreamPort}`;
}

/**
 * Lines (without comment markers) that every generated file starts with: what it is for and, when
 * the certificate paths are placeholders, that they must be replaced.
 */
export function headerLines(kind: ProxyKind, options: ProxyConfigOptions, where: string): string[] {
  const lines = [
    `Berth behind ${kind}, for clients using ${options.externalUrl} (generated by \`berth proxy-config ${kind}\`).`,
    where,
  ];
  if (options.inner) {
    lines.push(
      'Inner hop: TLS ends at a proxy in front of this one, which must set X-Forwarded-Proto and pass Host unchanged;',
      'this proxy passes both on as received.',
    );
  }
  if (options.tls && options.tlsPlaceholder) {
    lines.push(`The certificate paths ${options.tlsCert} and ${options.tlsKey} are placeholders: use --tls-cert/--tls-key or edit them.`);
  }
  if (!options.tls) {
    lines.push(options.scheme === 'http' ? 'No TLS: the external URL is http.' : 'No TLS here: it ends at the outer proxy.');
  }
  return lines;
}

/**
 * The matching Berth settings, as comment lines (without markers), printed at the end of every
 * file so the proxy and Berth are configured as one.
 */
export function berthSettingLines(options: ProxyConfigOptions): string[] {
  const proxies = options.trustedProxies;
  const lines = [
    "Berth's side (config file, or the environment variables after it):",
    `  externalURL: ${options.externalUrl}          # BERTH_EXTERNAL_URL=${options.externalUrl}`,
    `  trustedProxies: [${proxies.map((p) => JSON.stringify(p)).join(', ')}]          # BERTH_TRUSTED_PROXIES=${proxies.join(',')}`,
    'externalURL gives the token realm; trustedProxies lets Berth believe the X-Forwarded-* headers this proxy sets.',
  ];
  if (options.inner) lines.push('Add the outer proxy\'s address to trustedProxies as well, so Berth sees the real client address.');
  return lines;
}

/** Prefixes each line with `# ` (all four formats use `#` comments). */
export function hashComments(lines: readonly string[], indent = ''): string {
  return lines.map((l) => `${indent}# ${l}`.trimEnd()).join('\n');
}
