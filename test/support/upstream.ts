// Upstreams for proxy-cache tests: CNCF Distribution (`docker-registry`) with images pushed into it,
// and a counting, fault-injecting HTTP proxy in front of any upstream — a real TCP peer between
// Berth and the registry that counts what Berth asks for and can rate-limit, fail, hang, corrupt a
// blob, or stop listening.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { basic } from './api.ts';
import { digestOf, imageManifest, MEDIA, manifestBytes, pushManifest, descriptorOf, type Descriptor } from './oci.ts';
import type { ProcessRegistry } from './processes.ts';
import { startReferenceRegistry, type ReferenceRegistry } from './reference-registry.ts';
import { freePort } from './system.ts';

/**
 * What the proxy does with the next requests. `pass`: forward; `429` / `503`: answer that status
 * with an error envelope (429 with `Retry-After`); `hang`: accept and never answer (until the client
 * gives up or the proxy stops); `corrupt`: forward, but flip bytes in the body of blob GETs (all of
 * them, or only those of `corruptDigests`) keeping its length, so only a digest check can tell;
 * `stall`: forward blob GETs' headers and first `stallAfter` bytes, then hold the rest until
 * {@link FaultProxy.release} (a slow upstream in the middle of a layer).
 */
export type FaultMode = 'pass' | '429' | '503' | 'hang' | 'corrupt' | 'stall';

/** What a request was for, from its path: counted per method and kind. */
export type RequestKind = 'base' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'token' | 'other';

/** One request the proxy saw. */
export interface SeenRequest {
  readonly method: string;
  readonly kind: RequestKind;
  /** Repository name for /v2/<name>/… paths, else undefined. */
  readonly repository: string | undefined;
  /** Tag or digest of manifest and blob paths. */
  readonly reference: string | undefined;
  readonly path: string;
  readonly range: string | undefined;
  /** The status answered (set once the upstream or the fault answered; undefined while pending or when cut). */
  status?: number;
}

const V2 = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/([^/?]*)/;

function classify(method: string, url: string, range: string | undefined): SeenRequest {
  const path = url.split('?')[0] ?? url;
  const m = V2.exec(path);
  if (path === '/v2/' || path === '/v2') return { method, kind: 'base', repository: undefined, reference: undefined, path, range };
  if (m) {
    const [, repository, section, reference] = m;
    const kind: RequestKind = section === 'manifests' ? 'manifest' : section === 'tags' ? 'tags' : section === 'referrers' ? 'referrers' : reference === 'uploads' ? 'upload' : 'blob';
    return { method, kind, repository, reference, path, range };
  }
  if (/token/.test(path)) return { method, kind: 'token', repository: undefined, reference: undefined, path, range };
  return { method, kind: 'other', repository: undefined, reference: undefined, path, range };
}

/** A counting, fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of `target`. */
export class FaultProxy {
  /** Every request seen since the last {@link reset}, in order of arrival. */
  readonly seen: SeenRequest[] = [];
  mode: FaultMode = 'pass';
  /** With mode `corrupt`: only blobs of these digests (empty: every blob GET). */
  corruptDigests = new Set<string>();
  /** With mode `stall`: bytes of each blob body sent before holding the rest. */
  stallAfter = 64 * 1024;
  #released: Promise<void> = Promise.resolve();
  #release: () => void = () => undefined;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #hanging = new Set<ServerResponse>();

  private constructor(
    readonly target: URL,
    readonly port: number,
  ) {}

  /** Starts a proxy for `targetUrl` (`http://host:port`) on a free loopback port. */
  static async start(targetUrl: string, registry?: ProcessRegistry): Promise<FaultProxy> {
    const proxy = new FaultProxy(new URL(targetUrl), await freePort());
    await proxy.listen();
    registry?.defer('fault proxy', () => proxy.stop());
    return proxy;
  }

  /** `http://127.0.0.1:PORT`: what Berth's endpoint points at. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Switches to `stall`: blob bodies stop after {@link stallAfter} bytes until {@link release}. */
  stall(): void {
    this.mode = 'stall';
    this.#released = new Promise((resolve) => (this.#release = resolve));
  }

  /** Lets stalled blob bodies continue. */
  release(): void {
    this.#release();
  }

  /** Forgets what was seen and goes back to `pass` (releasing stalled bodies). */
  reset(): void {
    this.release();
    this.seen.length = 0;
    this.mode = 'pass';
    this.corruptDigests.clear();
  }

  /** Requests seen for `repository` (optionally of one kind, method, reference), as `METHOD kind ref`. */
  requestsFor(repository: string, filter: Partial<Pick<SeenRequest, 'kind' | 'method' | 'reference'>> = {}): SeenRequest[] {
    return this.seen.filter(
      (r) => r.repository === repository && (filter.kind === undefined || r.kind === filter.kind) && (filter.method === undefined || r.method === filter.method) && (filter.reference === undefined || r.reference === filter.reference),
    );
  }

  /** A compact listing for assertion messages. */
  describe(requests: readonly SeenRequest[] = this.seen): string {
    return requests.map((r) => `${r.method} ${r.path}${r.range ? ` (${r.range})` : ''} → ${r.status ?? '-'}`).join('\n') || '(none)';
  }

