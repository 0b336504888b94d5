// Proxy-cache projects (issue 15) over real HTTP, against real upstreams: CNCF Distribution behind a
// counting, fault-injecting proxy (support/upstream.ts), and a second Berth as a Docker-Hub-like
// upstream (token auth, `library/` names). What each case proves is in its name; the upstream
// request counts are taken at the proxy, a real TCP peer between Berth and the registry.
// Runs on this process's backend (test/postgres-s3/proxy-cache.test.ts runs it on PostgreSQL + S3).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { api, expectStatus } from '../support/api.ts';
import { artifactManifest, descriptorOf, digestOf, EMPTY_JSON, expectError, indexManifest, MEDIA, manifestBytes, pushBlob, pushImage, pushManifest, type PushedImage } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { testBackend } from '../support/backend.ts';
import { adminBasic, ADMIN_PASSWORD, startServerPair, startTestServer, type ServerPair, type TestServer } from '../support/server.ts';
import { FaultProxy, startDistributionUpstream, type DistributionUpstream, type UpstreamImage } from '../support/upstream.ts';

const AUTH = adminBasic();
const ACCEPT = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');
/** Short enough to wait out, long enough that two pulls in a row fall inside it on a loaded machine. */
const FRESHNESS = 2;

/**
 * Two replicas on one database and one blob storage: on PostgreSQL + S3 two servers of one data
 * directory (the same database and S3 prefix); on SQLite + fs, where replicas need PostgreSQL, a
 * server pair on the shared PostgreSQL and one directory (support/server.ts).
 */
