// One HTTP exchange with another registry (or its token service, or the storage it redirects to):
// keep-alive agents, the idle watchdog, retries of idempotent requests, redirects, bounded reads
// and the error envelope. Knows nothing of authentication beyond where an Authorization may go.
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteError, type Endpoint } from './types.ts';

/** Writes a request body (it must end the request); a rejection aborts the request with its error. */
export type BodyWriter = (req: ClientRequest) => Promise<void>;

/** One logical request; redirects and retries happen below it. */
export interface Call {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  /** What is being done, for error messages: `GET manifest team/app:v1`. Never holds a secret. */
  op: string;
  headers?: Record<string, string>;
  /** Sent only to `authorizationOrigin` (default: the endpoint's origin), never across a redirect elsewhere. */
  authorization?: string;
  authorizationOrigin?: string;
  body?: Buffer | BodyWriter;
  /** Retry on unreachable / reset and 502-504 (default: GET and HEAD). Never with a BodyWriter. */
  idempotent?: boolean;
  /** Redirects to follow; default 0 (a 3xx is returned as it is). */
  redirects?: number;
}

/** What the transport needs from the client. */
export interface TransportOptions {
  timeoutMs: number;
  userAgent: string;
  /** Removes secrets (password, tokens) from upstream text before it reaches an error message. */
  redact: (text: string) => string;
  /** Aborts every request in flight and refuses new ones (see ClientOptions.signal). */
  signal?: AbortSignal;
}

/** Statuses an idempotent request is retried on; 429 is not: the proxy cache must see it at once to serve stale. */
const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const ATTEMPTS = 3;
/** Error bodies are read up to this much for their code and message. */
export const ERROR_BODY_LIMIT = 64 * 1024;
const MESSAGE_CLIP = 200;

/** The HTTP side of a RegistryClient: agents for the endpoint's origin and for everything else. */
export class Transport {
  /** The endpoint's origin: the only one that gets the registry's Authorization. */
  readonly origin: string;
  readonly #name: string;
  readonly #options: TransportOptions;
  readonly #httpAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
  readonly #ownHttps: https.Agent;
  readonly #foreignHttps: https.Agent;

  /** Requests in flight, destroyed when `options.signal` aborts (one listener, however many requests). */
  readonly #inFlight = new Set<ClientRequest>();

