import type { IncomingMessage } from 'node:http';
import { AddressSet, normalizeAddress } from '../domain/cidr.ts';

/** The headers a proxy may add; logged and echoed as evidence whether trusted or not. */
export const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'via'] as const;

/** How a request reached Berth, and how the client addressed it as far as Berth can tell. */
export interface RequestOrigin {
  /** The address that opened the TCP connection to Berth. */
  peer: string;
  /** Whether `peer` is a configured trusted proxy (only then are forwarded headers believed). */
  trustedProxy: boolean;
  /** The client's address: from trusted forwarded headers, else `peer`. */
  client: string;
  /** The scheme the client used: from trusted forwarded headers, else the connection's own. */
  scheme: 'http' | 'https';
  /** The host[:port] the client used: from trusted forwarded headers, else the Host header. */
  host: string | undefined;
  /** Where `client`, `scheme` and `host` came from. */
  source: 'connection' | 'forwarded' | 'x-forwarded';
}

/** The forwarding headers present on a request, lower-case names → values (lists joined). */
export function forwardingHeaders(req: IncomingMessage): Record<string, string> | undefined {
  let found: Record<string, string> | undefined;
  for (const name of FORWARDING_HEADERS) {
    const value = req.headers[name];
    if (value !== undefined) (found ??= {})[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return found;
}

/**
 * Resolves a request's origin. Forwarded headers count only when the connection comes from a trusted
 * proxy (anyone can send them). `Forwarded` (RFC 7239) wins over `X-Forwarded-*`. Along a chain of
 * proxies the walk goes right to left, past every hop that is itself a trusted proxy, and stops at
 * the first address that is not: that hop's entry describes the request as the client made it.
 */
export function resolveOrigin(req: IncomingMessage, secure: boolean, trusted: AddressSet): RequestOrigin {
  const peer = normalizeAddress(req.socket.remoteAddress ?? '');
  const direct: RequestOrigin = { peer, trustedProxy: false, client: peer, scheme: secure ? 'https' : 'http', host: req.headers.host, source: 'connection' };
  if (!trusted.has(peer)) return direct;
  direct.trustedProxy = true;
  const forwarded = header(req, 'forwarded');
  if (forwarded !== undefined) {
    const elements = parseForwarded(forwarded);
    if (elements.length === 0) return direct;
    let index = elements.length - 1;
    while (index > 0 && trusted.has(nodeAddress(elements[index]!.for))) index--;
    const hop = elements[index]!;
    return {
      ...direct,
      client: nodeAddress(hop.for) ?? peer,
      scheme: asScheme(hop.proto) ?? direct.scheme,
      host: hop.host ?? direct.host,
      source: 'forwarded',
    };
  }
  const forList = splitList(header(req, 'x-forwarded-for'));
  const protoList = splitList(header(req, 'x-forwarded-proto'));
  const hostList = splitList(header(req, 'x-forwarded-host'));
  const portList = splitList(header(req, 'x-forwarded-port'));
  const realIp = header(req, 'x-real-ip')?.trim();
  if (forList.length + protoList.length + hostList.length + portList.length === 0 && !realIp) return direct;
  let index = forList.length - 1;
  while (index > 0 && trusted.has(forList[index])) index--;
  // A value list as long as X-Forwarded-For was appended hop by hop: take the client hop's entry.
  // Otherwise the nearest proxy's (rightmost) value, which a client cannot have forged.
  const pick = (list: string[]) => (list.length === 0 ? undefined : list.length === forList.length && index >= 0 ? list[index] : list.at(-1));
  let host = pick(hostList) ?? direct.host;
  const scheme = asScheme(pick(protoList)) ?? direct.scheme;
  const port = pick(portList);
  if (host && port && /^\d{1,5}$/.test(port) && !/:\d+$|]$/.test(host) && port !== (scheme === 'https' ? '443' : '80')) host = `${host}:${port}`;
  const client = index >= 0 ? normalizeAddress(forList[index]!) : realIp ? normalizeAddress(realIp) : peer;
  return { ...direct, client, scheme, host, source: 'x-forwarded' };
}

interface ForwardedElement {
  for?: string;
  proto?: string;
  host?: string;
  by?: string;
}

/** Parses an RFC 7239 `Forwarded` value: comma-separated elements of `;`-separated pairs, values token or quoted-string. */
export function parseForwarded(value: string): ForwardedElement[] {
  const elements: ForwardedElement[] = [];
  let current: Record<string, string> = {};
  let i = 0;
  const flush = () => {
    elements.push(current as ForwardedElement);
    current = {};
  };
  while (i < value.length) {
    const ch = value[i]!;
    if (ch === ' ' || ch === '\t' || ch === ';') {
      i++;
      continue;
    }
    if (ch === ',') {
      flush();
      i++;
      continue;
    }
    const eq = value.indexOf('=', i);
    if (eq < 0) break;
    const key = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let val = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++;
        val += value[i];
        i++;
      }
      i++; // closing quote
    } else {
      while (i < value.length && value[i] !== ';' && value[i] !== ',') val += value[i++];
      val = val.trim();
    }
    if (key === 'for' || key === 'proto' || key === 'host' || key === 'by') current[key] = val;
  }
  flush();
  return elements.filter((e) => Object.keys(e).length > 0);
}

/** The address in a `for=` node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`; undefined for `unknown` or obfuscated ids. */
function nodeAddress(node: string | undefined): string | undefined {
  if (!node) return undefined;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(node);
  if (v6) return normalizeAddress(v6[1]!);
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?::\d+)?$/.exec(node);
  if (v4) return v4[1];
  return node.includes(':') ? normalizeAddress(node) : undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function splitList(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((s) => s.trim()).filter(Boolean);
}

function asScheme(value: string | undefined): 'http' | 'https' | undefined {
  const lower = value?.trim().toLowerCase();
  return lower === 'http' || lower === 'https' ? lower : undefined;
}