async function startReplicas(): Promise<ServerPair> {
  if (testBackend() !== 'postgres-s3') return startServerPair('proxy_lease');
  const dir = mkdtempSync(join(tmpdir(), 'berth-proxy-lease-'));
  const a = await startTestServer({}, dir);
  const b = await startTestServer({}, dir).catch(async (err: unknown) => {
    await a.close(true);
    throw err;
  });
  return {
    a,
    b,
    async close() {
      try {
        await a.close(true);
      } finally {
        await b.close(true);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

describe('proxy-cache projects against real upstreams', { timeout: 5 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const logs: Record<string, unknown>[] = [];
  let berth: TestServer;
  let hubBerth: TestServer;
  let hubProxy: FaultProxy;
  let up: DistributionUpstream;

  before(async () => {
    up = await startDistributionUpstream(registry);
    // The Docker-Hub-like upstream: another Berth (Bearer tokens), holding library/… images.
    hubBerth = await startTestServer();
    registry.defer('hub berth', () => hubBerth.close());
    hubProxy = await FaultProxy.start(hubBerth.url, registry);
    berth = await startTestServer({ proxy: { mirrors: { 'docker.io': 'hub' }, timeout: 3 } }, undefined, logs);
    registry.defer('berth', () => berth.close());
    await expectStatus(await api(berth.url, 'POST', '/registries', { auth: AUTH, body: { name: 'dist', type: 'distribution', url: up.proxy.url, username: up.registry.username, password: up.registry.password } }), 201, 'add distribution endpoint');
    await expectStatus(await api(berth.url, 'POST', '/registries', { auth: AUTH, body: { name: 'hubreg', type: 'dockerhub', url: hubProxy.url, username: 'admin', password: ADMIN_PASSWORD } }), 201, 'add dockerhub endpoint');
    await expectStatus(await api(berth.url, 'POST', '/projects', { auth: AUTH, body: { name: 'hub', public: true, proxyCache: { registry: 'hubreg' } } }), 201, 'create hub');
  });

  after(() => registry.stopAll());

  async function proxyProject(name: string, freshness?: number): Promise<void> {
    await expectStatus(await api(berth.url, 'POST', '/projects', { auth: AUTH, body: { name, proxyCache: { registry: 'dist', ...(freshness !== undefined ? { freshness } : {}) } } }), 201, `create ${name}`);
  }

  async function getManifest(name: string, reference: string, method = 'GET'): Promise<Response> {
    return fetch(`${berth.url}/v2/${name}/manifests/${reference}`, { method, headers: { Authorization: AUTH, Accept: ACCEPT } });
  }

  /** Pulls manifest (by `reference`) and every blob through Berth; asserts the bytes are the upstream image's. */
  async function pullAndVerify(name: string, reference: string, image: UpstreamImage): Promise<void> {
    const res = await getManifest(name, reference);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, `${name}:${reference}: ${body.toString().slice(0, 300)}`);
    assert.equal(digestOf(body), image.digest, `${name}:${reference} manifest is the upstream's`);
    assert.equal(res.headers.get('docker-content-digest'), image.digest);
    for (const [digest, bytes] of image.blobs) {
      const blob = await fetch(`${berth.url}/v2/${name}/blobs/${digest}`, { headers: { Authorization: AUTH } });
      const got = Buffer.from(await blob.arrayBuffer());
      assert.equal(blob.status, 200, `${name} blob ${digest}: ${got.toString().slice(0, 300)}`);
      assert.equal(digestOf(got), digest, `${name} blob ${digest}: bytes of its digest`);
      assert.equal(got.length, bytes.length);
    }
  }

  /** berth_proxy_requests_total{kind,result} now. */
  async function proxyCount(kind: string, result: string): Promise<number> {
    const text = await (await fetch(`${berth.url}/metrics`, { headers: { Authorization: AUTH } })).text();
    const m = new RegExp(`^berth_proxy_requests_total\\{[^}]*kind="${kind}"[^}]*result="${result}"[^}]*\\} (\\d+)`, 'm').exec(text) ?? new RegExp(`^berth_proxy_requests_total\\{[^}]*result="${result}"[^}]*kind="${kind}"[^}]*\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  }

  test('20 concurrent first pulls of one image: every blob and the manifest reach the upstream exactly once, all 20 get the right bytes', async () => {
    await proxyProject('conc');
    const image = await up.push('team/conc', 'v1', [1024 * 1024, 512 * 1024, 4096]);
    up.proxy.reset();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => pullAndVerify('conc/team/conc', 'v1', image)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(failures.length, 0, `every pull succeeds: ${failures.map((f) => (f.reason as Error).message).join('\n')}`);
    for (const digest of image.blobs.keys()) {
      const gets = up.proxy.requestsFor('team/conc', { kind: 'blob', method: 'GET', reference: digest });
      assert.equal(gets.length, 1, `blob ${digest} fetched from the upstream once:\n${up.proxy.describe(up.proxy.requestsFor('team/conc'))}`);
    }
    // A 401 challenge and the retry with credentials are one fetch: count the answered ones.
    const manifestGets = up.proxy.requestsFor('team/conc', { kind: 'manifest', method: 'GET' }).filter((r) => r.status !== 401);
    assert.equal(manifestGets.length, 1, `the manifest fetched once:\n${up.proxy.describe(up.proxy.requestsFor('team/conc'))}`);
  });

  test('blobs stream while they are stored: with the upstream stalled mid-layer, a first and a late client already have the first bytes; once it continues both complete, from one upstream fetch', async () => {
    await proxyProject('stream');
    const image = await up.push('team/stream', 'v1', [2 * 1024 * 1024]);
    const layer = image.layers[0]!.digest;
    up.proxy.stallAfter = 256 * 1024;
    up.proxy.stall();
    try {
      const open = async () => {
        const res = await fetch(`${berth.url}/v2/stream/team/stream/blobs/${layer}`, { headers: { Authorization: AUTH } });
        assert.equal(res.status, 200);
        const reader = res.body!.getReader();
        const chunks: Uint8Array[] = [];
        let received = 0;
        const deadline = Date.now() + 10_000;
        // Until the first 64 KiB are in — bounded: with the upstream held, a registry that waits
        // for the whole layer before answering never gets there.
        while (received < 64 * 1024) {
          const next = await Promise.race([reader.read(), sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout' as const)]);
          assert.notEqual(next, 'timeout', `only ${received} bytes arrived while the upstream was stalled mid-layer`);
          if (next === 'timeout' || next.done) break;
          chunks.push(next.value);
          received += next.value.length;
        }
        return { reader, chunks, received };
      };
      const first = await open();
      const late = await open();
      assert.ok(first.received <= 256 * 1024 && late.received <= 256 * 1024, 'no more than the upstream has sent so far');
      up.proxy.release();
      for (const client of [first, late]) {
        for (;;) {
          const next = await client.reader.read();
          if (next.done) break;
          client.chunks.push(next.value);
        }
        assert.equal(digestOf(Buffer.concat(client.chunks)), layer, 'the whole layer, right');
      }
      assert.equal(up.proxy.requestsFor('team/stream', { kind: 'blob', method: 'GET', reference: layer }).length, 1, `one upstream fetch:\n${up.proxy.describe()}`);
    } finally {
      up.proxy.reset();
    }
  });

  test('multi-arch index: the index pulls by tag without its children; a child is fetched when asked for', async () => {
    await proxyProject('multi');
    const amd = await up.push('team/multi', 'amd64');
    const arm = await up.push('team/multi', 'arm64');
    const platforms = [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }];
    const index = manifestBytes(indexManifest({ manifests: [amd, arm].map((img, n) => ({ mediaType: img.mediaType, digest: img.digest, size: img.manifest.length, platform: platforms[n]! })) }));
    const indexDigest = await pushManifest(up.registry.url, 'team/multi', 'v1', index, MEDIA.ociIndex, up.auth);
    up.proxy.seen.length = 0;
    const res = await getManifest('multi/team/multi', 'v1');
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(index), 'the index bytes');
    assert.equal(res.headers.get('content-type'), MEDIA.ociIndex);
    assert.equal(res.headers.get('docker-content-digest'), indexDigest);
    assert.deepEqual(up.proxy.requestsFor('team/multi', { reference: arm.digest }), [], 'children are not fetched with the index');
    await pullAndVerify('multi/team/multi', arm.digest, arm);
    assert.equal(up.proxy.requestsFor('team/multi', { kind: 'manifest', method: 'GET', reference: arm.digest }).filter((r) => r.status === 200).length, 1, `the child fetched on demand:\n${up.proxy.describe()}`);
  });

  test('two replicas on one database: 10 concurrent first pulls on each share one upstream fetch per blob (the lease)', { timeout: 120_000 }, async () => {
    const pair = await startReplicas();
    try {
      await expectStatus(await api(pair.a.url, 'POST', '/registries', { auth: AUTH, body: { name: 'dist', type: 'distribution', url: up.proxy.url, username: up.registry.username, password: up.registry.password } }), 201);
      await expectStatus(await api(pair.a.url, 'POST', '/projects', { auth: AUTH, body: { name: 'pair', proxyCache: { registry: 'dist' } } }), 201);
      const image = await up.push('team/pair', 'v1', [1024 * 1024, 256 * 1024]);
      up.proxy.seen.length = 0;
      const pull = async (url: string): Promise<void> => {
        const res = await fetch(`${url}/v2/pair/team/pair/manifests/v1`, { headers: { Authorization: AUTH, Accept: ACCEPT } });
        assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), image.digest, `manifest from ${url}`);
        for (const digest of image.blobs.keys()) {
          const blob = await fetch(`${url}/v2/pair/team/pair/blobs/${digest}`, { headers: { Authorization: AUTH } });
          const bytes = Buffer.from(await blob.arrayBuffer());
          assert.equal(blob.status, 200, `blob ${digest} from ${url}: ${bytes.toString().slice(0, 200)}`);
          assert.equal(digestOf(bytes), digest);
        }
      };
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => pull(i % 2 ? pair.a.url : pair.b.url)));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(failures.length, 0, failures.map((f) => (f.reason as Error).message).join('\n'));
      for (const digest of image.blobs.keys()) {
        assert.equal(up.proxy.requestsFor('team/pair', { kind: 'blob', method: 'GET', reference: digest }).length, 1, `blob ${digest} fetched once across both replicas:\n${up.proxy.describe(up.proxy.requestsFor('team/pair'))}`);
      }
    } finally {
      await pair.close();
    }
  });

  test('upstream stopped: the cached tag and digest still pull, and the metrics count a stale serve', async () => {
    await proxyProject('gone', 1);
    const image = await up.push('team/gone', 'v1');
    await pullAndVerify('gone/team/gone', 'v1', image);
    const staleBefore = await proxyCount('manifest', 'stale');
    await up.proxy.stop();
    try {
      await sleep(1200); // past the freshness window: the tag must be re-validated, and cannot be
      await pullAndVerify('gone/team/gone', 'v1', image);
      await pullAndVerify('gone/team/gone', image.digest, image);
      assert.ok((await proxyCount('manifest', 'stale')) > staleBefore, 'berth_proxy_requests_total{kind="manifest",result="stale"} grew');
      // Not cached and the upstream gone: a clean 503, not a hang or a 500.
      await expectError(await getManifest('gone/team/never', 'v1'), 503, 'UNAVAILABLE');
    } finally {
      await up.proxy.listen();
    }
  });

  test('upstream hanging past proxy.timeout: the cached tag is served stale', { timeout: 60_000 }, async () => {
    await proxyProject('slow', 1);
    const image = await up.push('team/slow', 'v1');
    await pullAndVerify('slow/team/slow', 'v1', image);
    up.proxy.mode = 'hang';
    try {
      await sleep(1200);
      const started = Date.now();
      await pullAndVerify('slow/team/slow', 'v1', image);
      assert.ok(Date.now() - started < 15_000, 'answered after about proxy.timeout (3 s), not the client giving up');
    } finally {
      up.proxy.reset();
    }
  });

  test('upstream answering 429 after the freshness window: the cached copy is served; an uncached image gets 429', async () => {
    await proxyProject('limited', 1);
    const cached = await up.push('team/limited', 'v1');
    await up.push('team/limited', 'v2');
    await pullAndVerify('limited/team/limited', 'v1', cached);
    up.proxy.mode = '429';
    try {
      await sleep(1200);
      up.proxy.seen.length = 0;
      await pullAndVerify('limited/team/limited', 'v1', cached);
      assert.ok(up.proxy.requestsFor('team/limited', { kind: 'manifest' }).length >= 1, `the tag was re-validated (and refused):\n${up.proxy.describe()}`);
      const refused = await expectError(await getManifest('limited/team/limited', 'v2'), 429, 'TOOMANYREQUESTS');
      assert.match(refused.errors[0]!.message, /rate-limit|429/i);
    } finally {
      up.proxy.reset();
    }
  });

  test('upstream serving a corrupt blob: the client gets an error and nothing is cached; once fixed, the next pull fetches again and succeeds', async (t) => {
    await proxyProject('corrupt');
    const image = await up.push('team/corrupt', 'v1', [256 * 1024]);
    const layer = image.layers[0]!.digest;
    up.proxy.mode = 'corrupt';
    up.proxy.corruptDigests.add(layer);
    let outcome: string;
    try {
      const res = await fetch(`${berth.url}/v2/corrupt/team/corrupt/blobs/${layer}`, { headers: { Authorization: AUTH } });
      try {
        const got = Buffer.from(await res.arrayBuffer());
        outcome = res.status !== 200 ? `status ${res.status}` : digestOf(got) === layer ? 'correct bytes' : `200 with ${got.length} wrong bytes`;
      } catch (error) {
        outcome = `cut: ${(error as Error).message}`;
      }
    } catch (error) {
      outcome = `failed: ${(error as Error).message}`;
    }
    t.diagnostic(`the client got: ${outcome}`);
    assert.ok(/^(cut|failed|status [45])/.test(outcome), `the client must not get a complete 200 of corrupt bytes: ${outcome}`);
    up.proxy.reset();
    const blob = await fetch(`${berth.url}/v2/corrupt/team/corrupt/blobs/${layer}`, { headers: { Authorization: AUTH } });
    const bytes = Buffer.from(await blob.arrayBuffer());
    assert.equal(blob.status, 200);
    assert.equal(digestOf(bytes), layer, 'the second pull gets the right bytes');
    assert.equal(up.proxy.requestsFor('team/corrupt', { kind: 'blob', method: 'GET', reference: layer }).length, 1, `fetched again (the corrupt copy was not cached):\n${up.proxy.describe()}`);
    await (await fetch(`${berth.url}/v2/corrupt/team/corrupt/blobs/${layer}`, { headers: { Authorization: AUTH } })).arrayBuffer();
    assert.equal(up.proxy.requestsFor('team/corrupt', { kind: 'blob', method: 'GET', reference: layer }).length, 1, 'and the good copy is cached');
  });

  test('tag moved upstream: seen after the freshness window, not before; 0 upstream requests inside it, exactly 1 HEAD after it when unchanged', async () => {
    await proxyProject('fresh', FRESHNESS);
    const first = await up.push('team/fresh', 'v1');
    await pullAndVerify('fresh/team/fresh', 'v1', first);
    // Inside the window: from the cache, not a single upstream request, even with the tag moved.
    up.proxy.seen.length = 0;
    await pullAndVerify('fresh/team/fresh', 'v1', first);
    const second = await up.push('team/fresh', 'v1');
    await pullAndVerify('fresh/team/fresh', 'v1', first);
    assert.deepEqual(up.proxy.seen, [], `no upstream request inside the freshness window:\n${up.proxy.describe()}`);
    // After it: the move is seen.
    await sleep(FRESHNESS * 1000 + 300);
    await pullAndVerify('fresh/team/fresh', 'v1', second);
    // Unchanged after another window: exactly one HEAD, no GET.
    await sleep(FRESHNESS * 1000 + 300);
    up.proxy.seen.length = 0;
    const res = await getManifest('fresh/team/fresh', 'v1');
    assert.equal(digestOf(Buffer.from(await res.arrayBuffer())), second.digest);
    const forRepo = up.proxy.requestsFor('team/fresh');
    assert.deepEqual(forRepo.map((r) => `${r.method} ${r.kind}`), ['HEAD manifest'], `exactly one HEAD:\n${up.proxy.describe()}`);
  });

  test('Range request for a blob not cached yet: 206 with the right bytes', async () => {
    await proxyProject('ranged');
    const image = await up.push('team/ranged', 'v1', [300_000]);
    const digest = image.layers[0]!.digest;
    const bytes = image.blobs.get(digest)!;
    const res = await fetch(`${berth.url}/v2/ranged/team/ranged/blobs/${digest}`, { headers: { Authorization: AUTH, Range: 'bytes=1000-1999' } });
    const got = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 206, got.toString().slice(0, 300));
    assert.equal(res.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
    assert.ok(got.equals(bytes.subarray(1000, 2000)), 'the bytes of the range');
    const tail = await fetch(`${berth.url}/v2/ranged/team/ranged/blobs/${digest}`, { headers: { Authorization: AUTH, Range: 'bytes=299000-' } });
    const tailBytes = Buffer.from(await tail.arrayBuffer());
    assert.equal(tail.status, 206);
    assert.ok(tailBytes.equals(bytes.subarray(299_000)), 'an open-ended range');
    // And the whole blob is right afterwards.
    const whole = await fetch(`${berth.url}/v2/ranged/team/ranged/blobs/${digest}`, { headers: { Authorization: AUTH } });
    assert.equal(digestOf(Buffer.from(await whole.arrayBuffer())), digest);
  });

  test('push to a proxy-cache project: 403 DENIED saying why', async () => {
    await proxyProject('nopush');
    let refused: PushedImage | Error;
    try {
      refused = await pushImage(berth.url, 'nopush/team/app', 'v1');
    } catch (error) {
      refused = error as Error;
    }
    assert.ok(refused instanceof Error, 'the push fails');
    const res = await fetch(`${berth.url}/v2/nopush/team/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: AUTH } });
    const env = await expectError(res, 403, 'DENIED');
    assert.match(env.errors[0]!.message, /proxy/i, `the message says it is a proxy-cache project: ${env.errors[0]!.message}`);
    const manifest = await fetch(`${berth.url}/v2/nopush/team/app/manifests/v1`, { method: 'PUT', headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest }, body: '{}' });
    await expectError(manifest, 403, 'DENIED');
  });

  test('a dockerhub-type endpoint on a Berth with token auth: hub/NAME pulls library/NAME; the mirror maps library/NAME and ?ns=docker.io to project hub', async () => {
    const auth = adminBasic();
    const names = ['alpine-e2e', 'busy-e2e', 'ns-e2e'];
    const images = new Map<string, PushedImage>();
    for (const name of names) images.set(name, await pushImage(hubBerth.url, `library/${name}`, '3', { docker: true, layerCount: 2, auth }));
    const asUpstream = (img: PushedImage): UpstreamImage => ({
      repository: img.name,
      tag: '3',
      digest: img.digest,
      manifest: img.bytes,
      mediaType: img.mediaType,
      config: img.config,
      layers: img.layers,
      blobs: new Map([[img.config.digest, Buffer.alloc(img.config.size)], ...img.layers.map((l, i) => [l.digest, img.layerBytes[i]!] as const)]),
    });
    hubProxy.reset();
    await pullAndVerify('hub/alpine-e2e', '3', asUpstream(images.get('alpine-e2e')!)).catch((error: Error) => {
      throw new Error(`${error.message}\nthe upstream saw:\n${hubProxy.describe()}`, { cause: error });
    });
    assert.ok(hubProxy.requestsFor('library/alpine-e2e', { kind: 'manifest' }).length >= 1, `asked the upstream for library/alpine-e2e:\n${hubProxy.describe()}`);
    assert.ok(hubProxy.seen.some((r) => r.kind === 'token'), `through the upstream's token flow:\n${hubProxy.describe()}`);
    // Docker's registry-mirrors: no project in the name.
    await pullAndVerify('library/busy-e2e', '3', asUpstream(images.get('busy-e2e')!));
    // containerd's hosts.toml mirror: ?ns=docker.io.
    const ns = await fetch(`${berth.url}/v2/ns-e2e/manifests/3?ns=docker.io`, { headers: { Authorization: AUTH, Accept: ACCEPT } });
    assert.equal(ns.status, 200, await ns.clone().text());
    assert.equal(digestOf(Buffer.from(await ns.arrayBuffer())), images.get('ns-e2e')!.digest);
    const layer = images.get('ns-e2e')!.layers[0]!.digest;
    const blob = await fetch(`${berth.url}/v2/library/ns-e2e/blobs/${layer}?ns=docker.io`, { headers: { Authorization: AUTH } });
    assert.equal(digestOf(Buffer.from(await blob.arrayBuffer())), layer);
  });

  test('referrers are passed through from the upstream (a signature pushed there after the image was cached)', async () => {
    const auth = adminBasic();
    const image = await pushImage(hubBerth.url, 'library/signed-e2e', '1', { auth });
    await pullAndVerify('hub/signed-e2e', '1', { repository: image.name, tag: '1', digest: image.digest, manifest: image.bytes, mediaType: image.mediaType, config: image.config, layers: image.layers, blobs: new Map() });
    const signature = Buffer.from('signature bytes');
    await pushBlob(hubBerth.url, 'library/signed-e2e', signature, { auth });
    await pushBlob(hubBerth.url, 'library/signed-e2e', EMPTY_JSON, { auth });
    const artifact = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.signature', layers: [descriptorOf('application/octet-stream', signature)], subject: image.descriptor }));
    const artifactDigest = await pushManifest(hubBerth.url, 'library/signed-e2e', digestOf(artifact), artifact, MEDIA.ociManifest, auth);
    const res = await fetch(`${berth.url}/v2/hub/signed-e2e/referrers/${image.digest}`, { headers: { Authorization: AUTH } });
    const index = (await res.json()) as { manifests: { digest: string; artifactType?: string }[] };
    assert.equal(res.status, 200);
    assert.deepEqual(index.manifests.map((m) => [m.digest, m.artifactType]), [[artifactDigest, 'application/vnd.example.signature']], 'the upstream\'s referrer, not cached yet');
  });

  test('logs: stale serves are logged without any credential', () => {
    assert.ok(logs.some((l) => /upstream failed: serving the cached manifest/i.test(String(l.msg))), `a log line about serving stale: ${logs.filter((l) => /proxy|upstream/i.test(String(l.msg))).map((l) => l.msg).join(' | ')}`);
  });
});
