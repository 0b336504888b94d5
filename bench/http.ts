// The benchmark's HTTP client: node:http over keep-alive agents, bodies from memory or generated,
// response bodies counted (and kept only when asked), plus the credentials a real client sends.
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

/** A response as the benchmark needs it: status, headers, how many body bytes, and the body if kept. */
export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly bytes: number;
  readonly body?: Buffer;
  /** Seconds from sending the request to the first body byte (fetchLarge only; unset without a body). */
  readonly firstByteSeconds?: number;
}

/** A request body: one buffer (sent with one write), or chunks produced on demand of a known total length. */
export type Body = Buffer | { readonly length: number; chunks(): Iterable<Buffer> };

/** What to send. */
export interface RequestSpec {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: Body;
  /** Keep the response body (small JSON answers); otherwise only its length is counted. */
  readonly keepBody?: boolean;
}

/** `Authorization: Basic` for a username and password. */
export function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** A keep-alive agent sized for `sockets` concurrent requests (one per simulated client). */
export function keepAliveAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'lifo' });
}

/** Sends one request and resolves once the whole response has arrived. Never throws on a status. */
export function send(agent: http.Agent, url: string | URL, spec: RequestSpec): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const headers: Record<string, string | number> = { ...spec.headers };
    if (spec.body !== undefined) headers['Content-Length'] = spec.body.length;
    const req = http.request(url, { agent, method: spec.method, headers }, (res) => {
      let bytes = 0;
      const kept: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (spec.keepBody) kept.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, ...(spec.keepBody ? { body: Buffer.concat(kept) } : {}) }),
      );
    });
    req.on('error', reject);
    const body = spec.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else writeChunks(req, body.chunks()).then(() => req.end(), (err: unknown) => req.destroy(err as Error));
  });
}

/** Writes generated chunks with backpressure: waits for 'drain' whenever the socket buffer is full. */
async function writeChunks(req: http.ClientRequest, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (!req.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          req.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          req.off('drain', onDrain);
          reject(err);
        };
        req.once('drain', onDrain);
        req.once('error', onError);
      });
    }
  }
}

/**
 * The read buffer of every fetchLarge connection: libuv reads into it and the callback is done with
 * it before the next read of any socket (it counts bytes, and copies what it keeps), so concurrent
 * GETs can share one instead of allocating 4 MiB each (which made the client collect garbage).
 */
const readBuffer = Buffer.allocUnsafe(4 << 20);

/**
 * GETs a large body over a fresh connection with a raw HTTP/1.1 reader: one reused 4 MiB read
 * buffer, bytes counted, nothing parsed after the headers. node:http's client spends about a core
 * at 400–800 MB/s on loopback (it was the bottleneck of the pull figure); this spends a fraction.
 * Needs a Content-Length (both registries send one for blobs); a non-2xx body is kept for the error.
 */
export function fetchLarge(url: URL, headers: Record<string, string>): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const buffer = readBuffer;
    let head: Buffer[] | undefined = [];
    let status = 0;
    let parsed: IncomingHttpHeaders = {};
    let expected = 0;
    let bytes = 0;
    let kept: Buffer[] | undefined;
    let sent = 0n;
    let firstByte: bigint | undefined;
    const finish = () => {
      socket.destroy();
      const timing = firstByte === undefined ? {} : { firstByteSeconds: Number(firstByte - sent) / 1e9 };
      resolve({ status, headers: parsed, bytes, ...timing, ...(kept ? { body: Buffer.concat(kept) } : {}) });
    };
    const onBody = (chunk: Buffer) => {
      if (firstByte === undefined && chunk.length > 0) firstByte = process.hrtime.bigint();
      bytes += chunk.length;
      kept?.push(Buffer.from(chunk));
      if (bytes >= expected) finish();
    };
    const socket = net.connect({
      host: url.hostname,
      port: Number(url.port || 80),
      onread: {
        buffer,
        callback: (nread: number, buf: Uint8Array) => {
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, nread);
          if (!head) {
            onBody(chunk);
            return true;
          }
          head.push(Buffer.from(chunk));
          const text = Buffer.concat(head);
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return true;
          const lines = text.subarray(0, end).toString('latin1').split('\r\n');
          status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
          parsed = {};
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(':');
            if (colon > 0) parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
          }
          head = undefined;
          const length = parsed['content-length'];
          if (length === undefined) {
            socket.destroy();
            reject(new Error(`GET ${url.pathname}: ${status} without Content-Length`));
            return false;
          }
          expected = Number(length);
          if (status < 200 || status > 299) kept = [];
          const rest = text.subarray(end + 4);
          if (expected === 0) finish();
          else if (rest.length) onBody(rest);
          return true;
        },
      },
    } as net.NetConnectOpts);
    socket.on('error', reject);
    socket.on('close', () => {
      if (head || bytes < expected) reject(new Error(`GET ${url.pathname}: connection closed after ${bytes} of ${expected} body bytes`));
    });
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    sent = process.hrtime.bigint();
    socket.write(lines.join('\r\n') + '\r\n\r\n');
  });
}

