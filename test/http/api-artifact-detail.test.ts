// The management API for the portal's artifact pages: an artifact's detail (parsed manifest, image
// config summary, referrers) from real pushes over /v2, hostile config blobs, and the server-side
// sorting and filtering of the artifact, repository and project lists.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { artifactManifest, descriptorOf, digestOf, expectError, indexManifest, imageManifest, manifestBytes, pushBlob, pushImage, pushManifest, randomBlob, MEDIA } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';

const PASSWORD = 'artifact-detail-test-password';

interface Artifact {
  digest: string;
  tags: string[];
  tagCount: number;
  platforms: { os: string; architecture: string; variant?: string }[];
  pushedAt: string;
}
interface Detail extends Artifact {
  manifest: {
    config: { mediaType: string; digest: string; size: number } | null;
    layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
    manifests: { digest: string; mediaType: string; size: number; platform: { os: string; architecture: string; variant?: string } | null; artifactType?: string }[];
    annotations: Record<string, string>;
    subject: string | null;
  } | null;
  config: Record<string, unknown> | null;
  referrers: { digest: string; mediaType: string; artifactType: string | null; size: number; annotations: Record<string, string>; pushedAt: string }[];
}

/** Pushes an OCI image whose config blob is `config` (bytes as given); its manifest's descriptor. */
async function pushWithConfig(url: string, name: string, tag: string, config: Buffer<ArrayBuffer>, configType: string = MEDIA.ociConfig): Promise<{ mediaType: string; digest: string; size: number }> {
  await pushBlob(url, name, config);
  const layer = randomBlob(300);
  await pushBlob(url, name, layer);
  const bytes = manifestBytes(imageManifest({ config: descriptorOf(configType, config), layers: [descriptorOf(MEDIA.ociLayer, layer, { annotations: { 'org.opencontainers.image.title': 'rootfs.tar.gz' } })] }));
  return { mediaType: MEDIA.ociManifest, digest: await pushManifest(url, name, tag, bytes, MEDIA.ociManifest), size: bytes.length };
}