  constructor(endpoint: Endpoint, options: TransportOptions) {
    options.signal?.addEventListener('abort', () => {
      for (const req of this.#inFlight) req.destroy(options.signal!.reason instanceof Error ? options.signal!.reason : new Error('aborted'));
    }, { once: true });
    this.origin = new URL(endpoint.url).origin;
    this.#name = endpoint.name;
    this.#options = options;
    // `ca` replaces Node's trust store, so the endpoint's CAs are added to the bundled roots.
    const ca = endpoint.ca ? [...tls.rootCertificates, endpoint.ca.toString()] : undefined;
    this.#ownHttps = new https.Agent({ keepAlive: true, scheduling: 'lifo', ca, rejectUnauthorized: !endpoint.insecure });
    // Storage and token hosts the endpoint sends us to are always verified: `insecure` is a
    // statement about the endpoint's own certificate, not a licence for wherever it redirects.
    this.#foreignHttps = new https.Agent({ keepAlive: true, scheduling: 'lifo', ca });
  }

  /**
   * Sends `call`, following redirects as allowed, retrying idempotent calls on unreachable / reset
   * and 502-504 (3 attempts, jittered backoff). Resolves with the response (any status) once its
   * headers arrive; its body is unread and guarded by the idle watchdog. Rejects with a
   * RemoteError (`unreachable`, `timeout`, `protocol`), or with the BodyWriter's own error.
   */
  async send(call: Call): Promise<IncomingMessage> {
    const idempotent = typeof call.body !== 'function' && (call.idempotent ?? (call.method === 'GET' || call.method === 'HEAD'));
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= ATTEMPTS;
      this.#options.signal?.throwIfAborted();
      try {
        const res = await this.#follow(call);
        if (!idempotent || last || !RETRY_STATUSES.has(res.statusCode ?? 0)) return res;
        discard(res);
      } catch (error) {
        const retry = error instanceof RemoteError && !last && (idempotent ? retryable(error) : freshSocketRetry(error, call));
        if (!retry || this.#options.signal?.aborted) throw this.#options.signal?.aborted ? this.#options.signal.reason : error;
      }
      await sleep(Math.round(100 * 3 ** (attempt - 1) * (0.5 + Math.random())));
    }
  }

  /** Destroys every pooled socket; requests in flight fail. */
  close(): void {
    this.#httpAgent.destroy();
    this.#ownHttps.destroy();
    this.#foreignHttps.destroy();
  }

  /**
   * Reads a whole body of at most `limit` bytes. Rejects with RemoteError('protocol') when it is
   * longer (the response is destroyed), or with the transfer's failure as a RemoteError.
   */
  async readBody(res: IncomingMessage, limit: number, op: string): Promise<Buffer> {
    const tooLarge = (): RemoteError => {
      res.destroy();
      return this.protocolError(op, `the answer is larger than ${limit} bytes`);
    };
    const declared = res.headers['content-length'];
    if (declared !== undefined && (!/^\d{1,15}$/.test(declared) || Number(declared) > limit)) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) throw tooLarge();
        chunks.push(chunk);
      }
    } catch (error) {
      throw this.#networkError(op, error, false);
    }
    return Buffer.concat(chunks, size);
  }

  /** A RemoteError for an error status, with the registry's code and a clipped, redacted message from its envelope. */
  async statusError(res: IncomingMessage, op: string, what?: string): Promise<RemoteError> {
    const status = res.statusCode ?? 0;
    let code: string | undefined;
    let message: string | undefined;
    try {
      const body = await this.readBody(res, ERROR_BODY_LIMIT, op);
      const first = (JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] }).errors?.[0];
      if (typeof first?.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(first.code)) code = first.code;
      if (typeof first?.message === 'string') message = clip(this.#options.redact(first.message));
    } catch {
      /* no envelope: the status says enough */
    }
    const text = `${this.#name}: ${op}: ${what ?? 'failed'}: HTTP ${status}${code ? ` ${code}` : ''}${message ? ` (${message})` : ''}`;
    return new RemoteError('status', text, status, code);
  }

  /** A RemoteError('protocol') naming the endpoint and operation. */
  protocolError(op: string, problem: string, cause?: unknown): RemoteError {
    return new RemoteError('protocol', `${this.#name}: ${op}: ${problem}`, undefined, undefined, cause === undefined ? undefined : { cause });
  }

  async #follow(call: Call): Promise<IncomingMessage> {
    let url = call.url;
    let method = call.method;
    let body = call.body;
    for (let hop = 0; ; hop++) {
      const res = await this.#once(call, method, url, body);
      answeredBy.set(res, url);
      const status = res.statusCode ?? 0;
      if (!(call.redirects && [301, 302, 303, 307, 308].includes(status))) return res;
      const location = res.headers.location;
      discard(res);
      if (hop >= call.redirects) throw this.protocolError(call.op, `more than ${call.redirects} redirects`);
      url = resolveLocation(location, url, () => this.protocolError(call.op, 'a redirect without a usable http(s) Location'));
      if (status === 303 && method !== 'HEAD') {
        method = 'GET';
        body = undefined;
      }
    }
  }

  #once(call: Call, method: string, url: URL, body: Buffer | BodyWriter | undefined): Promise<IncomingMessage> {
    return new Promise<IncomingMessage>((resolve, reject) => {
      const own = url.origin === this.origin;
      const headers: Record<string, string | number> = { 'User-Agent': this.#options.userAgent, ...call.headers };
      if (call.authorization && url.origin === (call.authorizationOrigin ?? this.origin)) headers['Authorization'] = call.authorization;
      if (Buffer.isBuffer(body)) headers['Content-Length'] = body.length;
      const agent = url.protocol === 'https:' ? (own ? this.#ownHttps : this.#foreignHttps) : this.#httpAgent;
      let req: ClientRequest;
      try {
        req = (url.protocol === 'https:' ? https : http).request(url, { method, headers, agent });
      } catch (error) {
        // Node refuses header values with control characters: something upstream-supplied was hostile.
        reject(this.protocolError(call.op, 'a request header could not be sent', error));
        return;
      }
      let response: IncomingMessage | undefined;
      let settled = false;
      let writerFailure: unknown;
      const dog = watchdog(req, this.#options.timeoutMs, () => {
        const error = new RemoteError('timeout', `${this.#name}: ${call.op}: no progress for ${this.#options.timeoutMs} ms`);
        if (response) response.destroy(error);
        else req.destroy(error);
      });
      req.on('response', (res) => {
        response = res;
        settled = true;
        dog.response(res);
        res.once('close', dog.stop);
        resolve(res);
      });
      // Kept for the request's life: the socket may report errors after the response arrived (the
      // response is then destroyed by Node), and an 'error' without a listener would crash.
      req.on('error', (error) => {
        dog.stop();
        if (settled) return;
        settled = true;
        reject(writerFailure ?? this.#networkError(call.op, error, req.reusedSocket && !response));
      });
      this.#inFlight.add(req);
      req.once('close', () => {
        this.#inFlight.delete(req);
        if (!response) dog.stop();
      });
      if (typeof body === 'function') {
        body(req).catch((error: unknown) => {
          writerFailure = error;
          req.destroy(error instanceof Error ? error : new Error(String(error)));
        });
      } else req.end(body);
    });
  }

  #networkError(op: string, error: unknown, reusedSocket: boolean): RemoteError {
    if (error instanceof RemoteError) return error;
    const code = String((error as NodeJS.ErrnoException).code ?? '');
    const safe = /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'unknown';
    // Node's HTTP parser refused the answer (oversized or malformed headers): not HTTP we can use.
    if (code.startsWith('HPE_')) return this.protocolError(op, `the answer is not valid HTTP (${safe})`, error);
    const tlsProblem = code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_|HOSTNAME/.test(code);
    const what = tlsProblem ? `TLS verification failed (${safe})` : `cannot reach the registry (${safe})`;
    const remote = new RemoteError('unreachable', `${this.#name}: ${op}: ${what}`, undefined, undefined, { cause: error });
    if (RETRY_CODES.has(code)) retryableErrors.add(remote);
    if (reusedSocket && code === 'ECONNRESET') staleSocketErrors.add(remote);
    return remote;
  }
}

