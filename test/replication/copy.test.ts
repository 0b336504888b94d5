// The replication copy engine between real registries: an in-process Berth registry (its services
// over a temp data dir on this process's backend: localSide as source and destination), a Berth server with token auth and
// CNCF Distribution (remoteSide through the one outbound client). Servers are shared by the file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { RegistryError } from '../../src/domain/errors.ts';
import { configSchema } from '../../src/config/schema.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import { createRegistry, type Registry } from '../../src/registry/index.ts';
import { RegistryClient, type ClientOptions } from '../../src/remote/client.ts';
import type { Endpoint } from '../../src/remote/types.ts';
import { copyArtifact, DestinationBlobs, type CopyOptions } from '../../src/replication/copy.ts';
import { localSide } from '../../src/replication/local-side.ts';
import { remoteSide } from '../../src/replication/remote-side.ts';
import { Throttle } from '../../src/replication/throttle.ts';
import type { ReplicationSide } from '../../src/replication/types.ts';
import { openBlobStore, type OpenBlobStore } from '../../src/storage/index.ts';
import { backendConfig } from '../support/backend.ts';
import { startBerth, type BerthServer } from '../support/berth.ts';
import { artifactManifest, descriptorOf, digestOf, EMPTY_JSON, imageManifest, indexManifest, manifestBytes, MEDIA, type Descriptor } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { startDistributionUpstream, type DistributionUpstream } from '../support/upstream.ts';
import { BreakProxy } from './break-proxy.ts';

const processes = new ProcessRegistry();
const clients: RegistryClient[] = [];
let dataDir = '';
let meta: Metadata;
let store: OpenBlobStore;
let registry: Registry;
let local: ReplicationSide;
let berth: BerthServer;
let dist: DistributionUpstream;
let breaker: BreakProxy;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'berth-copy-'));
  // The local side on this process's backend (SQLite + filesystem, or PostgreSQL + S3).
  const config = configSchema.parse({ dataDir, ...(await backendConfig(dataDir)) });
  meta = await openMetadataFor(config);
  store = await openBlobStore(config);
  registry = createRegistry(store, meta, randomBytes(32), { auditPulls: false, uploads: { resumableHash: meta.dialect === 'postgres' } });
  local = localSide({ registry, meta, actor: 'replication:test' });
  for (const project of ['site', 'mirror']) await meta.projects.create(project, {});
  [berth, dist] = await Promise.all([startBerth({ registry: processes }), startDistributionUpstream(processes)]);
  breaker = await BreakProxy.start(berth.url);
  processes.defer('break proxy', () => breaker.close());
});

after(async () => {
  for (const c of clients) c.close();
  await meta?.close();
  await store?.close();
  await processes.stopAll();
  rmSync(dataDir, { recursive: true, force: true });
});

function remote(endpoint: Pick<Endpoint, 'url'> & Partial<Endpoint>, options: ClientOptions = {}): ReplicationSide {
  const client = new RegistryClient({ name: 'peer', type: 'generic', ...endpoint }, { timeoutMs: 10_000, ...options });
  clients.push(client);
  return remoteSide(client, endpoint.name ?? 'peer');
}
const distribution = (options: ClientOptions = {}): ReplicationSide => remote({ name: 'dist', url: dist.proxy.url, username: dist.registry.username, password: dist.registry.password }, options);
const berthSide = (url = berth.url, options: ClientOptions = {}): ReplicationSide => remote({ name: 'berth-b', type: 'berth', url, username: 'admin', password: berth.adminPassword }, options);

function options(source: ReplicationSide, destination: ReplicationSide, extra: Partial<CopyOptions> = {}): CopyOptions {
  return { source, destination, concurrency: 4, throttle: new Throttle(), known: new DestinationBlobs(), signal: new AbortController().signal, ...extra };
}

/** Stores an OCI image in the in-process registry; returns its manifest's descriptor and blobs. */
async function localImage(repository: string, tag: string | undefined, layerSizes: number[], extra: { subject?: Descriptor; artifactType?: string } = {}): Promise<{ desc: Descriptor; blobs: Map<string, Buffer> }> {
  const config = extra.artifactType ? EMPTY_JSON : Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const layers = layerSizes.map((n) => randomBytes(n));
  const blobs = new Map<string, Buffer>();
  for (const blob of [config, ...layers]) {
    await registry.uploads.monolithic(repository, digestOf(blob), Readable.from([blob]), 'test', blob.length);
    blobs.set(digestOf(blob), blob);
  }
  const layerDescs = layers.map((l) => descriptorOf(MEDIA.ociLayer, l));
  const body = extra.artifactType
    ? manifestBytes(artifactManifest({ artifactType: extra.artifactType, layers: layerDescs, ...(extra.subject ? { subject: extra.subject } : {}) }))
    : manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociConfig, config), layers: layerDescs }));
  await registry.manifests.put(repository, tag ?? digestOf(body), body, MEDIA.ociManifest, 'test');
  return { desc: descriptorOf(MEDIA.ociManifest, body), blobs };
}

