import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { AddressSet, normalizeAddress } from '../domain/cidr.ts';

/** The headers a proxy may add; logged and echoed as evidence whether trusted or not. */
export const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'via'] as const;

/** The headers that name the client's address, each able to contradict the others. */
export type ClientHeader = 'forwarded' | 'x-forwarded-for' | 'x-real-ip';

/** How a request reached Berth, and how the client addressed it as far as Berth can tell. */
export interface RequestOrigin {
  /** The address that opened the TCP connection to Berth. */
  peer: string;
  /** Whether `peer` is a configured trusted proxy (only then are forwarded headers believed). */
  trustedProxy: boolean;
  /** The client's address: from trusted forwarded headers, else `peer`. Always an IP address. */
  client: string;
  /** The scheme the client used: from trusted forwarded headers, else the connection's own. */
  scheme: 'http' | 'https';
  /** The host[:port] the client used: from trusted forwarded headers, else the Host header. */
  host: string | undefined;
  /** Where `client`, `scheme` and `host` came from. */
  source: 'connection' | 'forwarded' | 'x-forwarded';
  /** Whether a trusted proxy stated the scheme (`proto=` or X-Forwarded-Proto); false: it is the connection's own. */
  schemeForwarded: boolean;
  /**
   * Present when a trusted proxy's request named different clients in different headers (each
   * header → the address it named, `unknown` for an obfuscated or unparsable node). One of them was
   * passed on from the client unchanged and Berth cannot tell which, so it believed none: `client`
   * is then `peer`, and `scheme`/`host` are the connection's (`source: 'connection'`).
   */
  conflict?: Readonly<Partial<Record<ClientHeader, string>>>;
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

/** The client one header names: its hop nearest the client that is not a trusted proxy. */
interface ClientHop {
  readonly header: ClientHeader;
  /** Index of that hop's entry in the header's list. */
  readonly index: number;
  /** Its address; undefined for `unknown`, an obfuscated identifier or anything not an IP address. */
  readonly address: string | undefined;
  /** False when every entry is a trusted proxy, so the walk ended at the left-most entry. */
  readonly untrusted: boolean;
}

/**
 * Walks a hop list (left: client side, right: the proxy nearest Berth) from the right, past every
 * trusted proxy. The right-most entry was written by the proxy that connected to Berth, so a client
 * can prepend entries but never choose where the walk stops: it stops at the first address that is
 * not a trusted proxy (an unknown address stops it too), or at the left-most when all are trusted.
 */
function clientHop(header: ClientHeader, addresses: readonly (string | undefined)[], trusted: AddressSet): ClientHop | undefined {
  if (addresses.length === 0) return undefined;
  let index = addresses.length - 1;
  while (index > 0 && trusted.has(addresses[index])) index--;
  const address = addresses[index];
  return { header, index, address, untrusted: !trusted.has(address) };
}

/**
 * Resolves a request's origin. Forwarded headers count only when the connection comes from a trusted
 * proxy (anyone can send them). Along a chain of proxies each hop list is walked right to left, past
 * every hop that is itself a trusted proxy, to the first address that is not: that hop's entry
 * describes the request as the client made it (a forged entry further left is never reached).
 *
 * A proxy overwrites or appends to the headers it knows and passes every other one on as the client
 * sent it: one that writes only X-Forwarded-For passes a client's `Forwarded` on unchanged, one that
 * writes only `Forwarded` or only X-Real-IP passes a client's X-Forwarded-For on. So the headers
 * that name the client (`Forwarded`, X-Forwarded-For, X-Real-IP) must agree: when two of them name
 * different untrusted client hops, one is a lie Berth cannot tell from the truth, and it believes
 * none — the client is the peer, scheme and host are the connection's, and `conflict` says why.
 * A header whose hops are all trusted proxies names no client to disagree with (it comes from a
 * chain of trusted hops, e.g. an inner proxy setting X-Real-IP to the outer one, or is a client
 * naming a trusted address, which the other header then outvotes). When they agree, or only one
 * names a client, that one is believed: `Forwarded` (RFC 7239) first, then X-Forwarded-For, then
 * X-Real-IP, and scheme and host come from the same family (`Forwarded`, or X-Forwarded-Proto/-Host/-Port).
 */
export function resolveOrigin(req: IncomingMessage, secure: boolean, trusted: AddressSet): RequestOrigin {
  const peer = normalizeAddress(req.socket.remoteAddress ?? '');
  const direct: RequestOrigin = { peer, trustedProxy: false, client: peer, scheme: secure ? 'https' : 'http', host: req.headers.host, source: 'connection', schemeForwarded: false };
  if (!trusted.has(peer)) return direct;
  direct.trustedProxy = true;

  const elements = parseForwarded(header(req, 'forwarded') ?? '');
  const forList = splitList(header(req, 'x-forwarded-for'));
  const hops = [
    // Elements without a `for` parameter say nothing about the client (e.g. `proto=https` alone).
    elements.some((e) => e.for !== undefined) ? clientHop('forwarded', elements.map((e) => nodeAddress(e.for)), trusted) : undefined,
    clientHop('x-forwarded-for', forList.map(nodeAddress), trusted),
    clientHop('x-real-ip', splitList(header(req, 'x-real-ip')).map(nodeAddress), trusted),
  ].filter((hop): hop is ClientHop => hop !== undefined);

  const naming = hops.filter((hop) => hop.untrusted);
  const first = naming[0];
  if (first && naming.length > 1 && naming.some((hop) => hop.address === undefined || hop.address !== first.address)) {
    return { ...direct, conflict: Object.fromEntries(naming.map((hop) => [hop.header, hop.address ?? 'unknown'])) };
  }
  // Without an untrusted hop anywhere (a client inside a trusted range), the first header's left-most.
  const believed = first ?? hops[0];
  const client = believed?.address ?? peer;

  if (believed ? believed.header === 'forwarded' : elements.length > 0) {
    const hop = elements[believed?.index ?? elements.length - 1]!;
    const stated = asScheme(hop.proto);
    return { ...direct, client, scheme: stated ?? direct.scheme, host: hop.host ?? direct.host, source: 'forwarded', schemeForwarded: stated !== undefined };
  }
  const protoList = splitList(header(req, 'x-forwarded-proto'));
  const hostList = splitList(header(req, 'x-forwarded-host'));
  const portList = splitList(header(req, 'x-forwarded-port'));
  if (hops.length + protoList.length + hostList.length + portList.length === 0) return direct;
  const index = believed?.header === 'x-forwarded-for' ? believed.index : forList.length - 1;
  // A value list as long as X-Forwarded-For was appended hop by hop: take the client hop's entry.
  // Otherwise the nearest proxy's (rightmost) value, which a client cannot have forged.
  const pick = (list: string[]) => (list.length === 0 ? undefined : list.length === forList.length && index >= 0 ? list[index] : list.at(-1));
  let host = pick(hostList) ?? direct.host;
  const stated = asScheme(pick(protoList));
  const scheme = stated ?? direct.scheme;
  const port = pick(portList);
  if (host && port && /^\d{1,5}$/.test(port) && !/:\d+$|]$/.test(host) && port !== (scheme === 'https' ? '443' : '80')) host = `${host}:${port}`;
  return { ...direct, client, scheme, host, source: 'x-forwarded', schemeForwarded: stated !== undefined };
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

/**
 * The IP address in a `for=` node or a list entry: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
 * `[2001:db8::1]:4711`; undefined for `unknown`, obfuscated identifiers and anything else.
 */
function nodeAddress(node: string | undefined): string | undefined {
  if (!node) return undefined;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(node);
  const v4 = /^(\d+\.\d+\.\d+\.\d+)(?::\d+)?$/.exec(node);
  const address = v6 ? normalizeAddress(v6[1]!) : v4 ? v4[1]! : normalizeAddress(node);
  return isIP(address) === 0 ? undefined : address;
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