const answeredBy = new WeakMap<IncomingMessage, URL>();

/** The URL that gave this response (after redirects). */
export function answeredURL(res: IncomingMessage): URL | undefined {
  return answeredBy.get(res);
}

const retryableErrors = new WeakSet<RemoteError>();
const staleSocketErrors = new WeakSet<RemoteError>();

function retryable(error: RemoteError): boolean {
  return retryableErrors.has(error);
}

/**
 * A pooled keep-alive socket the server had already closed fails before any byte of an answer:
 * such a request never reached the server, so even a POST or PUT (with a replayable body) is sent
 * again — the case Node's documentation describes for `request.reusedSocket`.
 */
function freshSocketRetry(error: RemoteError, call: Call): boolean {
  return staleSocketErrors.has(error) && typeof call.body !== 'function';
}

/** Resolves a Location against the URL it answered; only http(s) without userinfo. */
export function resolveLocation(location: string | undefined, base: URL, fail: () => RemoteError): URL {
  if (!location || location.length > 8192) throw fail();
  let url: URL;
  try {
    url = new URL(location, base);
  } catch {
    throw fail();
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) throw fail();
  return url;
}

/**
 * Watches a request for progress: bytes read or written on its socket. No progress for
 * `timeoutMs` while the network is what is being waited for (connecting, sending, awaiting the
 * answer, receiving a body the consumer is ready to take) calls `fire`. A consumer that holds the
 * body back (its buffer full) is not the upstream's fault and does not count.
 */
function watchdog(req: ClientRequest, timeoutMs: number, fire: () => void): { stop: () => void; response: (res: IncomingMessage) => void } {
  let res: IncomingMessage | undefined;
  let mark = -1;
  let last = Date.now();
  const tick = (): void => {
    if (res?.complete) return stop();
    const socket = req.socket;
    const progress = socket ? socket.bytesRead + socket.bytesWritten : -1;
    // A consumer that stops reading lets the buffer fill (Node keeps reading the socket up to the
    // high-water mark); an upstream that stops sending leaves it below.
    const held = res !== undefined && res.readableLength >= res.readableHighWaterMark;
    const now = Date.now();
    if (progress !== mark || held) {
      mark = progress;
      last = now;
    } else if (now - last >= timeoutMs) {
      stop();
      fire();
    }
  };
  const timer = setInterval(tick, Math.max(20, Math.min(1000, Math.floor(timeoutMs / 5))));
  timer.unref();
  const stop = (): void => clearInterval(timer);
  return { stop, response: (r) => (res = r) };
}

/** Lets go of a response whose body does not matter: a small one is drained (the socket stays pooled), a large or unknown one destroyed. */
export function discard(res: IncomingMessage): void {
  const length = Number(res.headers['content-length'] ?? Number.NaN);
  if (res.complete || (Number.isFinite(length) && length <= ERROR_BODY_LIMIT)) {
    res.on('error', () => undefined);
    res.resume();
  } else res.destroy();
}

/** Upstream text made safe for a message: printable, single-line, short. */
export function clip(text: string): string {
  const flat = text.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return flat.length > MESSAGE_CLIP ? `${flat.slice(0, MESSAGE_CLIP)}…` : flat;
}