describe('management API: artifact detail, sorted and filtered lists', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const dev = basic('dev', PASSWORD);
  const outsider = basic('outsider', PASSWORD);
  const detail = (name: string, ref: string, auth = dev) => api(url, 'GET', `/repositories/${name}/artifacts/${ref}`, { auth });

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const username of ['dev', 'outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'shop' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/shop/members', { auth: admin, body: { username: 'dev', role: 'developer' } }), 201);
  });
  after(() => server.close());

  test('an image: layers, config descriptor, annotations and the config summary; a referrer; permissions', async () => {
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'arm64',
        variant: 'v8',
        os: 'linux',
        created: '2026-01-02T03:04:05Z',
        author: 'ci',
        config: { Entrypoint: ['/app'], Cmd: ['--serve'], Env: ['PATH=/bin', 7], WorkingDir: '/srv', User: 'app', ExposedPorts: { '8080/tcp': {} }, Labels: { team: 'shop', bad: 1 } },
        history: [{ created: '2026-01-01T00:00:00Z', created_by: 'ADD rootfs /', comment: 'base' }, { created_by: 'ENV X=1', empty_layer: true }, 'junk'],
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    );
    const subject = await pushWithConfig(url, 'shop/web', 'v1', config);
    const digest = subject.digest;
    const body = await expectStatus<Detail>(await detail('shop/web', 'v1'), 200);
    assert.equal(body.digest, digest);
    assert.deepEqual(body.tags, ['v1']);
    assert.equal(body.tagCount, 1);
    assert.deepEqual(body.manifest!.config, { mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.length });
    assert.equal(body.manifest!.layers.length, 1);
    assert.deepEqual(body.manifest!.layers[0]!.annotations, { 'org.opencontainers.image.title': 'rootfs.tar.gz' });
    assert.equal(body.manifest!.subject, null);
    assert.deepEqual(body.config, {
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      created: '2026-01-02T03:04:05Z',
      author: 'ci',
      entrypoint: ['/app'],
      cmd: ['--serve'],
      env: ['PATH=/bin'],
      workingDir: '/srv',
      user: 'app',
      exposedPorts: ['8080/tcp'],
      labels: { team: 'shop' },
      history: [
        { created: '2026-01-01T00:00:00Z', createdBy: 'ADD rootfs /', emptyLayer: false, comment: 'base' },
        { created: null, createdBy: 'ENV X=1', emptyLayer: true, comment: null },
        { created: null, createdBy: null, emptyLayer: false, comment: null },
      ],
    });
    assert.deepEqual(body.referrers, []);

    // A signature referring to it: listed as the referrers API lists it.
    const sig = randomBlob(64);
    await pushBlob(url, 'shop/web', sig);
    await pushBlob(url, 'shop/web', Buffer.from('{}'));
    const sigBytes = manifestBytes(artifactManifest({ artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json', layers: [descriptorOf('application/octet-stream', sig)], subject, annotations: { signer: 'ci' } }));
    const sigDigest = await pushManifest(url, 'shop/web', digestOf(sigBytes), sigBytes, MEDIA.ociManifest);
    const withReferrer = await expectStatus<Detail>(await detail('shop/web', digest), 200);
    assert.equal(withReferrer.referrers.length, 1);
    const [referrer] = withReferrer.referrers;
    assert.equal(referrer!.digest, sigDigest);
    assert.equal(referrer!.artifactType, 'application/vnd.dev.cosign.simplesigning.v1+json');
    assert.equal(referrer!.size, sigBytes.length);
    assert.deepEqual(referrer!.annotations, { signer: 'ci' });
    assert.ok(!Number.isNaN(Date.parse(referrer!.pushedAt)));
    const oci = (await (await fetch(`${url}/v2/shop/web/referrers/${digest}`, { headers: { Authorization: admin } })).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(oci.manifests.map((m) => m.digest), [sigDigest]);
    const sigDetail = await expectStatus<Detail>(await detail('shop/web', sigDigest), 200);
    assert.equal(sigDetail.manifest!.subject, digest);
    assert.equal(sigDetail.config, null, 'an artifact config (the empty descriptor) is not an image config');

    // Private project: an outsider sees nothing, as for every project resource; anonymous needs to sign in.
    await expectError(await detail('shop/web', 'v1', outsider), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/repositories/shop/web/artifacts', { auth: outsider }), 404, 'NOT_FOUND');
    assert.equal((await api(url, 'GET', '/repositories/shop/web/artifacts/v1')).status, 401);
  });

  test('an index: its entries with platforms, no config', async () => {
    const amd64 = await pushImage(url, 'shop/multi', undefined);
    const arm = await pushImage(url, 'shop/multi', undefined);
    const index = manifestBytes(
      indexManifest({
        manifests: [
          { ...amd64.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm.descriptor, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } as { os: string; architecture: string } },
        ],
        annotations: { 'org.opencontainers.image.source': 'https://example.test/shop' },
      }),
    );
    await pushManifest(url, 'shop/multi', 'latest', index, MEDIA.ociIndex);
    const body = await expectStatus<Detail>(await detail('shop/multi', 'latest'), 200);
    assert.deepEqual(body.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm', variant: 'v7' }]);
    assert.equal(body.manifest!.config, null);
    assert.deepEqual(body.manifest!.layers, []);
    assert.deepEqual(body.manifest!.annotations, { 'org.opencontainers.image.source': 'https://example.test/shop' });
    assert.deepEqual(
      body.manifest!.manifests.map((m) => [m.digest, m.mediaType, m.size, m.platform]),
      [
        [amd64.digest, MEDIA.ociManifest, amd64.bytes.length, { os: 'linux', architecture: 'amd64' }],
        [arm.digest, MEDIA.ociManifest, arm.bytes.length, { os: 'linux', architecture: 'arm', variant: 'v7' }],
      ],
    );
    assert.equal(body.config, null);
  });

  test('hostile config blobs give config null, never a 500', async () => {
    const cases: [string, Buffer<ArrayBuffer>, string?][] = [
      ['garbage', randomBlob(200)],
      ['not-json', Buffer.from('{"os": "linux", ')],
      ['array', Buffer.from('[1,2,3]')],
      ['docker-garbage', Buffer.from('\u0000\u0001'), MEDIA.dockerConfig],
      ['huge', Buffer.concat([Buffer.from('{"os":"linux","pad":"'), Buffer.alloc((4 << 20) + 10, 0x61), Buffer.from('"}')])],
    ];
    for (const [tag, bytes, type] of cases) {
      await pushWithConfig(url, 'shop/hostile', tag, bytes, type);
      const body = await expectStatus<Detail>(await detail('shop/hostile', tag), 200, tag);
      assert.equal(body.config, null, tag);
      assert.equal(body.manifest!.config!.size, bytes.length, tag);
    }
    // Wrong types and long lists: dropped or capped.
    const history = Array.from({ length: 1500 }, (_, i) => ({ created_by: i === 0 ? 'x'.repeat(5000) : 'RUN step', empty_layer: 'yes' }));
    await pushWithConfig(url, 'shop/hostile', 'types', Buffer.from(JSON.stringify({ os: 5, architecture: ['x'], config: 'nope', history })));
    const typed = await expectStatus<Detail>(await detail('shop/hostile', 'types'), 200);
    const summary = typed.config as { os: null; architecture: null; env: string[]; labels: object; history: { createdBy: string; emptyLayer: boolean }[] };
    assert.equal(summary.os, null);
    assert.equal(summary.architecture, null);
    assert.deepEqual(summary.env, []);
    assert.deepEqual(summary.labels, {});
    assert.equal(summary.history.length, 1000);
    assert.equal(summary.history[0]!.createdBy.length, 4096);
    assert.equal(summary.history[0]!.emptyLayer, false);
  });

  test('artifact list: sort, filter, capped tags; bad input is a 400 naming the field', async () => {
    const name = 'shop/ci';
    const a = await pushImage(url, name, 'build-3');
    const b = await pushImage(url, name, 'build-1');
    const c = await pushImage(url, name, 'Release-2');
    const untagged = await pushImage(url, name, undefined);
    for (let i = 0; i < 24; i++) await pushManifest(url, name, `alias-${String(i).padStart(2, '0')}`, b.bytes, b.mediaType);
    const list = async (query: string) => (await expectStatus<ListPage<Artifact>>(await api(url, 'GET', `/repositories/${name}/artifacts?${query}`, { auth: dev }), 200, query));
    const digests = async (query: string) => (await list(query)).items.map((i) => i.digest);

    assert.deepEqual(await digests(''), [untagged.digest, c.digest, b.digest, a.digest], 'newest first by default');
    assert.deepEqual(await digests('sort=pushedAt'), [a.digest, b.digest, c.digest, untagged.digest]);
    // By first tag (b's is alias-00; "Release-2" sorts before lower case in byte order), untagged last both ways.
    assert.deepEqual(await digests('sort=tag'), [c.digest, b.digest, a.digest, untagged.digest]);
    assert.deepEqual(await digests('sort=-tag'), [a.digest, b.digest, c.digest, untagged.digest]);
    assert.deepEqual(await digests('sort=tag&pageSize=2&page=2'), [a.digest, untagged.digest], 'a page across the untagged boundary');
    assert.deepEqual(await digests('sort=-tag&pageSize=3&page=2'), [untagged.digest], 'a page of untagged artifacts only');
    assert.deepEqual(await digests('sort=tag&pageSize=3&page=3'), []);
    assert.deepEqual((await digests('sort=-lastPulledAt')).length, 4);

    const filtered = await list('q=BUILD');
    assert.deepEqual(filtered.items.map((i) => i.digest).sort(), [a.digest, b.digest].sort(), 'tag substring, ASCII case ignored');
    assert.equal(filtered.total, 2);
    assert.deepEqual(await digests(`q=${untagged.digest.slice(7, 19)}`), [untagged.digest], 'digest prefix without the algorithm');
    assert.deepEqual(await digests(`q=${encodeURIComponent(untagged.digest.slice(0, 19))}`), [untagged.digest], 'digest prefix with it');
    assert.deepEqual((await digests('q=bu%25il_d')).sort(), [a.digest, b.digest].sort(), 'LIKE wildcards in q are dropped, not wildcards');
    const paged = await list('sort=pushedAt&pageSize=2&page=2');
    assert.deepEqual(paged.items.map((i) => i.digest), [c.digest, untagged.digest]);
    assert.equal(paged.total, 4);

    const many = (await list('q=alias')).items[0]!;
    assert.equal(many.tagCount, 25);
    assert.equal(many.tags.length, 20);
    assert.deepEqual(many.tags.slice(0, 2), ['alias-00', 'alias-01']);
    assert.equal((await expectStatus<Detail>(await detail(name, b.digest), 200)).tags.length, 25);

    assert.deepEqual(await digests('q=build&sort=-tag'), [a.digest, b.digest], 'filtered, by first tag descending');
    // The kept tag order follows changes: a new tag, a deleted artifact.
    await pushManifest(url, name, 'AAA', untagged.bytes, untagged.mediaType);
    assert.deepEqual(await digests('sort=tag'), [untagged.digest, c.digest, b.digest, a.digest]);
    await expectStatus(await api(url, 'DELETE', `/repositories/${name}/artifacts/${c.digest}`, { auth: admin }), 204);
    assert.deepEqual(await digests('sort=tag'), [untagged.digest, b.digest, a.digest]);

    await expectInvalid(await api(url, 'GET', `/repositories/${name}/artifacts?sort=size;drop`, { auth: dev }), 'sort');
    await expectInvalid(await api(url, 'GET', `/repositories/${name}/artifacts?q=${'a'.repeat(5000)}`, { auth: dev }), 'q');
  });

  test('repository and project lists sort on the server', async () => {
    for (const repo of ['shop/alpha', 'shop/zulu']) await pushImage(url, repo, 'v1');
    const names = async (query: string) =>
      (await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', `/repositories?project=shop&${query}`, { auth: dev }), 200)).items.map((r) => r.name);
    const ascending = await names('sort=name');
    assert.deepEqual(ascending, [...ascending].sort());
    assert.deepEqual(await names('sort=-name'), [...ascending].reverse());
    assert.equal((await names('sort=-createdAt'))[0], 'shop/zulu');
    await expectInvalid(await api(url, 'GET', '/repositories?project=shop&sort=artifactCount', { auth: dev }), 'sort');

    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'aaa-empty' } }), 201);
    const projects = async (query: string) => (await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', `/projects?${query}`, { auth: admin }), 200)).items.map((p) => p.name);
    const byName = await projects('sort=name');
    assert.deepEqual(byName, [...byName].sort());
    assert.equal(byName[0], 'aaa-empty');
    assert.equal((await projects('sort=-usage'))[0], 'shop');
    assert.equal((await projects('sort=-createdAt'))[0], 'aaa-empty');
    assert.deepEqual(await projects('sort=-name'), [...byName].reverse());
    await expectInvalid(await api(url, 'GET', '/projects?sort=bogus', { auth: admin }), 'sort');
  });
});