/** A `Bearer realm=…,service=…` (or Basic) challenge, parsed. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header value. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme, params };
}

/** How a simulated client authenticates against one registry. */
export type AuthMode =
  /** No credentials at all (Distribution without auth). */
  | 'none'
  /** Basic credentials on every request (Distribution with htpasswd). */
  | 'basic'
  /**
   * Berth without a token: pulls anonymous (`auth.anonymousPull`), pushes with Basic credentials —
   * the least authentication Berth allows, since it has no switch to turn authentication off.
   */
  | 'anonymous-pull'
  /** The token flow: ping /v2/, read the challenge, fetch a token per scope with Basic, reuse it while valid. */
  | 'token';

/** One simulated client's credentials; token clients keep their own tokens, as separate machines would. */
export class Credentials {
  readonly #tokens = new Map<string, { value: string; expires: number }>();
  #realm: Challenge | undefined;
  /** Tokens fetched by this client (to show how often a client pays for a token). */
  tokensFetched = 0;

  constructor(
    readonly mode: AuthMode,
    private readonly base: string,
    private readonly agent: http.Agent,
    private readonly username: string,
    private readonly password: string,
  ) {}

  private basic(): string {
    return basicAuth(this.username, this.password);
  }

  /**
   * The `Authorization` value for an operation needing `scope` (e.g. `repository:a/b:pull,push`,
   * `registry:catalog:*`); `login` marks what Berth never allows anonymously (pushes, the catalog).
   */
  async header(scope: string, login: boolean): Promise<string | undefined> {
    switch (this.mode) {
      case 'none':
        return undefined;
      case 'basic':
        return this.basic();
      case 'anonymous-pull':
        return login ? this.basic() : undefined;
      case 'token':
        return `Bearer ${await this.token(scope)}`;
    }
  }

  /** Forgets a token the registry refused (401), so the next header() fetches a new one. */
  forget(scope: string): void {
    this.#tokens.delete(scope);
  }

  /** A token for `scope`, reused while more than 30 s of it remain. */
  async token(scope: string): Promise<string> {
    const cached = this.#tokens.get(scope);
    if (cached && cached.expires > Date.now() + 30_000) return cached.value;
    const challenge = await this.challenge();
    const realm = new URL(challenge.params['realm'] ?? '/service/token', this.base);
    realm.searchParams.set('service', challenge.params['service'] ?? '');
    realm.searchParams.set('scope', scope);
    const reply = await send(this.agent, realm, { method: 'GET', headers: { Authorization: this.basic() }, keepBody: true });
    if (reply.status !== 200) throw new Error(`token request for ${scope}: ${reply.status} ${reply.body?.toString('utf8').slice(0, 300)}`);
    const json = JSON.parse(reply.body!.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const value = json.token ?? json.access_token;
    if (!value) throw new Error(`token response for ${scope} holds no token`);
    this.tokensFetched++;
    this.#tokens.set(scope, { value, expires: Date.now() + (json.expires_in ?? 60) * 1000 });
    return value;
  }

  /** The registry's Bearer challenge, from one `GET /v2/` per client (what docker does first). */
  private async challenge(): Promise<Challenge> {
    if (this.#realm) return this.#realm;
    const reply = await send(this.agent, new URL('/v2/', this.base), { method: 'GET' });
    const challenge = parseChallenge(reply.headers['www-authenticate'] as string | undefined);
    if (reply.status !== 401 || challenge?.scheme !== 'bearer') {
      throw new Error(`GET /v2/ answered ${reply.status} without a Bearer challenge; the token flow needs one`);
    }
    this.#realm = challenge;
    return challenge;
  }
}
