// One HTTP POST of a rendered webhook message to its receiver. Redirects are not followed (a
// receiver that moved must be re-registered: following would carry the auth header elsewhere), and
// only the first KiB of the answer is read and kept.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { VERSION } from '../version.ts';

/** Bytes of the receiver's answer kept for the delivery log. */
export const RESPONSE_EXCERPT_BYTES = 1024;

/** One message to send. */
export interface Message {
  url: string;
  body: string;
  /** Extra headers: signature headers, the (opened) auth header. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** PEM of CA certificates trusted beside the system ones. */
  ca?: string;
  /** Do not verify the receiver's certificate. */
  insecure?: boolean;
  signal?: AbortSignal;
}

/** How the attempt went. `ok`: the receiver answered 2xx. */
export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  /** The start of the answer (UTF-8, at most RESPONSE_EXCERPT_BYTES); null without an answer. */
  response: string | null;
  /** Why it failed, in words that never repeat the auth header; null when ok. */
  error: string | null;
  durationMs: number;
}

/** Why `text` cannot be a webhook URL (undefined when it can). Never repeats `text`. */
export function webhookURLProblem(text: string): string | undefined {
  if (text.length > 2048) return 'at most 2048 characters';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL: must be http(s)://host[:port]/path';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'only http and https are allowed';
  if (url.username || url.password || /^[a-z]+:\/\/[^/?#]*@/i.test(text)) return 'must not contain credentials: give an auth header instead';
  if (!url.hostname) return 'no host';
  if (url.hash) return 'must not have a fragment';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(text)) return 'must not contain spaces or control characters';
  return undefined;
}

/**
 * POSTs `message` and reports how it went. Never rejects: a refused connection, a TLS failure, a
 * timeout (`timeoutMs` for the whole exchange) and an abort are results with an `error`.
 */
export async function send(message: Message): Promise<SendResult> {
  const started = performance.now();
  const finish = (r: Omit<SendResult, 'durationMs'>): SendResult => ({ ...r, durationMs: Math.round(performance.now() - started) });
  let url: URL;
  try {
    url = new URL(message.url);
  } catch {
    return finish({ ok: false, statusCode: null, response: null, error: 'the URL does not parse' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return finish({ ok: false, statusCode: null, response: null, error: 'only http and https are allowed' });
  const body = Buffer.from(message.body);
  const headers = {
    'Content-Type': 'application/json',
    'Content-Length': String(body.length),
    'User-Agent': `Berth-Webhook/${VERSION}`,
    ...message.headers,
  };
  const secure = url.protocol === 'https:';
  const request = secure ? httpsRequest : httpRequest;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const done = (r: Omit<SendResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      message.signal?.removeEventListener('abort', onAbort);
      resolve(finish(r));
    };
    const req = request(
      url,
      {
        method: 'POST',
        headers,
        agent: false,
        ...(secure ? { ...(message.ca ? { ca: message.ca } : {}), rejectUnauthorized: !message.insecure } : {}),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        const status = res.statusCode ?? 0;
        const answer = () => {
          const excerpt = Buffer.concat(chunks).subarray(0, RESPONSE_EXCERPT_BYTES).toString('utf8');
          const ok = status >= 200 && status < 300;
          let error: string | null = null;
          if (!ok) error = status >= 300 && status < 400 ? `the receiver answered ${status} (redirects are not followed)` : `the receiver answered ${status}`;
          done({ ok, statusCode: status, response: excerpt, error });
          res.destroy();
          req.destroy();
        };
        res.on('data', (chunk: Buffer) => {
          if (kept < RESPONSE_EXCERPT_BYTES) chunks.push(chunk);
          kept += chunk.length;
          // Enough for the log: the rest of a large answer is not waited for.
          if (kept >= RESPONSE_EXCERPT_BYTES) answer();
        });
        res.on('end', answer);
        res.on('error', answer);
      },
    );
    const timer = setTimeout(() => {
      done({ ok: false, statusCode: null, response: null, error: `timeout: no answer within ${Math.round(message.timeoutMs / 1000)}s` });
      req.destroy();
    }, message.timeoutMs);
    const onAbort = () => {
      done({ ok: false, statusCode: null, response: null, error: 'stopped: the server is shutting down' });
      req.destroy();
    };
    message.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, statusCode: null, response: null, error: failure(err) }));
    req.end(body);
  });
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|HOSTNAME_MISMATCH)/;

/** A sentence for a transport error: its code, never the request's headers. */
function failure(err: NodeJS.ErrnoException): string {
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (code && TLS_CODES.test(code)) return `TLS: the receiver failed the TLS handshake or certificate check (${code}); give caFile, or insecure for a test setup`;
  if (code === 'ECONNREFUSED') return 'unreachable: connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unreachable: the host name does not resolve';
  if (code === 'ECONNRESET') return 'unreachable: the connection was reset';
  return `unreachable: ${code ?? 'the request failed'}`;
}
