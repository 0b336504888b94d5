// Small OCI distribution client helpers for the HTTP conformance tests: blobs (monolithic and
// chunked), manifests (OCI image / index / artifact, Docker schema 2 / list), raw HTTP requests.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import assert from 'node:assert/strict';
import { digestOf, type Algorithm } from '../../src/domain/digest.ts';
import { adminBasic } from './server.ts';

export { digestOf };

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** The OCI empty descriptor's content: `{}` (2 bytes). */
export const EMPTY_JSON = Buffer.from('{}');


/** Bytes `fetch` accepts as a body (not backed by a SharedArrayBuffer). */
export type Bytes = Uint8Array<ArrayBuffer>;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: { architecture: string; os: string };
}

/** Random bytes for a blob. */
export function randomBlob(size = 1024): Buffer<ArrayBuffer> {
  return randomBytes(size);
}

/** A descriptor of `bytes` with `mediaType`. */
export function descriptorOf(mediaType: string, bytes: Uint8Array, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, ...extra };
}

/** A unique, valid repository name (lower case), for tests that must not share state. */
export function uniqueName(prefix = 'repo'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Resolves a (relative) Location header against the server URL. */
export function resolveLocation(url: string, location: string | null): string {
  assert.ok(location, 'response has a Location header');
  return new URL(location, url).toString();
}

/** Options shared by the push helpers. */
export interface PushOptions {
  /** `Authorization` header value; the admin's Basic credentials by default. */
  auth?: string;
  algorithm?: Algorithm;
}

function authHeaders(auth: string | undefined): Record<string, string> {
  return { Authorization: auth ?? adminBasic() };
}

/** Pushes a blob in one request (`POST …/blobs/uploads/?digest=`); asserts 201. Returns the digest. */
export async function pushBlob(url: string, name: string, bytes: Bytes, options: PushOptions = {}): Promise<string> {
  const digest = digestOf(bytes, options.algorithm);
  const res = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
    method: 'POST',
    headers: { ...authHeaders(options.auth), 'Content-Type': 'application/octet-stream' },
    body: bytes,
  });
  const text = await res.text();
  assert.equal(res.status, 201, `monolithic push of ${digest} to ${name}: ${text}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return digest;
}

/** Opens an upload session (`POST …/blobs/uploads/`); asserts 202 and returns the absolute upload URL. */
export async function startUpload(url: string, name: string, options: PushOptions = {}): Promise<string> {
  const res = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: authHeaders(options.auth) });
  const text = await res.text();
  assert.equal(res.status, 202, `start upload in ${name}: ${text}`);
  return resolveLocation(url, res.headers.get('location'));
}

/** Adds `digest=` to an upload URL (which may already carry a query). */
export function withDigest(uploadURL: string, digest: string): string {
  const u = new URL(uploadURL);
  u.searchParams.set('digest', digest);
  return u.toString();
}

/**
 * Pushes a blob as PATCH chunks of `chunkSize` with `Content-Range`, then an empty PUT with the
 * digest; asserts every status. Returns the digest.
 */
export async function pushBlobChunked(url: string, name: string, bytes: Bytes, chunkSize: number, options: PushOptions = {}): Promise<string> {
  const digest = digestOf(bytes, options.algorithm);
  let location = await startUpload(url, name, options);
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    const chunk = bytes.subarray(offset, Math.min(offset + chunkSize, bytes.length));
    const res = await fetch(location, {
      method: 'PATCH',
      headers: {
        ...authHeaders(options.auth),
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${offset}-${offset + chunk.length - 1}`,
      },
      body: chunk,
    });
    const text = await res.text();
    assert.equal(res.status, 202, `chunk at ${offset}: ${text}`);
    assert.equal(res.headers.get('range'), `0-${offset + chunk.length - 1}`);
    location = resolveLocation(url, res.headers.get('location'));
  }
  const res = await fetch(withDigest(location, digest), { method: 'PUT', headers: authHeaders(options.auth) });
  const text = await res.text();
  assert.equal(res.status, 201, `complete chunked upload: ${text}`);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return digest;
}

/** PUTs a manifest; returns the raw response (body not consumed). */
export async function putManifest(url: string, name: string, reference: string, body: Bytes | string, contentType: string | undefined, auth?: string): Promise<Response> {
  const headers: Record<string, string> = authHeaders(auth);
  if (contentType !== undefined) headers['Content-Type'] = contentType;
  return fetch(`${url}/v2/${name}/manifests/${reference}`, { method: 'PUT', headers, body: typeof body === 'string' ? Buffer.from(body) : body });
}

/** PUTs a manifest and asserts 201 with the right digest; returns the digest. */
export async function pushManifest(url: string, name: string, reference: string, body: Bytes, contentType: string | undefined, auth?: string): Promise<string> {
  const res = await putManifest(url, name, reference, body, contentType, auth);
  const text = await res.text();
  assert.equal(res.status, 201, `push manifest ${name}:${reference}: ${text}`);
  const digest = reference.includes(':') ? reference : digestOf(body);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  return digest;
}

