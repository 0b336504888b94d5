// Manifests: push/pull of every supported kind, content negotiation, validation, tags, deletes,
// subjects and the referrers API.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import {
  EMPTY_JSON,
  MEDIA,
  artifactManifest,
  assertEnvelope,
  answerThenReuse,
  descriptorOf,
  digestOf,
  expectError,
  imageManifest,
  indexManifest,
  manifestBytes,
  pushBlob,
  pushImage,
  pushManifest,
  putManifest,
  randomBlob,
  uniqueName,
  type Descriptor,
  type ReusedConnection,
} from '../support/oci.ts';

const AUTH = { Authorization: adminBasic() };

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: (Descriptor & { artifactType?: string; annotations?: Record<string, string> })[];
}

describe('manifests', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  async function get(name: string, reference: string, headers: Record<string, string> = {}): Promise<{ res: Response; body: Buffer }> {
    const res = await fetch(`${url}/v2/${name}/manifests/${reference}`, { headers: { ...AUTH, ...headers } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  async function head(name: string, reference: string, headers: Record<string, string> = {}): Promise<Response> {
    const res = await fetch(`${url}/v2/${name}/manifests/${reference}`, { method: 'HEAD', headers: { ...AUTH, ...headers } });
    assert.equal((await res.arrayBuffer()).byteLength, 0, 'HEAD has no body');
    return res;
  }

  async function tags(name: string): Promise<string[]> {
    const res = await fetch(`${url}/v2/${name}/tags/list`, { headers: AUTH });
    assert.equal(res.status, 200);
    return ((await res.json()) as { tags: string[] }).tags;
  }

  async function referrers(name: string, digest: string, query = ''): Promise<{ res: Response; index: ReferrersIndex }> {
    const res = await fetch(`${url}/v2/${name}/referrers/${digest}${query}`, { headers: AUTH });
    assert.equal(res.status, 200);
    return { res, index: (await res.json()) as ReferrersIndex };
  }

  /** GET and HEAD by every reference return the exact bytes and headers. */
  async function assertServed(name: string, references: string[], bytes: Buffer, mediaType: string): Promise<void> {
    const digest = digestOf(bytes);
    for (const reference of references) {
      const got = await get(name, reference);
      assert.equal(got.res.status, 200, `GET ${reference}`);
      assert.ok(got.body.equals(bytes), `GET ${reference} returns the exact bytes`);
      assert.equal(got.res.headers.get('content-type'), mediaType);
      assert.equal(got.res.headers.get('docker-content-digest'), digest);
      assert.equal(got.res.headers.get('content-length'), String(bytes.length));
      const h = await head(name, reference);
      assert.equal(h.status, 200, `HEAD ${reference}`);
      assert.equal(h.headers.get('content-type'), mediaType);
      assert.equal(h.headers.get('docker-content-digest'), digest);
      assert.equal(h.headers.get('content-length'), String(bytes.length));
    }
  }

  async function pushConfigAndLayer(name: string, configType: string = MEDIA.ociConfig, layerType: string = MEDIA.ociLayer): Promise<{ config: Descriptor; layer: Descriptor }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: Math.random() }));
    const layer = randomBlob(300);
    await pushBlob(url, name, config);
    await pushBlob(url, name, layer);
    return { config: descriptorOf(configType, config), layer: descriptorOf(layerType, layer) };
  }

  test('OCI image manifest by tag: 201 with Location and digest; GET/HEAD by tag and digest', async () => {
    const name = uniqueName('oci');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer] }));
    const digest = digestOf(bytes);
    const res = await putManifest(url, name, 'v1', bytes, MEDIA.ociManifest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), `/v2/${name}/manifests/${digest}`);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(res.headers.get('oci-subject'), null);
    await assertServed(name, ['v1', digest], bytes, MEDIA.ociManifest);
    assert.deepEqual(await tags(name), ['v1']);
  });

  test('bytes are stored exactly as sent (whitespace and key order kept)', async () => {
    const name = uniqueName('exact');
    const { config, layer } = await pushConfigAndLayer(name);
    const text = `{\n  "layers": [${JSON.stringify(layer)}],\n\t"config":   ${JSON.stringify(config)},\n  "mediaType": "${MEDIA.ociManifest}",\n  "schemaVersion": 2\n}\n`;
    const bytes = Buffer.from(text);
    await pushManifest(url, name, 'pretty', bytes, MEDIA.ociManifest);
    await assertServed(name, ['pretty', digestOf(bytes)], bytes, MEDIA.ociManifest);
  });

  test('push by digest: stored without a tag', async () => {
    const name = uniqueName('bydigest');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer] }));
    const digest = digestOf(bytes);
    const res = await putManifest(url, name, digest, bytes, MEDIA.ociManifest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), `/v2/${name}/manifests/${digest}`);
    await assertServed(name, [digest], bytes, MEDIA.ociManifest);
    assert.deepEqual(await tags(name), []);
  });

  test('push by a sha512 digest', async () => {
    const name = uniqueName('sha512');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer] }));
    const digest = digestOf(bytes, 'sha512');
    const res = await putManifest(url, name, digest, bytes, MEDIA.ociManifest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const got = await get(name, digest);
    assert.equal(got.res.status, 200);
    assert.equal(got.res.headers.get('docker-content-digest'), digest);
    assert.ok(got.body.equals(bytes));
  });

  test('a manifest without a mediaType field takes its type from Content-Type', async () => {
    const name = uniqueName('no-mediatype');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer], omitMediaType: true }));
    await pushManifest(url, name, 'v1', bytes, `${MEDIA.ociManifest}; charset=utf-8`);
    await assertServed(name, ['v1'], bytes, MEDIA.ociManifest);
  });

  test('a manifest PUT without Content-Type takes its type from the mediaType field', async () => {
    const name = uniqueName('no-content-type');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer] }));
    await pushManifest(url, name, 'v1', bytes, undefined);
    await assertServed(name, ['v1'], bytes, MEDIA.ociManifest);
  });

  test('OCI image index: push the children, then the index; served with the index media type', async () => {
    const name = uniqueName('index');
    const amd = await pushImage(url, name);
    const arm = await pushImage(url, name);
    const bytes = manifestBytes(
      indexManifest({
        manifests: [
          { ...amd.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
          { ...arm.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      }),
    );
    await pushManifest(url, name, 'multi', bytes, MEDIA.ociIndex);
    await assertServed(name, ['multi', digestOf(bytes)], bytes, MEDIA.ociIndex);
    // The children stay reachable by digest.
    assert.equal((await head(name, amd.digest)).status, 200);
  });

  test('Docker schema 2 manifest and Docker manifest list', async () => {
    const name = uniqueName('docker');
    const img = await pushImage(url, name, 'single', { docker: true, layerCount: 2 });
    await assertServed(name, ['single', img.digest], img.bytes, MEDIA.dockerManifest);
    const other = await pushImage(url, name, undefined, { docker: true });
    const list = manifestBytes(
      indexManifest({
        mediaType: MEDIA.dockerList,
        manifests: [
          { ...img.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
          { ...other.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      }),
    );
    await pushManifest(url, name, 'list', list, MEDIA.dockerList);
    await assertServed(name, ['list', digestOf(list)], list, MEDIA.dockerList);
  });

  test('Docker foreign layers with URLs need not be in the registry; every other blob must be', async () => {
    const name = uniqueName('foreign');
    const { config } = await pushConfigAndLayer(name, MEDIA.dockerConfig);
    const local = randomBlob(100);
    await pushBlob(url, name, local);
    const FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
    const foreign = { mediaType: FOREIGN, digest: digestOf(randomBlob(50)), size: 50, urls: ['https://example.com/layer.tar.gz'] };
    const localLayer = descriptorOf(MEDIA.dockerLayer, local);
    const bytes = manifestBytes(imageManifest({ mediaType: MEDIA.dockerManifest, config, layers: [foreign, localLayer] }));
    await pushManifest(url, name, 'win', bytes, MEDIA.dockerManifest);
    // Stored and served exactly as sent, by tag and by digest.
    await assertServed(name, ['win', digestOf(bytes)], bytes, MEDIA.dockerManifest);
    assert.deepEqual(await tags(name), ['win']);
    // The foreign layer was never in the registry and still is not; the config and the local layer are.
    const blobStatus = async (digest: string) => {
      const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await blobStatus(foreign.digest), 404, 'the foreign layer is not (and need not be) stored');
    assert.equal(await blobStatus(config.digest), 200);
    assert.equal(await blobStatus(localLayer.digest), 200);
    // Only a foreign layer with URLs is exempt: a missing config, a missing ordinary layer (even one
    // carrying URLs) and a missing foreign layer without URLs are each refused, and nothing is stored.
    const missing = randomBlob(60);
    const refused = [
      { why: 'config missing', m: { config: descriptorOf(MEDIA.dockerConfig, missing), layers: [foreign, localLayer] } },
      { why: 'ordinary layer missing', m: { config, layers: [foreign, descriptorOf(MEDIA.dockerLayer, missing)] } },
      { why: 'ordinary layer with URLs missing', m: { config, layers: [descriptorOf(MEDIA.dockerLayer, missing, { urls: ['https://example.com/l.tar.gz'] }), localLayer] } },
      { why: 'foreign layer without URLs missing', m: { config, layers: [{ mediaType: FOREIGN, digest: foreign.digest, size: foreign.size }, localLayer] } },
    ];
    for (const { why, m } of refused) {
      const body = manifestBytes(imageManifest({ mediaType: MEDIA.dockerManifest, ...m }));
      const env = await expectError(await putManifest(url, name, 'refused', body, MEDIA.dockerManifest), 404, 'MANIFEST_BLOB_UNKNOWN');
      assert.ok(JSON.stringify(env).includes(why.startsWith('foreign') ? foreign.digest : digestOf(missing)), `${why}: the missing blob is named: ${JSON.stringify(env)}`);
      await expectError(await fetch(`${url}/v2/${name}/manifests/${digestOf(body)}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    }
    assert.deepEqual(await tags(name), ['win']);
  });

  test('artifact manifest: artifactType with a custom config media type', async () => {
    const name = uniqueName('artifact');
    const config = Buffer.from('{"tool":"example"}');
    const payload = randomBlob(128);
    await pushBlob(url, name, config);
    await pushBlob(url, name, payload);
    const bytes = manifestBytes(
      imageManifest({
        artifactType: 'application/vnd.example.thing.v1',
        config: descriptorOf('application/vnd.example.config.v1+json', config),
        layers: [descriptorOf('application/vnd.example.payload.v1.tar', payload)],
      }),
    );
    await pushManifest(url, name, 'art', bytes, MEDIA.ociManifest);
    await assertServed(name, ['art', digestOf(bytes)], bytes, MEDIA.ociManifest);
  });

  test('artifact manifest with the OCI empty config ({})', async () => {
    const name = uniqueName('empty-config');
    await pushBlob(url, name, EMPTY_JSON);
    const payload = randomBlob(64);
    await pushBlob(url, name, payload);
    const bytes = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.sbom.v1+json', layers: [descriptorOf('application/json', payload)] }));
    await pushManifest(url, name, 'sbom', bytes, MEDIA.ociManifest);
    await assertServed(name, ['sbom'], bytes, MEDIA.ociManifest);
    // The empty descriptor as the only "layer" is valid too.
    const minimal = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.marker', layers: [descriptorOf(MEDIA.ociEmpty, EMPTY_JSON)] }));
    await pushManifest(url, name, 'marker', minimal, MEDIA.ociManifest);
  });

  test('Accept negotiation: a type the client does not accept is 404 MANIFEST_UNKNOWN; listed or wildcard types are served', async () => {
    const name = uniqueName('accept');
    const img = await pushImage(url, name, 'v1');
    const refused = [MEDIA.dockerManifest, `${MEDIA.dockerManifest}, ${MEDIA.dockerList}`, MEDIA.ociIndex, 'text/plain'];
    for (const accept of refused) {
      await expectError((await fetch(`${url}/v2/${name}/manifests/v1`, { headers: { ...AUTH, Accept: accept } })), 404, 'MANIFEST_UNKNOWN');
      assert.equal((await head(name, 'v1', { Accept: accept })).status, 404, `HEAD with Accept: ${accept}`);
    }
    const served = [
      '*/*',
      MEDIA.ociManifest,
      `${MEDIA.dockerManifest}, ${MEDIA.ociManifest}`,
      `${MEDIA.dockerManifest},${MEDIA.ociIndex} , ${MEDIA.ociManifest};q=0.9`,
      `${MEDIA.dockerManifest}, */*;q=0.1`,
    ];
    for (const accept of served) {
      const got = await get(name, 'v1', { Accept: accept });
      assert.equal(got.res.status, 200, `Accept: ${accept}`);
      assert.ok(got.body.equals(img.bytes));
      assert.equal(got.res.headers.get('content-type'), MEDIA.ociManifest);
      assert.equal((await head(name, 'v1', { Accept: accept })).status, 200, `HEAD with Accept: ${accept}`);
    }
  });

  test('a missing config or layer blob: 404 MANIFEST_BLOB_UNKNOWN and nothing stored', async () => {
    const name = uniqueName('missing-blob');
    const { config, layer } = await pushConfigAndLayer(name);
    const missing = descriptorOf(MEDIA.ociLayer, randomBlob(10));
    const other = uniqueName('other-repo');
    const elsewhere = randomBlob(20);
    await pushBlob(url, other, elsewhere);
    const cases = [
      imageManifest({ config: descriptorOf(MEDIA.ociConfig, randomBlob(10)), layers: [layer] }),
      imageManifest({ config, layers: [layer, missing] }),
      imageManifest({ config, layers: [descriptorOf(MEDIA.ociLayer, elsewhere)] }), // exists, but in another repository
    ];
    for (const m of cases) {
      const bytes = manifestBytes(m);
      const res = await putManifest(url, name, 'broken', bytes, MEDIA.ociManifest);
      await expectError(res, 404, 'MANIFEST_BLOB_UNKNOWN');
      await expectError((await fetch(`${url}/v2/${name}/manifests/${digestOf(bytes)}`, { headers: AUTH })), 404, 'MANIFEST_UNKNOWN');
    }
    await expectError((await fetch(`${url}/v2/${name}/manifests/broken`, { headers: AUTH })), 404, 'MANIFEST_UNKNOWN');
  });

  test('an index referencing a missing child manifest: 404 MANIFEST_BLOB_UNKNOWN', async () => {
    const name = uniqueName('missing-child');
    const present = await pushImage(url, name);
    const elsewhere = await pushImage(url, uniqueName('elsewhere'));
    const absent = { mediaType: MEDIA.ociManifest, digest: digestOf(randomBlob(30)), size: 30 };
    for (const child of [absent, elsewhere.descriptor]) {
      const bytes = manifestBytes(indexManifest({ manifests: [present.descriptor, child] }));
      await expectError(await putManifest(url, name, 'idx', bytes, MEDIA.ociIndex), 404, 'MANIFEST_BLOB_UNKNOWN');
    }
    await expectError((await fetch(`${url}/v2/${name}/manifests/idx`, { headers: AUTH })), 404, 'MANIFEST_UNKNOWN');
  });

  test('a descriptor whose size does not match the blob: 400 MANIFEST_INVALID', async () => {
    const name = uniqueName('bad-size');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [{ ...layer, size: layer.size + 1 }] }));
    await expectError(await putManifest(url, name, 'v1', bytes, MEDIA.ociManifest), 400, 'MANIFEST_INVALID');
  });

  test('pushing to a digest reference that does not match the body: 400 DIGEST_INVALID, nothing stored', async () => {
    const name = uniqueName('digest-mismatch');
    const { config, layer } = await pushConfigAndLayer(name);
    const bytes = manifestBytes(imageManifest({ config, layers: [layer] }));
    const wrong = digestOf(randomBlob(10));
    await expectError(await putManifest(url, name, wrong, bytes, MEDIA.ociManifest), 400, 'DIGEST_INVALID');
    await expectError(await fetch(`${url}/v2/${name}/manifests/${wrong}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${url}/v2/${name}/manifests/${digestOf(bytes)}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    // A malformed digest reference is DIGEST_INVALID too.
    await expectError(await putManifest(url, name, 'sha256:abc', bytes, MEDIA.ociManifest), 400, 'DIGEST_INVALID');
  });

  test('invalid manifests: 400 MANIFEST_INVALID', async () => {
    const name = uniqueName('invalid');
    const { config, layer } = await pushConfigAndLayer(name);
    const good = imageManifest({ config, layers: [layer] });
    const goodText = JSON.stringify(good);
    const cases: { why: string; body: string; type?: string }[] = [
      { why: 'not JSON', body: 'this is not json', type: MEDIA.ociManifest },
      { why: 'truncated JSON', body: goodText.slice(0, goodText.length - 10), type: MEDIA.ociManifest },
      { why: 'empty body', body: '', type: MEDIA.ociManifest },
      { why: 'JSON array', body: '[1,2,3]', type: MEDIA.ociManifest },
      { why: 'JSON null', body: 'null', type: MEDIA.ociManifest },
      { why: 'schemaVersion 1', body: JSON.stringify({ ...good, schemaVersion: 1 }), type: MEDIA.ociManifest },
      { why: 'schemaVersion "2"', body: JSON.stringify({ ...good, schemaVersion: '2' }), type: MEDIA.ociManifest },
      { why: 'schemaVersion missing', body: JSON.stringify({ ...good, schemaVersion: undefined }), type: MEDIA.ociManifest },
      { why: 'Content-Type differs from mediaType', body: goodText, type: MEDIA.dockerManifest },
      { why: 'Content-Type index for an image manifest', body: goodText, type: MEDIA.ociIndex },
      { why: 'unknown media type', body: JSON.stringify({ ...good, mediaType: 'application/vnd.example.unknown+json' }), type: 'application/vnd.example.unknown+json' },
      { why: 'unknown Content-Type, no mediaType field', body: JSON.stringify({ ...good, mediaType: undefined }), type: 'application/json' },
      { why: 'no media type at all', body: JSON.stringify({ ...good, mediaType: undefined }) },
      { why: 'config missing', body: JSON.stringify({ ...good, config: undefined }), type: MEDIA.ociManifest },
      { why: 'config digest malformed', body: JSON.stringify({ ...good, config: { ...config, digest: 'sha256:nothex' } }), type: MEDIA.ociManifest },
      { why: 'layer size negative', body: JSON.stringify({ ...good, layers: [{ ...layer, size: -1 }] }), type: MEDIA.ociManifest },
      { why: 'layers not an array', body: JSON.stringify({ ...good, layers: layer }), type: MEDIA.ociManifest },
      { why: 'annotations not strings', body: JSON.stringify({ ...good, annotations: { a: 1 } }), type: MEDIA.ociManifest },
      { why: 'index without manifests', body: JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex }), type: MEDIA.ociIndex },
    ];
    for (const c of cases) {
      const res = await putManifest(url, name, 'bad', c.body, c.type);
      const body = await expectError(res, 400);
      assert.equal(body.errors[0]!.code, 'MANIFEST_INVALID', `${c.why}: ${JSON.stringify(body)}`);
      // The field at fault is named, with the shape it should have.
      const detail = body.errors[0]!.detail as { field?: unknown; expected?: unknown };
      assert.ok(typeof detail.field === 'string' && typeof detail.expected === 'string', `${c.why}: ${JSON.stringify(body)}`);
    }
    await expectError(await fetch(`${url}/v2/${name}/manifests/bad`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
  });

  test('Docker schema 1 manifests are refused: 400 MANIFEST_INVALID', async () => {
    const name = uniqueName('schema1');
    const schema1 = { schemaVersion: 1, name, tag: 'old', architecture: 'amd64', fsLayers: [{ blobSum: digestOf(randomBlob(5)) }], history: [{ v1Compatibility: '{}' }] };
    for (const type of [MEDIA.dockerSchema1, MEDIA.dockerSchema1Signed]) {
      await expectError(await putManifest(url, name, 'old', JSON.stringify(schema1), type), 400, 'MANIFEST_INVALID');
      await expectError(await putManifest(url, name, 'old', JSON.stringify({ ...schema1, mediaType: type }), type), 400, 'MANIFEST_INVALID');
    }
  });

  test('a manifest over 4 MiB: 413 SIZE_INVALID; one of exactly 4 MiB is accepted', async () => {
    const name = uniqueName('huge');
    const { config, layer } = await pushConfigAndLayer(name);
    const limit = 4 * 1024 * 1024;
    const base = JSON.stringify(imageManifest({ config, layers: [layer], annotations: { pad: '' } }));
    const exact = Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(limit - base.length)}"`));
    assert.equal(exact.length, limit);
    await pushManifest(url, name, 'exact', exact, MEDIA.ociManifest);
    const over = Buffer.from(base.replace('"pad":""', `"pad":"${'x'.repeat(limit - base.length + 1)}"`));
    assert.equal(over.length, limit + 1);
    const res = await putManifest(url, name, 'over', over, MEDIA.ociManifest);
    await expectError(res, 413, 'SIZE_INVALID');
    await expectError(await fetch(`${url}/v2/${name}/manifests/over`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
  });

  test('invalid tags: 400 TAG_INVALID on push; a 128-character tag is fine', async () => {
    const name = uniqueName('tags');
    const img = await pushImage(url, name);
    for (const tag of ['-bad', '.bad', 'a'.repeat(129), 'with%20space', 'a%2Fb', 'a+b', 'ta%C3%A9g']) {
      const res = await putManifest(url, name, tag, img.bytes, img.mediaType);
      await expectError(res, 400, 'TAG_INVALID');
    }
    const longest = 'A_b.c-' + 'z'.repeat(122);
    assert.equal(longest.length, 128);
    await pushManifest(url, name, longest, img.bytes, img.mediaType);
    assert.deepEqual(await tags(name), [longest]);
  });

  test('a reference that is not a valid tag: GET, HEAD and DELETE are 404 MANIFEST_UNKNOWN (as the conformance suite expects); PUT is 400 TAG_INVALID', async () => {
    const name = uniqueName('bad-ref');
    const img = await pushImage(url, name, 'v1');
    for (const reference of ['.INVALID_MANIFEST_NAME', 'a'.repeat(200), '-bad', 'a'.repeat(129)]) {
      const got = await expectError(await fetch(`${url}/v2/${name}/manifests/${reference}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
      assert.ok(!JSON.stringify(got).includes(reference), `the reference is not echoed: ${JSON.stringify(got)}`);
      const headed = await head(name, reference);
      assert.equal(headed.status, 404, `HEAD ${reference.slice(0, 20)}`);
      await expectError(await fetch(`${url}/v2/${name}/manifests/${reference}`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
      await expectError(await putManifest(url, name, reference, img.bytes, img.mediaType), 400, 'TAG_INVALID');
    }
    // The same in a repository that does not exist.
    await expectError(await fetch(`${url}/v2/${uniqueName('no-repo')}/manifests/.INVALID_MANIFEST_NAME`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    // A malformed digest is still DIGEST_INVALID, as for blobs; nothing was changed by any of this.
    await expectError(await fetch(`${url}/v2/${name}/manifests/sha256:abc`, { headers: AUTH }), 400, 'DIGEST_INVALID');
    assert.deepEqual(await tags(name), ['v1']);
    await assertServed(name, ['v1', img.digest], img.bytes, img.mediaType);
  });

  test('GET of an unknown tag or digest, or in an unknown repository: 404 MANIFEST_UNKNOWN', async () => {
    const name = uniqueName('unknown-manifest');
    const img = await pushImage(url, name, 'v1');
    await expectError(await fetch(`${url}/v2/${name}/manifests/v2`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${url}/v2/${name}/manifests/${digestOf(randomBlob(5))}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    const other = uniqueName('nothing-here');
    const res = await fetch(`${url}/v2/${other}/manifests/${img.digest}`, { headers: AUTH });
    assert.equal(res.status, 404);
    const code = (await expectError(res, 404)).errors[0]!.code;
    assert.ok(code === 'MANIFEST_UNKNOWN' || code === 'NAME_UNKNOWN', code);
    // A layer digest is not a manifest.
    await expectError(await fetch(`${url}/v2/${name}/manifests/${img.layers[0]!.digest}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
  });

  test('a manifest in repository A is not visible in repository B', async () => {
    const a = uniqueName('man-a');
    const b = uniqueName('man-b');
    const img = await pushImage(url, a, 'v1');
    await pushImage(url, b, 'v1');
    const res = await fetch(`${url}/v2/${b}/manifests/${img.digest}`, { headers: AUTH });
    await expectError(res, 404, 'MANIFEST_UNKNOWN');
  });

  test('DELETE by tag removes only the tag: 202; the manifest stays reachable by digest', async () => {
    const name = uniqueName('del-tag');
    const img = await pushImage(url, name, 'v1');
    await pushManifest(url, name, 'v2', img.bytes, img.mediaType);
    const del = await fetch(`${url}/v2/${name}/manifests/v1`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    await del.arrayBuffer();
    await expectError(await fetch(`${url}/v2/${name}/manifests/v1`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    await assertServed(name, [img.digest, 'v2'], img.bytes, img.mediaType);
    assert.deepEqual(await tags(name), ['v2']);
    await expectError(await fetch(`${url}/v2/${name}/manifests/v1`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
  });

  test('DELETE by digest removes the manifest and every tag on it: 202, then 404', async () => {
    const name = uniqueName('del-digest');
    const img = await pushImage(url, name, 'v1');
    await pushManifest(url, name, 'latest', img.bytes, img.mediaType);
    const keep = await pushImage(url, name, 'keep');
    const del = await fetch(`${url}/v2/${name}/manifests/${img.digest}`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    await del.arrayBuffer();
    for (const ref of [img.digest, 'v1', 'latest']) {
      await expectError(await fetch(`${url}/v2/${name}/manifests/${ref}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
      assert.equal((await head(name, ref)).status, 404);
    }
    assert.deepEqual(await tags(name), ['keep']);
    await assertServed(name, ['keep'], keep.bytes, keep.mediaType);
    await expectError(await fetch(`${url}/v2/${name}/manifests/${img.digest}`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    // It can be pushed again.
    await pushManifest(url, name, 'v1', img.bytes, img.mediaType);
    await assertServed(name, ['v1', img.digest], img.bytes, img.mediaType);
  });

  test('DELETE of an unknown manifest: 404 MANIFEST_UNKNOWN', async () => {
    const name = uniqueName('del-unknown');
    await pushImage(url, name, 'v1');
    await expectError(await fetch(`${url}/v2/${name}/manifests/nope`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${url}/v2/${name}/manifests/${digestOf(randomBlob(4))}`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    await expectError(await fetch(`${url}/v2/${uniqueName('no-repo')}/manifests/v1`, { method: 'DELETE', headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
  });

  test('re-pushing a tag moves it; the old manifest stays reachable by digest', async () => {
    const name = uniqueName('move');
    const first = await pushImage(url, name, 'latest');
    const second = await pushImage(url, name, 'latest');
    assert.notEqual(first.digest, second.digest);
    await assertServed(name, ['latest', second.digest], second.bytes, second.mediaType);
    await assertServed(name, [first.digest], first.bytes, first.mediaType);
    assert.deepEqual(await tags(name), ['latest']);
    // Pushing the same manifest to the same tag again is idempotent.
    await pushManifest(url, name, 'latest', second.bytes, second.mediaType);
    await assertServed(name, ['latest'], second.bytes, second.mediaType);
  });

  test('push with a subject: OCI-Subject header; the referrers API lists it with artifactType and annotations', async () => {
    const name = uniqueName('referrers');
    const subject = await pushImage(url, name, 'v1');
    await pushBlob(url, name, EMPTY_JSON);
    const sig = randomBlob(64);
    await pushBlob(url, name, sig);
    const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'com.example.kind': 'signature' };
    const sigBytes = manifestBytes(
      artifactManifest({ artifactType: 'application/vnd.example.signature.v1', layers: [descriptorOf('application/octet-stream', sig)], subject: subject.descriptor, annotations }),
    );
    const res = await putManifest(url, name, digestOf(sigBytes), sigBytes, MEDIA.ociManifest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('oci-subject'), subject.digest);

    // A second referrer: an image manifest whose artifact type comes from its config media type.
    const sbomConfig = Buffer.from('{"sbom":true}');
    await pushBlob(url, name, sbomConfig);
    const sbomBytes = manifestBytes(imageManifest({ config: descriptorOf('application/vnd.example.sbom.config.v1+json', sbomConfig), layers: [], subject: subject.descriptor }));
    const res2 = await putManifest(url, name, digestOf(sbomBytes), sbomBytes, MEDIA.ociManifest);
    assert.equal(res2.status, 201, await res2.text());
    assert.equal(res2.headers.get('oci-subject'), subject.digest);

    const { res: listRes, index } = await referrers(name, subject.digest);
    assert.equal(listRes.headers.get('content-type'), MEDIA.ociIndex);
    assert.equal(listRes.headers.get('oci-filters-applied'), null);
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, MEDIA.ociIndex);
    const byDigest = new Map(index.manifests.map((m) => [m.digest, m]));
    assert.equal(index.manifests.length, 2);
    assert.deepEqual(byDigest.get(digestOf(sigBytes)), {
      mediaType: MEDIA.ociManifest,
      digest: digestOf(sigBytes),
      size: sigBytes.length,
      artifactType: 'application/vnd.example.signature.v1',
      annotations,
    });
    const sbom = byDigest.get(digestOf(sbomBytes));
    assert.ok(sbom);
    assert.equal(sbom.artifactType, 'application/vnd.example.sbom.config.v1+json');
    assert.equal(sbom.size, sbomBytes.length);

    // Filtered by artifactType.
    const filtered = await referrers(name, subject.digest, `?artifactType=${encodeURIComponent('application/vnd.example.signature.v1')}`);
    assert.equal(filtered.res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(filtered.index.manifests.map((m) => m.digest), [digestOf(sigBytes)]);
    const none = await referrers(name, subject.digest, '?artifactType=application/vnd.example.none');
    assert.equal(none.res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(none.index.manifests, []);

    // Deleting a referrer removes it from the list.
    const del = await fetch(`${url}/v2/${name}/manifests/${digestOf(sbomBytes)}`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    const after = await referrers(name, subject.digest);
    assert.deepEqual(after.index.manifests.map((m) => m.digest), [digestOf(sigBytes)]);
  });

  test('a referrer may be pushed before its subject exists; an index can be a referrer', async () => {
    const name = uniqueName('referrer-first');
    await pushBlob(url, name, EMPTY_JSON);
    const absentSubject = { mediaType: MEDIA.ociManifest, digest: digestOf(randomBlob(40)), size: 40 };
    const bytes = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.early', layers: [descriptorOf(MEDIA.ociEmpty, EMPTY_JSON)], subject: absentSubject }));
    const res = await putManifest(url, name, 'early', bytes, MEDIA.ociManifest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('oci-subject'), absentSubject.digest);
    const child = await pushImage(url, name);
    const idx = manifestBytes(indexManifest({ manifests: [child.descriptor], artifactType: 'application/vnd.example.bundle', subject: absentSubject }));
    const res2 = await putManifest(url, name, digestOf(idx), idx, MEDIA.ociIndex);
    assert.equal(res2.status, 201, await res2.text());
    const { index } = await referrers(name, absentSubject.digest);
    const types = new Map(index.manifests.map((m) => [m.digest, m]));
    assert.equal(types.get(digestOf(bytes))?.artifactType, 'application/vnd.example.early');
    assert.equal(types.get(digestOf(idx))?.artifactType, 'application/vnd.example.bundle');
    assert.equal(types.get(digestOf(idx))?.mediaType, MEDIA.ociIndex);
  });

  test('referrers of an unknown digest (or in an unknown repository): 200 with an empty index', async () => {
    const name = uniqueName('no-referrers');
    await pushImage(url, name, 'v1');
    for (const repo of [name, uniqueName('never')]) {
      const res = await fetch(`${url}/v2/${repo}/referrers/${digestOf(randomBlob(8))}`, { headers: AUTH });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), MEDIA.ociIndex);
      assert.deepEqual(await res.json(), { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] });
    }
  });

  test('referrers with a malformed digest: 400', async () => {
    const name = uniqueName('bad-referrers');
    for (const digest of ['sha256:abc', 'latest', `md5:${'0'.repeat(32)}`]) {
      await expectError(await fetch(`${url}/v2/${name}/referrers/${digest}`, { headers: AUTH }), 400, 'DIGEST_INVALID');
    }
  });
});

// Bodies over a limit that arrive chunked (no Content-Length), so the server only finds out while
// reading. A server of their own: while the connection bug these tests look for exists, the stuck
// connection also holds up the server's shutdown for its 30 s grace period, and it must not break
// (or slow down) the other tests' server.
describe('oversized chunked request bodies', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  /**
   * The refusal left the connection usable: the 413 did not announce `Connection: close`, and a
   * second request on the same socket (an authenticated `GET /v2/`, which a leftover of the refused
   * body read as a request would have turned into a 400 or a hang) is answered 200.
   */
  function assertReused(result: ReusedConnection): void {
    const { first, second } = result;
    assert.equal(first.status, 413, first.body.toString());
    assert.notEqual((first.headers.connection ?? '').toLowerCase(), 'close', 'the 413 keeps the connection (no Connection: close)');
    assert.ok(typeof second === 'object', `the next request on the same connection got no answer: ${String(second)}`);
    assert.equal(second.status, 200, `the next request on the same connection: ${second.status} ${second.body.toString()}`);
    assert.deepEqual(JSON.parse(second.body.toString()), {});
  }
  const followUp = () => `GET /v2/ HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\n\r\n`;

  test('a manifest over 4 MiB sent chunked: 413 SIZE_INVALID and the connection stays usable', async () => {
    const name = uniqueName('huge-chunked');
    const head =
      `PUT /v2/${name}/manifests/over HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\n` +
      `Content-Type: ${MEDIA.ociManifest}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const result = await answerThenReuse(server.url, (conn) => {
      conn.write(head);
      conn.writeChunked(Buffer.alloc(5 * 1024 * 1024, 0x20));
    }, followUp());
    assert.equal(assertEnvelope(result.first.body.toString('utf8')).errors[0]!.code, 'SIZE_INVALID');
    assertReused(result);
  });

  test('a token form over 64 KiB sent chunked: 413 and the connection stays usable', async () => {
    const head = 'POST /service/token HTTP/1.1\r\nHost: berth.test\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n';
    const body = Buffer.from(`grant_type=password&username=admin&password=${'x'.repeat(200 * 1024)}`);
    const result = await answerThenReuse(server.url, (conn) => {
      conn.write(head);
      conn.writeChunked(body);
    }, followUp());
    assertReused(result);
  });

  test('the same bodies with a Content-Length: 413 and the connection stays usable', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const result = await answerThenReuse(server.url, (conn) => {
      conn.write(`PUT /v2/${uniqueName('huge-cl')}/manifests/over HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Type: ${MEDIA.ociManifest}\r\nContent-Length: ${body.length}\r\n\r\n`);
      conn.write(body);
    }, followUp());
    assert.equal(assertEnvelope(result.first.body.toString('utf8')).errors[0]!.code, 'SIZE_INVALID');
    assertReused(result);
  });
});
