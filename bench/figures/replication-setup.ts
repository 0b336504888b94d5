// What issue 16's figures run with: the replicated image set (shared base layers, unique layers),
// Berth's replication and webhook API as the figures call it, `skopeo sync` as the anchor, the
// destination checks (every tag at its digest; a manifest polled for until it appears) and a
// webhook receiver in the bench process.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { cleanEnv, run } from '../../test/support/run.ts';
import { expect, imageConfig, MANIFEST_ACCEPT, OCI_CONFIG, OCI_MANIFEST, RegistryClient, sha256 } from '../client.ts';
import { keepAliveAgent } from '../http.ts';
import { runCount } from '../measure.ts';
import type { BenchServer } from '../servers.ts';
import type { Scale } from '../options.ts';
import { AdminApi } from './lifecycle-api.ts';

/** Layers are gzip streams (stored blocks of random bytes): skopeo sees them compressed and copies them as they are. */
export const GZIP_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** The project the replicated set is pushed into (repositories `bench-repl/app-NN`). */
export const SET_PROJECT = 'bench-repl';
/** How often a destination is asked whether a manifest arrived, and Berth whether an execution ended. */
export const POLL_MS = 20;

/** A blob of the set: its bytes and digest. */
export interface SetBlob {
  readonly bytes: Buffer;
  readonly digest: string;
}

/** One image of the set: where it lives, its blobs (config first) and manifest. */
export interface SetImage {
  readonly repository: string;
  readonly tag: string;
  readonly blobs: readonly SetBlob[];
  readonly manifest: Buffer;
  readonly manifestDigest: string;
}

/** The replicated set: images in `repositories`, and the bytes a copy to a fresh registry moves (each blob once). */
export interface ImageSet {
  readonly repositories: readonly string[];
  readonly images: readonly SetImage[];
  readonly base: readonly SetBlob[];
  readonly bytes: number;
  readonly uniqueBytes: number;
}

/** `bytes` random bytes as a gzip stream of stored blocks: compressed to every sniffer, and as large. */
function gzipLayer(bytes: number): SetBlob {
  const layer = gzipSync(randomBytes(bytes), { level: 0 });
  return { bytes: layer, digest: sha256(layer) };
}

function manifestOf(config: SetBlob, layers: readonly SetBlob[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
      layers: layers.map((l) => ({ mediaType: GZIP_LAYER, digest: l.digest, size: l.bytes.length })),
    }),
  );
}

/**
 * The scale's image set: `replRepos` repositories of `replTagsPerRepo` tags, every image the shared
 * base layers, then `replUniqueLayers` layers of its own (its share of `replUniqueBytes`) and a config.
 */
export function imageSet(scale: Scale): ImageSet {
  const base = scale.replBaseLayers.map(gzipLayer);
  const count = scale.replRepos * scale.replTagsPerRepo;
  const perLayer = Math.floor(scale.replUniqueBytes / count / scale.replUniqueLayers);
  const repositories = Array.from({ length: scale.replRepos }, (_, i) => `${SET_PROJECT}/app-${String(i).padStart(2, '0')}`);
  const images: SetImage[] = [];
  for (const repository of repositories) {
    for (let t = 1; t <= scale.replTagsPerRepo; t++) {
      const configBytes = imageConfig(randomBytes(8).toString('hex'));
      const config = { bytes: configBytes, digest: sha256(configBytes) };
      const own = Array.from({ length: scale.replUniqueLayers }, () => gzipLayer(perLayer));
      const manifest = manifestOf(config, [...base, ...own]);
      images.push({ repository, tag: `v${t}`, blobs: [config, ...base, ...own], manifest, manifestDigest: sha256(manifest) });
    }
  }
  const distinct = new Map<string, number>();
  for (const image of images) for (const blob of image.blobs) distinct.set(blob.digest, blob.bytes.length);
  const blobBytes = [...distinct.values()].reduce((a, b) => a + b, 0);
  const manifestBytes = images.reduce((n, i) => n + i.manifest.length, 0);
  return { repositories, images, base, bytes: blobBytes + manifestBytes, uniqueBytes: perLayer * scale.replUniqueLayers * count };
}

/**
 * Pushes the set into `server` with `clients` clients, one repository per client at a time (as
 * many clients pushing their own images do; Distribution's filesystem driver rewrites a blob's
 * link file in place, so two mounts of one blob into one repository at once can make a concurrent
 * manifest PUT fail): the base layers once into the first repository and mounted into the others,
 * as a client pushing a shared base does; the rest uploaded.
 */