async function readAll(side: ReplicationSide, repository: string, digest: string): Promise<Buffer> {
  return buffer((await side.openBlob(repository, digest, 0)).stream);
}

describe('copyArtifact', { timeout: 60_000 }, () => {
  test('Distribution → Berth (local side): an image with its blobs; a push into a missing project is refused by name', async () => {
    const image = await dist.push('vendor/tool', 'v1', [200 * 1024, 3000]);
    const result = await copyArtifact(options(distribution(), local), { repository: 'vendor/tool', reference: 'v1' }, { repository: 'mirror/tool', tag: 'v1' });
    assert.deepEqual([result.digest, result.manifestsPut, result.blobsCopied, result.blobsSkipped], [image.digest, 1, 3, 0]);
    assert.deepEqual(await local.head('mirror/tool', 'v1'), { digest: image.digest, mediaType: image.mediaType, size: image.manifest.length });
    for (const [digest, bytes] of image.blobs) assert.ok((await readAll(local, 'mirror/tool', digest)).equals(bytes));

    const refused = await copyArtifact(options(distribution(), local), { repository: 'vendor/tool', reference: 'v1' }, { repository: 'nowhere/tool', tag: 'v1' }).then(
      () => assert.fail('pushed into a project that does not exist'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof RegistryError && refused.code === 'DENIED', String(refused));
    assert.match(refused.message, /project nowhere does not exist/);
    assert.equal(await meta.projects.find('nowhere'), undefined, 'no project was created');
  });

  test('Distribution → Berth (local side): a source that stalls midway is reopened where the stored bytes end', async () => {
    const layer = 2 * 1024 * 1024 + 512 * 1024;
    const image = await dist.push('vendor/big', 'v1', [layer]);
    dist.proxy.reset();
    dist.proxy.stallAfter = 1024 * 1024;
    dist.proxy.stall();
    let read = 0;
    try {
      // Every byte read: the stall has done its work (the last answer's end is held too).
      const onBytes = (n: number): void => void ((read += n) >= layer && dist.proxy.reset());
      const result = await copyArtifact(options(distribution({ timeoutMs: 400 }), local, { onBytes }), { repository: 'vendor/big', reference: 'v1' }, { repository: 'mirror/big', tag: 'v1' });
      assert.equal(result.digest, image.digest);
    } finally {
      dist.proxy.reset();
    }
    const big = image.layers[0]!.digest;
    assert.ok((await readAll(local, 'mirror/big', big)).equals(image.blobs.get(big)!), 'the stored layer is the source\'s');
    assert.ok(read < layer + 64 * 1024, `${read} bytes read for a ${layer}-byte layer`);
  });

  test('Berth (local side) → Distribution: a multi-arch index with its children and a referrer; a second copy puts nothing', async () => {
    const amd = await localImage('site/multi', undefined, [64 * 1024]);
    const arm = await localImage('site/multi', undefined, [64 * 1024]);
    const index = manifestBytes(indexManifest({ manifests: [amd.desc, arm.desc].map((d, i) => ({ ...d, platform: { architecture: i ? 'arm64' : 'amd64', os: 'linux' } }) as Descriptor) }));
    await registry.manifests.put('site/multi', 'v2', index, MEDIA.ociIndex, 'test');
    const sbom = await localImage('site/multi', undefined, [500], { artifactType: 'application/vnd.test.sbom', subject: descriptorOf(MEDIA.ociIndex, index) });

    const dest = distribution();
    dist.proxy.reset();
    const first = await copyArtifact(options(local, dest), { repository: 'site/multi', reference: 'v2' }, { repository: 'copy/multi', tag: 'v2' });
    assert.deepEqual([first.digest, first.mediaType, first.manifestsPut, first.referrers], [digestOf(index), MEDIA.ociIndex, 4, 1]);
    assert.equal(first.blobsCopied, 6, 'two configs and two layers, the SBOM\'s empty config and layer');
    assert.equal((await dest.head('copy/multi', 'v2'))?.digest, digestOf(index));
    for (const child of [amd, arm, sbom]) assert.equal((await dest.head('copy/multi', child.desc.digest))?.digest, child.desc.digest);
    for (const [digest, bytes] of amd.blobs) assert.ok((await readAll(dest, 'copy/multi', digest)).equals(bytes));

    dist.proxy.reset();
    const second = await copyArtifact(options(local, dest), { repository: 'site/multi', reference: 'v2' }, { repository: 'copy/multi', tag: 'v2' });
    assert.deepEqual([second.manifestsPut, second.blobsCopied, second.blobsMounted, second.referrers], [0, 0, 0, 0]);
    const writes = dist.proxy.seen.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    assert.deepEqual(writes, [], dist.proxy.describe(writes));
  });

  test('Berth → Berth with token auth: a PATCH broken mid-blob resumes and the blob verifies; a blob another repository holds is mounted', async () => {
    const layer = 1024 * 1024 + 123;
    const image = await localImage('site/big', 'v1', [layer, 2000]);
    const dest = berthSide(breaker.url, { uploadChunkBytes: 256 * 1024 });
    breaker.seen.length = 0;
    breaker.breakNext('PATCH', 100_000, 2);
    const known = new DestinationBlobs();
    const result = await copyArtifact(options(local, dest, { known, concurrency: 2 }), { repository: 'site/big', reference: 'v1' }, { repository: 'team/big', tag: 'v1' });
    assert.ok(breaker.seen.some((r) => r.cut), 'a PATCH was cut');
    // Resumed where Berth's session stood: the bytes of the broken chunk that arrived are kept.
    const sent = breaker.bodyBytes('PATCH');
    assert.ok(sent >= layer && sent < layer + 256 * 1024 && sent < 2 * layer, `${sent} bytes sent for a ${layer}-byte layer`);
    assert.ok(result.bytes >= layer && result.bytes < 2 * layer + 10_000, `result.bytes ${result.bytes}`);
    const direct = berthSide();
    for (const [digest, bytes] of image.blobs) {
      const back = await readAll(direct, 'team/big', digest);
      assert.equal(digestOf(back), digest);
      assert.ok(back.equals(bytes));
    }

    // Another artifact sharing the big layer, to another repository of the same destination.
    const other = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON), layers: [...image.blobs.keys()].slice(1, 2).map((d) => descriptorOf(MEDIA.ociLayer, image.blobs.get(d)!)) }));
    await registry.uploads.monolithic('site/other', digestOf(EMPTY_JSON), Readable.from([EMPTY_JSON]), 'test', EMPTY_JSON.length);
    await registry.blobs.mount('site/other', [...image.blobs.keys()][1]!, 'site/big');
    await registry.manifests.put('site/other', 'v1', other, MEDIA.ociManifest, 'test');
    breaker.seen.length = 0;
    const mounted = await copyArtifact(options(local, dest, { known }), { repository: 'site/other', reference: 'v1' }, { repository: 'team/other', tag: 'v1' });
    assert.deepEqual([mounted.blobsMounted, mounted.blobsCopied], [1, 1], JSON.stringify(mounted));
    assert.equal(breaker.bodyBytes('PATCH'), 0);
    assert.equal((await direct.head('team/other', 'v1'))?.digest, digestOf(other));

    // And back: Berth (remote, token auth) → Berth (local side).
    const back = await copyArtifact(options(direct, local), { repository: 'team/other', reference: 'v1' }, { repository: 'mirror/other', tag: 'v1' });
    assert.equal(back.digest, digestOf(other));
    assert.equal(back.blobsCopied, 2);
  });

  test('the throttle holds the rate; an abort stops a copy promptly', async () => {
    const image = await localImage('site/slow', 'v1', [4 * 1024 * 1024]);
    const started = performance.now();
    const throttled = await copyArtifact(options(local, distribution(), { throttle: new Throttle(2 * 1024 * 1024) }), { repository: 'site/slow', reference: 'v1' }, { repository: 'slow/app', tag: 'v1' });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(throttled.blobsCopied, 2);
    assert.ok(seconds >= 1.5 && seconds < 10, `4 MiB at 2 MiB/s took ${seconds.toFixed(2)} s`);
    assert.equal((await distribution().head('slow/app', 'v1'))?.digest, image.desc.digest);

    const controller = new AbortController();
    const copying = copyArtifact(options(local, distribution(), { throttle: new Throttle(256 * 1024), signal: controller.signal }), { repository: 'site/slow', reference: 'v1' }, { repository: 'slow/aborted', tag: 'v1' });
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 300);
    const abortedAt = performance.now();
    await assert.rejects(copying);
    assert.ok(performance.now() - abortedAt < 3000, 'rejected soon after the abort');
    assert.equal(await distribution().head('slow/aborted', 'v1'), undefined);

    const unlimited = new Throttle();
    const stream = Readable.from([Buffer.alloc(10)]);
    assert.equal(unlimited.wrap(stream), stream);
  });
});
