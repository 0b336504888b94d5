// Checks of a scaled-out Berth (replicas.ts): how nginx spread a client's requests over the
// replicas, whether an image is served whole by one replica, a watch on a blob that must never
// be served partially, and which replica is receiving an upload (from the kernel's I/O counters).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProxiedRequest, ReplicaSet } from './replicas.ts';

/** Every manifest media type a pull accepts. */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** `Authorization: Basic` of the set's admin (Berth takes Basic on /v2 too). */
export function adminAuth(set: ReplicaSet): string {
  return `Basic ${Buffer.from(`admin:${set.adminPassword}`).toString('base64')}`;
}

/** An image a client pushed: where, and what its manifest digest is. */
export interface PushedImage {
  readonly repository: string;
  readonly tag: string;
  readonly manifestDigest: string;
}

/** How one client operation's requests were spread over the replicas. */
export interface Spread {
  readonly requests: number;
  /** Requests each replica served (index = replica). */
  readonly perReplica: readonly number[];
  /** Pairs of consecutive requests (in the order nginx received them) that went to different replicas. */
  readonly alternating: number;
  /** Upload sessions (POST, then PATCH/PUT on its URL) whose requests more than one replica served. */
  readonly sessionsAcrossReplicas: number;
  /** Upload sessions of more than one request. */
  readonly sessions: number;
}

/** The upload id in an upload URL (path or absolute), if it is one. */
function uploadId(url: string): string | undefined {
  return /\/blobs\/uploads\/([^/?]+)/.exec(url)?.[1];
}

/**
 * The spread of `requests` (a slice of the nginx log), after checking that each request is in
 * the log of the replica nginx says served it, under the same request id: the replicas' own logs
 * and nginx's agree.
 */
export async function spreadOf(set: ReplicaSet, requests: readonly ProxiedRequest[]): Promise<Spread> {
  const served = new Map((await set.replicaRequests()).map((r) => [r.reqId, r.replica]));
  const perReplica = set.replicas.map(() => 0);
  const sessions = new Map<string, number[]>();
  for (const request of requests) {
    const replica = request.replicas.at(-1);
    assert.ok(replica !== undefined, `nginx names no replica for ${request.method} ${request.uri}`);
    assert.equal(served.get(request.requestId), replica, `${request.method} ${request.uri} (id ${request.requestId}): nginx says replica ${replica}, the replicas' logs say ${served.get(request.requestId)}`);
    perReplica[replica]!++;
    // A POST that opened an upload names it in Location; PATCH and PUT name it in their URI.
    const session = uploadId(request.uri) ?? (request.method === 'POST' ? uploadId(request.location) : undefined);
    if (session) sessions.set(session, [...(sessions.get(session) ?? []), replica]);
  }
  const byArrival = [...requests].sort((a, b) => a.startedMs - b.startedMs);
  let alternating = 0;
  for (let i = 1; i < byArrival.length; i++) if (byArrival[i]!.replicas.at(-1) !== byArrival[i - 1]!.replicas.at(-1)) alternating++;
  const multi = [...sessions.values()].filter((s) => s.length > 1);
  return {
    requests: requests.length,
    perReplica,
    alternating,
    sessionsAcrossReplicas: multi.filter((s) => new Set(s).size > 1).length,
    sessions: multi.length,
  };
}

/** GETs a blob from one server, streaming; its length and `sha256:` digest. */
export async function blobDigestOn(base: string, auth: string, repository: string, digest: string): Promise<{ status: number; size: number; digest: string }> {
  const res = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { headers: { Authorization: auth } });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return { status: res.status, size: 0, digest: '' };
  }
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of res.body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { status: 200, size, digest: `sha256:${hash.digest('hex')}` };
}

/**
 * Checks that the server at `base` (one replica, or nginx) serves `image` whole: the tag resolves
 * to the pushed manifest digest, and the config and every layer come back with their digests and
 * sizes. Returns the blob descriptors checked.
 */
