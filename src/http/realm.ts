import type { IncomingMessage } from 'node:http';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** `host[:port]` with the scheme's default port removed and lower-cased, for comparing hosts. */
export function normalizeHost(host: string, protocol: string): string {
  const lower = host.toLowerCase();
  const port = DEFAULT_PORTS[protocol];
  return port && lower.endsWith(`:${port}`) ? lower.slice(0, -port.length - 1) : lower;
}

/**
 * The base URL for the token realm. With external URLs configured: the one whose host matches the
 * request's Host (default ports normalised), else the first. Without: the request's own Host and
 * the connection's scheme. Upload URLs never use this: they are relative.
 */
export function externalBase(req: IncomingMessage, secure: boolean, externalURLs: readonly string[]): string {
  const protocol = secure ? 'https:' : 'http:';
  const host = req.headers.host;
  if (externalURLs.length > 0) {
    if (host) {
      for (const url of externalURLs) {
        const parsed = new URL(url);
        if (normalizeHost(parsed.host, parsed.protocol) === normalizeHost(host, parsed.protocol)) return url;
      }
    }
    return externalURLs[0]!;
  }
  if (host && /^[A-Za-z0-9.\-_:[\]]+$/.test(host)) return `${protocol}//${normalizeHost(host, protocol)}`;
  const local = req.socket.localAddress ?? '127.0.0.1';
  return `${protocol}//${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort}`;
}
