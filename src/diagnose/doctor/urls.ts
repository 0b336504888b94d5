// Judging every URL a registry hands back against the URL the user typed (pure functions).
//
// WHATWG `URL` normalises away default ports (`https://h:443` has host `h`), which is exactly the
// difference containerd trips over, so authorities are compared as the raw strings the server sent.
import type { ClientFamily, MechanismId } from './types.ts';

const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443' };

/** The registry URL the user typed, split into the parts clients compare. */
export interface Target {
  readonly scheme: 'http' | 'https';
  /** `host[:port]` exactly as typed (lower-cased), e.g. `hub.example.com` or `hub.example.com:443`. */
  readonly authority: string;
  readonly hostname: string;
  /** Effective port (the default one when none was typed). */
  readonly port: string;
  /** `scheme://authority`, no trailing slash. */
  readonly base: string;
}

/** Raw scheme and authority of an absolute URL string, without any normalisation but lower-case. */
export function rawOrigin(url: string): { scheme: string; authority: string } | undefined {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)/i.exec(url);
  if (!match) return undefined;
  const authority = match[2]!.replace(/^.*@/, '').toLowerCase();
  return { scheme: match[1]!.toLowerCase(), authority };
}

/** Host name and effective port of an authority (IPv6 brackets kept). */
export function splitAuthority(authority: string, scheme: string): { hostname: string; port: string } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
  const hostname = match?.[1] ?? authority;
  const port = match?.[2] ? match[2] : (DEFAULT_PORT[scheme] ?? '');
  return { hostname, port };
}

/** `host:port` with the scheme's default port made explicit: what the classic Docker client compares. */
export function canonicalAuthority(authority: string, scheme: string): string {
  const { hostname, port } = splitAuthority(authority, scheme);
  return `${hostname}:${port}`;
}

/** Parses what the user typed; a missing scheme means https, as every client assumes. */
export function parseTarget(typed: string): Target {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(typed) ? typed : `https://${typed}`;
  const origin = rawOrigin(withScheme);
  if (!origin || (origin.scheme !== 'http' && origin.scheme !== 'https') || origin.authority === '') {
    throw new Error(`not an http(s) registry URL: ${typed}`);
  }
  new URL(withScheme); // throws on a malformed authority
  const { hostname, port } = splitAuthority(origin.authority, origin.scheme);
  const scheme = origin.scheme;
  return { scheme, authority: origin.authority, hostname, port, base: `${scheme}://${origin.authority}` };
}

/**
 * Resolves a Location (absolute or relative) against the URL of the request that returned it. A
 * relative reference keeps the request's raw authority, as every client keeps the host it chose.
 */
export function resolveReference(reference: string, requestUrl: string): { url: string; absolute: boolean } {
  if (rawOrigin(reference)) return { url: reference, absolute: true };
  const origin = rawOrigin(requestUrl);
  const resolved = new URL(reference, requestUrl);
  if (!origin) return { url: resolved.toString(), absolute: false };
  return { url: `${origin.scheme}://${origin.authority}${resolved.pathname}${resolved.search}`, absolute: false };
}

/** What one returned URL means for each client family. */
export interface UrlJudgement {
  readonly url: string;
  readonly absolute: boolean;
  readonly sameScheme: boolean;
  /** Authority identical as a string (containerd's test). */
  readonly sameAuthority: boolean;
  /** Same host and port once default ports are made explicit (classic Docker's test). */
  readonly sameCanonical: boolean;
  readonly sameHostname: boolean;
  readonly underV2: boolean;
  /** Whether each family attaches its credentials when it sends the next request there. */
  readonly credentialsSentBy: Readonly<Record<ClientFamily, boolean>>;
  /** Mechanisms this URL shows (empty when it is fine). */
  readonly mechanisms: readonly MechanismId[];
  /** One sentence per problem, for evidence. */
  readonly problems: readonly string[];
}