export async function pushSet(server: BenchServer, set: ImageSet, clients: number): Promise<void> {
  const agent = keepAliveAgent(clients);
  try {
    const first = set.repositories[0]!;
    const seeder = new RegistryClient(server, agent);
    for (const blob of set.base) await seeder.pushMonolithic(first, blob.bytes, blob.digest);
    const baseDigests = new Set(set.base.map((b) => b.digest));
    const pool = Array.from({ length: clients }, () => new RegistryClient(server, agent));
    await runCount(clients, set.repositories.length, async (index, worker) => {
      const client = pool[worker]!;
      const repository = set.repositories[index]!;
      if (repository !== first) for (const blob of set.base) await client.mount(repository, blob.digest, first);
      for (const image of set.images.filter((i) => i.repository === repository)) {
        for (const blob of image.blobs) if (!baseDigests.has(blob.digest)) await client.pushMonolithic(repository, blob.bytes, blob.digest);
        await client.putManifest(repository, image.tag, image.manifest);
      }
    });
  } finally {
    agent.destroy();
  }
}

/** The digest `repository:tag` has at `server` (HEAD with docker's Accept); undefined when it answers 404. */
export async function manifestDigestAt(client: RegistryClient, repository: string, tag: string): Promise<string | undefined> {
  const reply = await client.call(repository, false, `/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT } });
  if (reply.status === 404) return undefined;
  expect(reply, 200, `HEAD manifest ${repository}:${tag}`);
  return String(reply.headers['docker-content-digest'] ?? '');
}

/** Throws unless every image of the set is at `server` under its tag with its digest (and its layers, checked by HEAD). */
export async function verifySet(server: BenchServer, set: ImageSet, who: string): Promise<void> {
  const agent = keepAliveAgent(8);
  try {
    const client = new RegistryClient(server, agent);
    const wrong: string[] = [];
    await runCount(8, set.images.length, async (i) => {
      const image = set.images[i]!;
      const digest = await manifestDigestAt(client, image.repository, image.tag);
      if (digest !== image.manifestDigest) wrong.push(`${image.repository}:${image.tag} ${digest ? 'has another digest' : 'is missing'}`);
      else if (!(await client.hasBlob(image.repository, image.blobs.at(-1)!.digest))) wrong.push(`${image.repository}:${image.tag} lacks its last layer`);
    });
    if (wrong.length) throw new Error(`${who}: ${wrong.length} of ${set.images.length} images not replicated as pushed (${wrong.slice(0, 3).join('; ')})`);
  } finally {
    agent.destroy();
  }
}

/** A small image (a unique config and one 4 KiB layer) for the lag figures. */
export function smallImage(): { blobs: SetBlob[]; manifest: Buffer; manifestDigest: string } {
  const configBytes = imageConfig(randomBytes(8).toString('hex'));
  const config = { bytes: configBytes, digest: sha256(configBytes) };
  const layer = gzipLayer(4096);
  const manifest = manifestOf(config, [layer]);
  return { blobs: [config, layer], manifest, manifestDigest: sha256(manifest) };
}

/** Polls `repository:tag` at `client`'s registry every {@link POLL_MS} until it is there; the time it appeared (performance.now()). */
export async function waitForManifest(client: RegistryClient, repository: string, tag: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await manifestDigestAt(client, repository, tag)) return performance.now();
    if (performance.now() > deadline) throw new Error(`${repository}:${tag} did not reach the destination within ${timeoutMs / 1000} s`);
    await sleep(POLL_MS);
  }
}

/** An execution seen to its end. */
export interface ExecutionResult {
  readonly id: string;
  readonly state: string;
  /** From the POST to seeing it end (polled every {@link POLL_MS} ms). */
  readonly clientSeconds: number;
  /** From its own startedAt to finishedAt, when the API reports them. */
  readonly seconds: number;
  readonly body: Record<string, unknown>;
}

/** Berth's replication and webhook API as an administrator (Basic credentials). */
export class ReplicationApi extends AdminApi {
  /** POST, expecting `status`; returns the JSON answer. */
  async expectCall(method: string, url: string, body: unknown, status: number): Promise<Record<string, unknown>> {
    const { reply, json } = await this.call(method, url, body);
    expect(reply, status, `${method} /api/v1${url}`);
    return json;
  }

  /** A `distribution` registry endpoint without credentials. */
  async endpoint(name: string, url: string): Promise<void> {
    await this.expectCall('POST', '/registries', { name, type: 'distribution', url }, 201);
  }

  async project(name: string): Promise<void> {
    await this.expectCall('POST', '/projects', { name }, 201);
  }

  /** A push rule of every repository under `prefix/` and every tag to endpoint `registry`, names kept. */
  async pushRule(name: string, registry: string, prefix: string, trigger: 'manual' | 'event'): Promise<void> {
    await this.expectCall('POST', '/replication/rules', {
      name,
      registry,
      direction: 'push',
      filters: { repositories: [{ pattern: `${prefix}/**` }], tags: [{ pattern: '**' }] },
      destination: { mode: 'keep' },
      trigger,
      override: true,
    }, 201);
  }

  /** Starts an execution of rule `name` and follows it to its end; throws unless it succeeded. */
  async execute(name: string): Promise<ExecutionResult> {
    const posted = performance.now();
    const started = await this.expectCall('POST', `/replication/rules/${name}/executions`, {}, 202);
    const id = String(started['id']);
    for (;;) {
      const { reply, json } = await this.call('GET', `/replication/executions/${id}`);
      expect(reply, 200, `GET /api/v1/replication/executions/${id}`);
      const state = String(json['state']);
      if (state !== 'queued' && state !== 'running') {
        const clientSeconds = (performance.now() - posted) / 1000;
        if (state !== 'succeeded') throw new Error(`replication execution ${id} of rule ${name} ended ${state}: ${JSON.stringify(json).slice(0, 600)}`);
        const seconds = (Date.parse(String(json['finishedAt'])) - Date.parse(String(json['startedAt']))) / 1000;
        return { id, state, clientSeconds, seconds, body: json };
      }
      if (performance.now() - posted > 30 * 60_000) throw new Error(`replication execution ${id} still ${state} after 30 minutes`);
      await sleep(POLL_MS);
    }
  }

  /** A webhook of `project` posting `artifact.pushed` to `url` in `format`. */
  async webhook(project: string, name: string, url: string, format: 'harbor' | 'cloudevents'): Promise<void> {
    await this.expectCall('POST', `/projects/${project}/webhooks`, { name, url, events: ['artifact.pushed'], format }, 201);
  }
}

/** CPU seconds of this process's terminated children (cutime + cstime): skopeo's, once it exited. */
export function childCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** How `skopeo sync` is run: its scratch (an empty registries.conf, an auth file) and Berth's credentials. */
export class SkopeoSync {
  private constructor(private readonly env: NodeJS.ProcessEnv, private readonly redact: readonly string[]) {}

  static async prepare(work: string, redact: readonly string[]): Promise<SkopeoSync> {
    await mkdir(work, { recursive: true });
    const conf = path.join(work, 'registries.conf');
    await writeFile(conf, '');
    return new SkopeoSync(cleanEnv({ CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') }), redact);
  }

  /**
   * `skopeo sync --src docker --dest docker` of each repository (every tag) from `source` into
   * `dest` under the same name, one repository after another, digests preserved. Returns the
   * number of invocations.
   */
  async sync(source: BenchServer, dest: BenchServer, repositories: readonly string[]): Promise<number> {
    for (const repository of repositories) {
      const prefix = repository.slice(0, repository.lastIndexOf('/'));
      const args = [
        '--insecure-policy',
        'sync',
        '--src', 'docker',
        '--dest', 'docker',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        '--preserve-digests',
        ...(source.authMode === 'none' ? [] : ['--src-creds', `${source.username}:${source.password}`]),
        `${new URL(source.base).host}/${repository}`,
        `${new URL(dest.base).host}/${prefix}`,
      ];
      await run('skopeo', args, { env: this.env, redact: this.redact, timeoutMs: 900_000 });
    }
    return repositories.length;
  }
}

/** A delivery the receiver got: when (performance.now()), and the marks found in its body. */
interface Delivery {
  readonly at: number;
  readonly marks: readonly string[];
}

/**
 * A webhook receiver on loopback in the bench process: answers every POST with 204 at once and
 * records when each mark (a tag made of `prefix` and a number, found anywhere in the body, so
 * Harbor's and CloudEvents' payloads both work) arrived first, and how often.
 */
export class WebhookReceiver {
  readonly first = new Map<string, number>();
  readonly counts = new Map<string, number>();
  readonly deliveries: Delivery[] = [];
  requests = 0;
  private waiters = new Map<string, (at: number) => void>();

  private constructor(private readonly server: http.Server, readonly url: string, private readonly pattern: RegExp) {}

  static async start(pattern: RegExp): Promise<WebhookReceiver> {
    let self: WebhookReceiver | undefined;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204).end();
        self?.received(Buffer.concat(chunks).toString('utf8'));
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new WebhookReceiver(server, `http://127.0.0.1:${port}/hook`, new RegExp(pattern.source, 'g'));
    return self;
  }

  private received(body: string): void {
    const at = performance.now();
    this.requests++;
    const marks = [...new Set(body.match(this.pattern) ?? [])];
    this.deliveries.push({ at, marks });
    for (const mark of marks) {
      this.counts.set(mark, (this.counts.get(mark) ?? 0) + 1);
      if (!this.first.has(mark)) this.first.set(mark, at);
      this.waiters.get(mark)?.(at);
      this.waiters.delete(mark);
    }
  }

  /** When `mark` first arrived (now or later); rejects after `timeoutMs`. */
  arrival(mark: string, timeoutMs: number): Promise<number> {
    const seen = this.first.get(mark);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(mark);
        reject(new Error(`webhook delivery of ${mark} did not arrive within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.set(mark, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
