// The doctor's HTTP client: one request, never a redirect followed, everything recorded.
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { rawOrigin } from './urls.ts';
import type { AuthKind, Exchange } from './types.ts';

/** How requests reach the registry. */
export interface ProbeConfig {
  readonly insecure?: boolean;
  readonly ca?: string;
  readonly timeoutMs: number;
}

/** A request body: bytes, or a generated stream of `size` bytes (for the body-limit probe). */
export type ProbeBody = Buffer | { readonly size: number; readonly chunked?: boolean };

/** One request. */
export interface ProbeRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: ProbeBody;
  /** Response body bytes to keep as text; default 8 KiB. */
  readonly keepBody?: number;
}

const FILLER = Buffer.alloc(1024 * 1024, 0x5a);

function authKind(authorization: string | undefined): AuthKind {
  if (!authorization) return 'none';
  return /^basic /i.test(authorization) ? 'basic' : 'bearer';
}

function flatten(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Sends one request and records it. The Host header is the URL's authority exactly as given
 * (`hub:443` stays `hub:443`), as a Go client sends it; node would drop a default port. Never
 * throws: a request that got no response has `error` with node's code (ETIMEDOUT on timeout).
 * A response that arrives while the body is still being written (a 413 from a proxy) is kept.
 */
export function send(config: ProbeConfig, req: ProbeRequest): Promise<Exchange> {
  const started = Date.now();
  const url = new URL(req.url);
  const origin = rawOrigin(req.url);
  const body = req.body;
  const chunked = body !== undefined && !Buffer.isBuffer(body) && body.chunked === true;
  const bodyBytes = body === undefined ? 0 : Buffer.isBuffer(body) ? body.length : body.size;
  const headers: Record<string, string> = { 'User-Agent': 'berth-doctor', ...req.headers };
  if (origin) headers['Host'] = origin.authority;
  if (req.authorization) headers['Authorization'] = req.authorization;
  if (body !== undefined && !chunked) headers['Content-Length'] = String(bodyBytes);
  else if (chunked) headers['Transfer-Encoding'] = 'chunked';
  else if (['POST', 'PUT', 'PATCH'].includes(req.method)) headers['Content-Length'] = '0';
  const base = { method: req.method, url: req.url, auth: authKind(req.authorization), bodyBytes, chunked };
  const keep = req.keepBody ?? 8192;

  return new Promise<Exchange>((resolve) => {
    let settled = false;
    let response: Exchange | undefined;
    const finish = (exchange: Exchange): void => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(exchange);
      }
    };
    const fail = (code: string, message: string): void => {
      if (response) finish(response);
      else finish({ ...base, headers: {}, durationMs: Date.now() - started, error: { code, message } });
    };
    const options: https.RequestOptions = {
      method: req.method,
      headers,
      agent: false,
      rejectUnauthorized: !config.insecure,
      ...(config.ca ? { ca: config.ca } : {}),
      // SNI and certificate checks use the host name, never the port.
      servername: url.protocol === 'https:' && !/^[\d.]+$|:/.test(url.hostname) ? url.hostname : undefined,
    };
    const request = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
      const receivedAt = Date.now();
      const chunks: Buffer[] = [];
      const hash = createHash('sha256');
      let kept = 0;
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        total += chunk.length;
        if (kept < keep) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      const done = (): void => {
        if (response) return;
        response = {
          ...base,
          status: res.statusCode,
          headers: flatten(res.headers),
          body: Buffer.concat(chunks).subarray(0, keep).toString('utf8'),
          bodyDigest: `sha256:${hash.digest('hex')}`,
          bodyLength: total,
          durationMs: Date.now() - started,
          receivedAt,
        };
        finish(response);
      };
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    const timer = setTimeout(() => {
      request.destroy(Object.assign(new Error(`no complete answer within ${config.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, config.timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'ERROR', error.message));
    if (body === undefined) {
      request.end();
    } else if (Buffer.isBuffer(body)) {
      request.end(body);
    } else {
      void writeGenerated(request, body.size).catch(() => undefined);
    }
  });
}

/** Streams `size` filler bytes with back-pressure, stopping early when the request dies. */
async function writeGenerated(request: http.ClientRequest, size: number): Promise<void> {
  let left = size;
  while (left > 0 && !request.destroyed) {
    const piece = left >= FILLER.length ? FILLER : FILLER.subarray(0, left);
    left -= piece.length;
    if (!request.write(piece)) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          request.off('drain', go);
          request.off('close', go);
          resolve();
        };
        request.once('drain', go);
        request.once('close', go);
      });
    }
  }
  if (!request.destroyed) request.end();
}

/** The server certificate as shown in a TLS finding. */
export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly altNames: string;
  /** ISO 8601 (UTC). */
  readonly validFrom: string;
  readonly validTo: string;
}

const distinguishedName = (name: object | undefined): string =>
  Object.entries(name ?? {}).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : String(value)}`).join(', ');

const isoDate = (date: string): string => {
  const parsed = new Date(date);
  return Number.isNaN(parsed.getTime()) ? date : parsed.toISOString().replace('.000Z', 'Z');
};

/**
 * Reads the certificate an https server presents, without verifying it, to say what exactly
 * failed verification (which CA issued it, which names, which dates). Undefined when no handshake
 * completes within `timeoutMs`.
 */
export function peerCertificate(url: string, timeoutMs: number): Promise<CertificateSummary | undefined> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port: Number(port || 443), servername: net.isIP(host) ? undefined : host, rejectUnauthorized: false });
    const done = (summary: CertificateSummary | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(summary);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('error', () => done(undefined));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      if (!cert || !cert.valid_to) return done(undefined);
      done({
        subject: distinguishedName(cert.subject),
        issuer: distinguishedName(cert.issuer),
        altNames: cert.subjectaltname ?? 'none',
        validFrom: isoDate(cert.valid_from),
        validTo: isoDate(cert.valid_to),
      });
    });
  });
}