/** Serialises a manifest object the way a client would (the bytes are what get digested). */
export function manifestBytes(manifest: object): Buffer<ArrayBuffer> {
  return Buffer.from(JSON.stringify(manifest));
}

export interface ImageManifestOptions {
  mediaType?: string;
  config: Descriptor;
  layers?: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
  /** Leave the `mediaType` field out of the JSON. */
  omitMediaType?: boolean;
}

/** An image manifest (OCI by default, or Docker schema 2 with `mediaType`). */
export function imageManifest(options: ImageManifestOptions): Record<string, unknown> {
  const m: Record<string, unknown> = { schemaVersion: 2 };
  if (!options.omitMediaType) m.mediaType = options.mediaType ?? MEDIA.ociManifest;
  if (options.artifactType !== undefined) m.artifactType = options.artifactType;
  m.config = options.config;
  m.layers = options.layers ?? [];
  if (options.subject) m.subject = options.subject;
  if (options.annotations) m.annotations = options.annotations;
  return m;
}

export interface IndexOptions {
  mediaType?: string;
  manifests: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index (OCI by default, or a Docker manifest list with `mediaType`). */
export function indexManifest(options: IndexOptions): Record<string, unknown> {
  const m: Record<string, unknown> = { schemaVersion: 2, mediaType: options.mediaType ?? MEDIA.ociIndex };
  if (options.artifactType !== undefined) m.artifactType = options.artifactType;
  m.manifests = options.manifests;
  if (options.subject) m.subject = options.subject;
  if (options.annotations) m.annotations = options.annotations;
  return m;
}

/**
 * An artifact manifest (OCI image manifest with `artifactType`, the empty config and one layer),
 * optionally referring to `subject`.
 */
export function artifactManifest(options: { artifactType: string; layers: Descriptor[]; subject?: Descriptor; annotations?: Record<string, string> }): Record<string, unknown> {
  return imageManifest({
    artifactType: options.artifactType,
    config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON),
    layers: options.layers,
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  });
}

/** What `pushImage` pushed. */
export interface PushedImage {
  name: string;
  digest: string;
  bytes: Buffer<ArrayBuffer>;
  mediaType: string;
  /** A descriptor of the manifest, for use in indexes and as a subject. */
  descriptor: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  layerBytes: Buffer<ArrayBuffer>[];
}

/**
 * Pushes a small random image (config + `layerCount` layers + manifest) and tags it `reference`
 * (or pushes it by digest when `reference` is undefined). OCI media types unless `docker` is set.
 */
export async function pushImage(
  url: string,
  name: string,
  reference?: string,
  options: { docker?: boolean; layerCount?: number; auth?: string; annotations?: Record<string, string> } = {},
): Promise<PushedImage> {
  const docker = options.docker ?? false;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layerBytes = Array.from({ length: options.layerCount ?? 1 }, () => randomBlob(256));
  const pushOpts = options.auth ? { auth: options.auth } : {};
  await pushBlob(url, name, config, pushOpts);
  for (const layer of layerBytes) await pushBlob(url, name, layer, pushOpts);
  const mediaType = docker ? MEDIA.dockerManifest : MEDIA.ociManifest;
  const configDesc = descriptorOf(docker ? MEDIA.dockerConfig : MEDIA.ociConfig, config);
  const layers = layerBytes.map((l) => descriptorOf(docker ? MEDIA.dockerLayer : MEDIA.ociLayer, l));
  const bytes = manifestBytes(imageManifest({ mediaType, config: configDesc, layers, ...(options.annotations ? { annotations: options.annotations } : {}) }));
  const digest = digestOf(bytes);
  await pushManifest(url, name, reference ?? digest, bytes, mediaType, options.auth);
  return { name, digest, bytes, mediaType, descriptor: { mediaType, digest, size: bytes.length }, config: configDesc, layers, layerBytes };
}

/** An OCI error envelope as the distribution spec defines it. */
export interface ErrorEnvelope {
  errors: { code: string; message: string; detail?: unknown }[];
}

/**
 * Reads a response as an OCI error envelope, asserting its shape and Content-Type; returns it.
 * With `code`, also asserts the first error's code.
 */