/**
 * Judges a URL the server handed back for the next request of an upload (upload `Location`,
 * `Link`), after resolving it against `requestUrl`. Client rules: containerd keeps its authorizer
 * only when scheme and host string are unchanged; the classic Docker client looks credentials up
 * by scheme + host:port with default ports added, and only for paths under `/v2/`; containers/image
 * attaches credentials to every request of the same registry client.
 */
export function judgeNextUrl(reference: string, requestUrl: string, target: Target): UrlJudgement {
  const { url, absolute } = resolveReference(reference, requestUrl);
  const origin = rawOrigin(url) ?? { scheme: target.scheme, authority: target.authority };
  const path = new URL(url).pathname;
  const sameScheme = origin.scheme === target.scheme;
  const sameAuthority = origin.authority === target.authority;
  const sameCanonical = canonicalAuthority(origin.authority, origin.scheme) === canonicalAuthority(target.authority, target.scheme);
  const sameHostname = splitAuthority(origin.authority, origin.scheme).hostname === target.hostname;
  const underV2 = path.startsWith('/v2/');
  const mechanisms: MechanismId[] = [];
  const problems: string[] = [];
  if (!sameScheme) {
    mechanisms.push('M1');
    problems.push(`scheme ${origin.scheme}:// where you typed ${target.scheme}://`);
  }
  if (!sameAuthority) {
    mechanisms.push('M2');
    if (sameCanonical) problems.push(`host "${origin.authority}" differs from the typed "${target.authority}" only by an explicit default port`);
    else if (sameHostname) problems.push(`port changed: "${origin.authority}" instead of "${target.authority}"`);
    else problems.push(`host "${origin.authority}" instead of the typed "${target.authority}"`);
  }
  if (!underV2) {
    mechanisms.push('M4');
    problems.push(`path ${path} is outside /v2/`);
  }
  return {
    url,
    absolute,
    sameScheme,
    sameAuthority,
    sameCanonical,
    sameHostname,
    underV2,
    credentialsSentBy: {
      containerd: sameScheme && sameAuthority,
      docker: sameScheme && sameCanonical && underV2,
      'containers-image': true,
    },
    mechanisms,
    problems,
  };
}

/** Families that would send the next request without credentials. */
export function familiesDroppingCredentials(judgement: UrlJudgement): ClientFamily[] {
  return (Object.keys(judgement.credentialsSentBy) as ClientFamily[]).filter((f) => !judgement.credentialsSentBy[f]);
}

/** Whether a host name looks like an address only reachable from inside (upstream, container, LAN). */
export function looksInternal(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (/^(10|127)\.\d+\.\d+\.\d+$/.test(h) || /^192\.168\.\d+\.\d+$/.test(h) || /^172\.(1[6-9]|2\d|3[01])\.\d+\.\d+$/.test(h)) return true;
  if (h === 'localhost' || h === '::1' || /^f[cd]/i.test(h)) return true;
  return !h.includes('.') && !h.includes(':');
}

/**
 * Judges the token realm: it must be absolute (clients fetch it as given), keep https when the
 * registry is https, and be reachable from where the client is. A realm on another host is normal
 * (a separate auth service); one on an internal address when the registry is public is M2.
 */
export function judgeRealm(realm: string, target: Target): { mechanisms: MechanismId[]; problems: string[] } {
  const origin = rawOrigin(realm);
  if (!origin) return { mechanisms: ['M11'], problems: [`realm "${realm}" is not an absolute URL`] };
  const mechanisms: MechanismId[] = [];
  const problems: string[] = [];
  if (target.scheme === 'https' && origin.scheme !== 'https') {
    mechanisms.push('M1');
    problems.push(`realm uses ${origin.scheme}:// while the registry is https://: credentials would travel in clear text, or hit a redirect`);
  }
  const { hostname } = splitAuthority(origin.authority, origin.scheme);
  if (looksInternal(hostname) && !looksInternal(target.hostname)) {
    mechanisms.push('M2');
    problems.push(`realm host "${origin.authority}" looks internal (the upstream's own address?) while you typed "${target.authority}"`);
  }
  return { mechanisms, problems };
}