export async function assertServesImage(base: string, auth: string, image: PushedImage): Promise<{ digest: string; size: number }[]> {
  const res = await fetch(`${base}/v2/${image.repository}/manifests/${image.tag}`, { headers: { Authorization: auth, Accept: MANIFEST_ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${base}: GET manifest ${image.repository}:${image.tag}: ${res.status} ${body.toString('utf8').slice(0, 200)}`);
  assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, image.manifestDigest, `${base}: ${image.repository}:${image.tag} is another manifest`);
  const manifest = JSON.parse(body.toString('utf8')) as { config?: { digest: string; size: number }; layers?: { digest: string; size: number }[] };
  const blobs = [manifest.config, ...(manifest.layers ?? [])].filter((d): d is { digest: string; size: number } => d !== undefined);
  assert.ok(blobs.length >= 2, `${base}: ${image.repository}:${image.tag} lists a config and layers`);
  for (const blob of blobs) {
    const got = await blobDigestOn(base, auth, image.repository, blob.digest);
    assert.deepEqual(got, { status: 200, size: blob.size, digest: blob.digest }, `${base}: blob ${blob.digest} of ${image.repository}`);
  }
  return blobs;
}

/** What a {@link BlobWatch} saw. */
export interface WatchReport {
  /** HEADs answered, by status, over all replicas. */
  readonly statuses: Readonly<Record<string, number>>;
  /** Full GETs made after a HEAD first said 200 on a replica (each checked against the digest). */
  readonly fullReads: number;
  /** Everything that was not a 404 or the whole, correct blob. */
  readonly violations: readonly string[];
}

/** A watch on one blob: every live replica is asked for it over and over until {@link stop}. */
export interface BlobWatch {
  stop(): Promise<WatchReport>;
}

/**
 * Asks every replica not in `down` for `digest` in `repository` every `intervalMs`: a HEAD must be
 * 404 or 200 with the blob's exact size and digest headers; the first 200 of each replica is
 * followed by a full GET whose bytes must hash to `digest`. A refused
 * connection to a replica counts only while it is not in `down` (the test kills one). `stop`
 * asks every live replica once more before it reports.
 */
export function watchBlob(set: ReplicaSet, repository: string, digest: string, size: number, down: ReadonlySet<number>, intervalMs = 150): BlobWatch {
  const auth = adminAuth(set);
  const statuses: Record<string, number> = {};
  const violations: string[] = [];
  const present = set.replicas.map(() => 0);
  let fullReads = 0;
  let stopped = false;
  const probeOne = async (index: number): Promise<void> => {
    const base = set.replicas[index]!.url;
    let res: Response;
    try {
      res = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: auth }, signal: AbortSignal.timeout(10_000) });
    } catch (error) {
      if (!down.has(index)) violations.push(`replica ${index}: HEAD failed: ${(error as Error).message}`);
      return;
    }
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status === 404) return;
    if (res.status !== 200) {
      violations.push(`replica ${index}: HEAD answered ${res.status}`);
      return;
    }
    const length = Number(res.headers.get('content-length'));
    const header = res.headers.get('docker-content-digest');
    if (length !== size || header !== digest) violations.push(`replica ${index}: HEAD 200 with Content-Length ${length} (want ${size}), digest ${header}`);
    if (present[index]!++ > 0) return;
    const got = await blobDigestOn(base, auth, repository, digest).catch((error: Error) => ({ status: -1, size: 0, digest: error.message }));
    if (got.status === -1 && down.has(index)) return;
    fullReads++;
    if (got.status !== 200 || got.size !== size || got.digest !== digest) {
      violations.push(`replica ${index}: GET after HEAD 200 gave status ${got.status}, ${got.size} bytes, ${got.digest}`);
    }
  };
  const round = () => Promise.all(set.replicas.map((_, index) => (down.has(index) ? undefined : probeOne(index))));
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await round();
      await sleep(Math.max(0, intervalMs - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await round(); // once more, after whatever the caller waited for
      return { statuses, fullReads, violations };
    },
  };
}

/** Bytes a process has read through read(2) and friends so far (sockets included): /proc/<pid>/io `rchar`. */
export function bytesRead(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^rchar:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
}

/**
 * Waits until one replica has read `threshold` more bytes than when this was called (it is
 * receiving the big upload) and returns its index; undefined when `done` settles first or
 * `timeoutMs` passes.
 */
export async function replicaReceiving(set: ReplicaSet, threshold: number, done: Promise<unknown>, timeoutMs: number): Promise<{ index: number; read: number } | undefined> {
  const pids = set.replicas.map((r) => r.process?.pid);
  const base = pids.map((pid) => (pid === undefined ? NaN : bytesRead(pid)));
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  while (!finished && Date.now() < deadline) {
    for (const [index, pid] of pids.entries()) {
      if (pid === undefined) continue;
      const read = bytesRead(pid) - base[index]!;
      if (read >= threshold) return { index, read };
    }
    await sleep(20);
  }
  return undefined;
}

/**
 * GETs `path` from the set's nginx `count` times, one after the other over one kept-alive TLS
 * connection (trusting the set's CA); the statuses.
 */
export async function getOverOneConnection(set: ReplicaSet, path: string, count: number): Promise<number[]> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(set.tls!.caCert) });
  const sockets = new Set<unknown>();
  const statuses: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          const req = https.get(`${set.url}${path}`, { agent, headers: { Authorization: adminAuth(set) } }, (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          });
          req.on('error', reject);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  assert.equal(sockets.size, 1, 'all requests went over one connection');
  return statuses;
}

/** A management API call through the set's nginx (trusting its CA) as the admin; status and parsed body. */
export async function apiThroughProxy<T = Record<string, unknown>>(set: ReplicaSet, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const ca = readFileSync(set.tls!.caCert);
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${set.url}/api/v1${path}`,
      { method, ca, agent: false, headers: { Authorization: adminAuth(set), ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T });
          } catch {
            reject(new Error(`${method} ${path}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