export async function expectError(res: Response, status: number, code?: string): Promise<ErrorEnvelope> {
  const text = await res.text();
  assert.equal(res.status, status, `expected ${status}${code ? ` ${code}` : ''}, got ${res.status}: ${text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\b/, 'error Content-Type is application/json');
  const body = assertEnvelope(text);
  if (code) assert.equal(body.errors[0]!.code, code, `error code: ${text}`);
  return body;
}

/** Parses and checks an OCI error envelope. */
export function assertEnvelope(text: string): ErrorEnvelope {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`error body is not JSON: ${text.slice(0, 200)}`);
  }
  assert.ok(typeof body === 'object' && body !== null && Array.isArray((body as ErrorEnvelope).errors), `not an error envelope: ${text.slice(0, 200)}`);
  const env = body as ErrorEnvelope;
  assert.ok(env.errors.length > 0, 'errors is not empty');
  for (const e of env.errors) {
    assert.equal(typeof e.code, 'string', 'error code is a string');
    assert.match(e.code, /^[A-Z_]+$/, 'error code is upper-case');
    assert.equal(typeof e.message, 'string', 'error message is a string');
  }
  return env;
}

/** A response from `rawRequest`. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/**
 * An HTTP request through `node:http`, for what `fetch` will not send: an unnormalised path
 * (`..`, `%2e%2e`), a custom `Host` header.
 */
export function rawRequest(url: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: Uint8Array }): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: target.hostname, port: target.port, method: options.method ?? 'GET', path: options.path, headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Decodes (without verifying) a JWT's payload, to inspect what a token grants. */
export function jwtPayload(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  assert.ok(part, 'token is a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Parses a `WWW-Authenticate: Bearer k="v",…` challenge into its parameters. */
export function parseChallenge(header: string | null | undefined): { scheme: string; params: Record<string, string> } {
  assert.ok(header, 'response has a WWW-Authenticate header');
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space);
  const params: Record<string, string> = {};
  const re = /([a-zA-Z_]+)="([^"]*)"\s*(?:,\s*|$)/gy;
  re.lastIndex = space + 1;
  let m: RegExpExecArray | null;
  let end = space + 1;
  while ((m = re.exec(header))) {
    params[m[1]!] = m[2]!;
    end = re.lastIndex;
  }
  assert.equal(end, header.length, `challenge parses completely: ${header}`);
  return { scheme, params };
}

/** A parsed HTTP/1.1 response read off a raw connection. */
export interface WireResponse {
  status: number;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A raw HTTP/1.1 connection, for what a pooled client hides: whether a connection stays usable after
 * a response (keep-alive), exact framing (chunked bodies), pipelining.
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private closed = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(url: string): Promise<RawConnection> {
    const target = new URL(url);
    const socket = connect(Number(target.port), target.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Writes `body` with chunked transfer encoding, in pieces of `pieceSize`, and the last chunk. */
  writeChunked(body: Uint8Array, pieceSize = 64 * 1024): void {
    for (let i = 0; i < body.length; i += pieceSize) {
      const piece = body.subarray(i, Math.min(i + pieceSize, body.length));
      this.socket.write(`${piece.length.toString(16)}\r\n`);
      this.socket.write(piece);
      this.socket.write('\r\n');
    }
    this.socket.write('0\r\n\r\n');
  }

  /** Whether the server closed the connection. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Reads one response (Content-Length framed, or none for 204/304/HEAD-like empties). Resolves to
   * 'closed' if the server closes first, 'timeout' if nothing complete arrives within `timeoutMs`.
   */
  async readResponse(timeoutMs = 3000): Promise<WireResponse | 'closed' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.tryParse();
      if (parsed) return parsed;
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private tryParse(): WireResponse | undefined {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.buffer.length < end + 4 + length) return undefined;
    const body = this.buffer.subarray(end + 4, end + 4 + length);
    this.buffer = this.buffer.subarray(end + 4 + length);
    return { status, headers, body };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What {@link answerThenReuse} saw: the first answer, and the answer to a second request on the same socket. */
export interface ReusedConnection {
  first: WireResponse;
  /** The second answer, or what happened instead ('closed': the server closed the connection). */
  second: WireResponse | 'closed' | 'timeout';
}

/**
 * Sends a request on a fresh connection (`send` writes it: head and body, in any framing), reads
 * its answer, then sends `followUp` (a request head; by default `GET /healthz`) on the same
 * socket and reads that answer. Asserts nothing: a test that claims the connection stays usable
 * asserts that `first` did not say `Connection: close` and that `second` is the answer it expects
 * — a connection the server closes (announced or not) cannot pass that.
 */
export async function answerThenReuse(url: string, send: (conn: RawConnection) => void, followUp = 'GET /healthz HTTP/1.1\r\nHost: berth.test\r\n\r\n', timeoutMs = 10_000): Promise<ReusedConnection> {
  const conn = await RawConnection.open(url);
  try {
    send(conn);
    const first = await conn.readResponse(timeoutMs);
    assert.ok(typeof first === 'object', `no answer to the first request: ${String(first)}`);
    if (conn.isClosed) return { first, second: 'closed' };
    conn.write(followUp);
    return { first, second: await conn.readResponse(timeoutMs) };
  } finally {
    conn.close();
  }
}
