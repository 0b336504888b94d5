// What issue 15's proxy-cache figures run against: one upstream Distribution holding the images,
// Distribution in proxy mode in front of it (one upstream per instance), a Berth with proxy-cache
// projects on it, and a counting pass-through that tells how many requests reach the upstream.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, imageConfig, imageManifest, MANIFEST_ACCEPT, RegistryClient, sha256 } from '../client.ts';
import { fetchLarge, keepAliveAgent } from '../http.ts';
import { runCount, type FigureContext } from '../measure.ts';
import type { BenchServer } from '../servers.ts';
import { AdminApi } from './lifecycle-api.ts';

/** Layers a pull fetches at once: docker's `max-concurrent-downloads` default. */
export const LAYER_PARALLELISM = 3;

/** An image held in memory: its blobs (config first) and manifest. */
export interface BenchImage {
  readonly blobs: readonly { readonly bytes: Buffer; readonly digest: string }[];
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  /** Bytes a pull transfers: the manifest and every blob. */
  readonly pullBytes: number;
}

/** A fresh image of `layers` random layers of `layerBytes` each and a unique config. */
export function randomImage(layers: number, layerBytes: number): BenchImage {
  const config = imageConfig(randomBytes(8).toString('hex'));
  const layerBytesList = Array.from({ length: layers }, () => randomBytes(layerBytes));
  const manifest = imageManifest(config, layerBytesList);
  const blobs = [config, ...layerBytesList].map((bytes) => ({ bytes, digest: sha256(bytes) }));
  return { blobs, manifest, manifestDigest: sha256(manifest), pullBytes: manifest.length + blobs.reduce((n, b) => n + b.bytes.length, 0) };
}

/** Pushes `image` into `repository` under `tag` (every blob monolithically, then the manifest). */
export async function pushBenchImage(server: BenchServer, repository: string, tag: string, image: BenchImage): Promise<void> {
  const client = new RegistryClient(server, keepAliveAgent(1));
  try {
    for (const blob of image.blobs) await client.pushMonolithic(repository, blob.bytes, blob.digest);
    await client.putManifest(repository, tag, image.manifest);
  } finally {
    client.agent.destroy();
  }
}

/**
 * Pulls `repository:tag` as docker does: the manifest by tag, then its config and layers
 * ({@link LAYER_PARALLELISM} at a time, each over its own connection with the lean reader). The
 * manifest must be `expected`'s and every blob must arrive whole; returns the bytes received.
 */
export async function pullBenchImage(client: RegistryClient, repository: string, tag: string, expected: BenchImage): Promise<number> {
  const reply = await client.call(repository, false, `/v2/${repository}/manifests/${tag}`, { method: 'GET', headers: { Accept: MANIFEST_ACCEPT }, keepBody: true });
  expect(reply, 200, `GET manifest ${repository}:${tag}`);
  if (sha256(reply.body!) !== expected.manifestDigest) throw new Error(`${repository}:${tag}: another manifest than the one pushed upstream`);
  const manifest = JSON.parse(reply.body!.toString('utf8')) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  const blobs = [manifest.config, ...manifest.layers];
  let bytes = reply.bytes;
  await runCount(LAYER_PARALLELISM, blobs.length, async (i) => {
    const got = await fetchLarge(new URL(`/v2/${repository}/blobs/${blobs[i]!.digest}`, client.endpoint.base), {});
    expect(got, 200, `GET blob ${blobs[i]!.digest.slice(0, 19)} of ${repository}`);
    if (got.bytes !== blobs[i]!.size) throw new Error(`${repository}: blob ${blobs[i]!.digest.slice(0, 19)} arrived with ${got.bytes} of ${blobs[i]!.size} bytes`);
    bytes += got.bytes;
  });
  return bytes;
}

/** A request that reached the upstream through the pass-through. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
}

/**
 * A plain HTTP pass-through in front of a registry that records every request's method and path:
 * what a proxy in front of it asked. Only for the request-count figure (it adds a hop).
 */
export class CountingPassThrough {
  #seen: SeenRequest[] = [];

  private constructor(private readonly server: http.Server, private readonly agent: http.Agent, readonly base: string) {}

  /** Listens on a free loopback port and forwards everything to `target` (`http://host:port`). */
  static async start(target: string): Promise<CountingPassThrough> {
    const agent = keepAliveAgent(16);
    const upstream = new URL(target);
    let self: CountingPassThrough | undefined;
    const server = http.createServer((req, res) => {
      if (self) self.#seen.push({ method: req.method ?? '?', path: req.url ?? '?' });
      const headers = { ...req.headers, host: upstream.host };
      const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new CountingPassThrough(server, agent, `http://127.0.0.1:${port}`);
    return self;
  }

  /** The requests seen since the last call (and forgets them). */
  take(): SeenRequest[] {
    const seen = this.#seen;
    this.#seen = [];
    return seen;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** `HEAD manifests ×1, GET blobs ×2`: requests grouped by method and kind of path, for a note. */
export function describeRequests(seen: readonly SeenRequest[]): string {
  const counts = new Map<string, number>();
  for (const r of seen) {
    const kind = /\/(manifests|blobs|tags)\//.exec(r.path)?.[1] ?? (r.path === '/v2/' ? 'ping' : 'other');
    const key = `${r.method} ${kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts.size ? [...counts].map(([k, n]) => `${k} ×${n}`).join(', ') : 'none';
}

/** Distribution in proxy mode (its pull-through cache) in front of `remote`, fresh storage under the phase's root. */
export function startDistributionProxy(ctx: FigureContext, name: string, remote: string): Promise<BenchServer> {
  return ctx.launch.distribution(name, { config: ['proxy:', `  remoteurl: ${JSON.stringify(remote)}`] });
}

/** Registers `url` as a `distribution` registry endpoint `name` in Berth, as an administrator. */
export async function addEndpoint(api: AdminApi, name: string, url: string): Promise<void> {
  const { reply } = await api.call('POST', '/registries', { name, type: 'distribution', url });
  expect(reply, 201, `POST /api/v1/registries ${name}`);
}

/** Creates project `name` in Berth: a proxy cache of endpoint `registry` (freshness in seconds, or the default), or an ordinary one. */
export async function addProject(api: AdminApi, name: string, proxy?: { registry: string; freshness?: number }): Promise<void> {
  const { reply } = await api.call('POST', '/projects', { name, ...(proxy ? { proxyCache: proxy } : {}) });
  expect(reply, 201, `POST /api/v1/projects ${name}`);
}

export { AdminApi };