  /** Listens again (same port) after {@link stop}. */
  async listen(): Promise<void> {
    if (this.#server) return;
    const server = createServer((req, res) => this.#handle(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  /** Stops listening and cuts every open connection: the upstream is gone (connection refused). */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #stalled(up: IncomingMessage, res: ServerResponse): void {
    let sent = 0;
    let held = false;
    const released = this.#released;
    up.on('data', (chunk: Buffer) => {
      if (held || sent + chunk.length <= this.stallAfter) {
        if (!held) sent += chunk.length;
        if (!held) res.write(chunk);
        else void released.then(() => res.write(chunk));
        return;
      }
      const cut = this.stallAfter - sent;
      res.write(chunk.subarray(0, cut));
      sent += cut;
      held = true;
      const rest = chunk.subarray(cut);
      void released.then(() => res.write(rest));
    });
    up.on('end', () => void released.then(() => res.end()));
    up.on('error', () => res.destroy());
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const seen = classify(req.method ?? 'GET', url, typeof req.headers.range === 'string' ? req.headers.range : undefined);
    this.seen.push(seen);
    const mode = this.mode;
    if (mode === '429' || mode === '503') {
      req.resume();
      seen.status = Number(mode);
      const body = JSON.stringify({ errors: [{ code: mode === '429' ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: `injected ${mode}` }] });
      res.writeHead(Number(mode), { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(mode === '429' ? { 'Retry-After': '60' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (mode === 'hang') {
      req.resume();
      this.#hanging.add(res);
      res.on('close', () => this.#hanging.delete(res));
      return;
    }
    // The Host header stays the proxy's: an upstream that derives URLs from it (a Berth's token
    // realm) then sends Berth back through the proxy, as a registry behind a load balancer would.
    const upstream = httpRequest({ host: this.target.hostname, port: this.target.port, method: req.method, path: url, headers: req.headers }, (up) => {
      const corrupt =
        mode === 'corrupt' && seen.kind === 'blob' && req.method === 'GET' && (up.statusCode ?? 0) < 300 && (this.corruptDigests.size === 0 || this.corruptDigests.has(seen.reference ?? ''));
      seen.status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (mode === 'stall' && seen.kind === 'blob' && req.method === 'GET') {
        this.#stalled(up, res);
        return;
      }
      if (!corrupt) {
        up.pipe(res);
        return;
      }
      let flipped = false;
      up.on('data', (chunk: Buffer) => {
        if (!flipped && chunk.length > 0) {
          // Same length, different bytes: only the digest check can notice.
          chunk = Buffer.from(chunk);
          chunk[Math.floor(chunk.length / 2)]! ^= 0xff;
          flipped = true;
        }
        res.write(chunk);
      });
      up.on('end', () => res.end());
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}

/** An image pushed to an upstream: its manifest and blobs, to check what Berth serves. */
export interface UpstreamImage {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly manifest: Buffer;
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  /** Every blob (config first, then layers) by digest. */
  readonly blobs: ReadonlyMap<string, Buffer>;
}

/**
 * Uploads a blob as POST (open a session) then PUT with the body and `digest=`: the one form every
 * registry takes (Distribution 2.8 answers a monolithic POST with a session instead of storing it).
 */
async function uploadBlob(url: string, auth: string, repository: string, blob: Buffer<ArrayBuffer>): Promise<void> {
  const digest = digestOf(blob);
  const started = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
  await started.arrayBuffer();
  assert.equal(started.status, 202, `start upload to ${repository}`);
  const location = new URL(started.headers.get('location') ?? '', url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream' }, body: blob });
  const text = await put.text();
  assert.equal(put.status, 201, `upload ${digest} to ${repository}: ${text}`);
}

/**
 * Pushes an image with random layers of `layerSizes` bytes (Docker schema 2 media types) to
 * `repository:tag` on the registry at `url` with `auth`; every run's layers are new to the registry.
 */
export async function pushUpstreamImage(url: string, auth: string, repository: string, tag: string, layerSizes: readonly number[] = [64 * 1024]): Promise<UpstreamImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layerBytes = layerSizes.map((size) => randomBytes(size));
  const blobs = new Map<string, Buffer>();
  for (const blob of [config, ...layerBytes]) {
    await uploadBlob(url, auth, repository, blob);
    blobs.set(digestOf(blob), blob);
  }
  const configDesc = descriptorOf(MEDIA.dockerConfig, config);
  const layers = layerBytes.map((l) => descriptorOf(MEDIA.dockerLayer, l));
  const manifest = manifestBytes(imageManifest({ mediaType: MEDIA.dockerManifest, config: configDesc, layers }));
  const digest = await pushManifest(url, repository, tag, manifest, MEDIA.dockerManifest, auth);
  return { repository, tag, digest, manifest, mediaType: MEDIA.dockerManifest, config: configDesc, layers, blobs };
}

/** CNCF Distribution with a fault proxy in front of it. */
export interface DistributionUpstream {
  readonly registry: ReferenceRegistry;
  readonly proxy: FaultProxy;
  /** Basic credentials of its one user (pushes straight to the registry, not through the proxy). */
  readonly auth: string;
  /** Pushes an image straight to the registry (the proxy does not see it). */
  push(repository: string, tag: string, layerSizes?: readonly number[]): Promise<UpstreamImage>;
}

/** Starts `docker-registry` (htpasswd auth) and a {@link FaultProxy} in front of it; both stopped by `registry`. */
export async function startDistributionUpstream(registry: ProcessRegistry): Promise<DistributionUpstream> {
  const reference = await startReferenceRegistry({ port: await freePort(), registry });
  const proxy = await FaultProxy.start(reference.url, registry);
  const auth = basic(reference.username, reference.password);
  return {
    registry: reference,
    proxy,
    auth,
    push: (repository, tag, layerSizes) => pushUpstreamImage(reference.url, auth, repository, tag, layerSizes),
  };
}
