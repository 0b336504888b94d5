// Single-segment repository names (`docker push host/alpine:3`) keep the name the client used and
// belong to the project `library`, as on Docker Hub: permissions, quota, listings, catalog and audit
// all agree; `library/x` and a project literally named after an image keep working.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { digestOf, expectError, jwtPayload, pushBlob, pushImage, randomBlob, MEDIA } from '../support/oci.ts';
import { adminBasic, api, basic, expectStatus, type ListPage } from '../support/api.ts';

const PASSWORD = 'library-test-password';

interface Project {
  name: string;
  public: boolean;
  quotaBytes: number | null;
  usageBytes: number;
  repositoryCount: number;
  createdBy: string | null;
}

describe('single-segment names belong to the project "library"', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const dev = basic('libdev', PASSWORD);
  const outsider = basic('outsider', PASSWORD);

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const username of ['libdev', 'outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
  });
  after(() => server.close());

  async function tokenActions(auth: string, scope: string): Promise<string[]> {
    const res = await fetch(`${url}/service/token?service=berth&scope=${encodeURIComponent(scope)}`, { headers: { Authorization: auth } });
    const token = (await expectStatus<{ token: string }>(res, 200)).token;
    return (jwtPayload(token).access as { actions: string[] }[])[0]?.actions ?? [];
  }

  test("an administrator's push of alpine:3 creates the private project library; the repository keeps its name", async () => {
    await expectError(await api(url, 'GET', '/projects/library', { auth: admin }), 404, 'NOT_FOUND');
    const img = await pushImage(url, 'alpine', '3');
    const library = await expectStatus<Project>(await api(url, 'GET', '/projects/library', { auth: admin }), 200);
    assert.equal(library.public, false);
    assert.equal(library.quotaBytes, null);
    assert.equal(library.repositoryCount, 1);
    assert.ok(library.usageBytes > 0, 'alpine is counted in library');
    await expectError(await api(url, 'GET', '/projects/alpine', { auth: admin }), 404, 'NOT_FOUND');

    const pulled = await fetch(`${url}/v2/alpine/manifests/3`, { headers: { Authorization: admin, Accept: MEDIA.ociManifest } });
    assert.equal(pulled.status, 200);
    assert.equal(Buffer.from(await pulled.arrayBuffer()).toString(), img.bytes.toString());

    const listed = await expectStatus<ListPage<{ name: string; project: string }>>(await api(url, 'GET', '/repositories?project=library', { auth: admin }), 200);
    assert.deepEqual(listed.items.map((r) => [r.name, r.project]), [['alpine', 'library']]);
    const everything = await expectStatus<ListPage<{ name: string; project: string }>>(await api(url, 'GET', '/repositories?q=alpine', { auth: admin }), 200);
    assert.deepEqual(everything.items.map((r) => r.project), ['library']);
    const artifacts = await expectStatus<ListPage<{ digest: string; tags: string[] }>>(await api(url, 'GET', '/repositories/alpine/artifacts', { auth: admin }), 200);
    assert.deepEqual(artifacts.items.map((a) => [a.digest, a.tags]), [[img.digest, ['3']]]);

    const events = await expectStatus<ListPage<{ resource: string; project: string | null }>>(await api(url, 'GET', '/audit?action=push&resource=alpine', { auth: admin }), 200);
    assert.ok(events.items.length > 0 && events.items.every((e) => e.project === 'library'), JSON.stringify(events.items));
  });

  test('push rights in library govern single-segment names: a developer pushes busybox, a non-member may not', async () => {
    await expectStatus(await api(url, 'POST', '/projects/library/members', { auth: admin, body: { username: 'libdev', role: 'developer' } }), 201);
    assert.deepEqual((await tokenActions(dev, 'repository:busybox:pull,push')).sort(), ['pull', 'push']);
    await pushImage(url, 'busybox', 'latest', { auth: dev });
    const busybox = await fetch(`${url}/v2/busybox/manifests/latest`, { method: 'HEAD', headers: { Authorization: dev, Accept: MEDIA.ociManifest } });
    assert.equal(busybox.status, 200);
    const listed = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/repositories?project=library', { auth: dev }), 200);
    assert.deepEqual(listed.items.map((r) => r.name), ['alpine', 'busybox']);
    await expectError(await api(url, 'GET', '/projects/busybox', { auth: admin }), 404, 'NOT_FOUND');

    // Not a member of library: nothing granted on alpine or a new single-segment name.
    assert.deepEqual(await tokenActions(outsider, 'repository:alpine:pull'), []);
    assert.deepEqual(await tokenActions(outsider, 'repository:newimage:pull,push'), []);
    const blob = randomBlob(64);
    const refused = await fetch(`${url}/v2/newimage/blobs/uploads/?digest=${encodeURIComponent(digestOf(blob))}`, { method: 'POST', headers: { Authorization: outsider }, body: blob });
    assert.ok(refused.status === 401 || refused.status === 403, `non-member push refused: ${refused.status}`);
    await refused.arrayBuffer();
    const pull = await fetch(`${url}/v2/alpine/manifests/3`, { headers: { Authorization: outsider } });
    assert.ok(pull.status === 401 || pull.status === 403, `non-member pull refused: ${pull.status}`);
    await pull.arrayBuffer();
    const hidden = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/repositories', { auth: outsider }), 200);
    assert.ok(!hidden.items.some((r) => r.name === 'alpine'));

    // The catalog shows alpine to library's member, not to the outsider.
    const catalog = async (auth: string) => {
      const res = await fetch(`${url}/v2/_catalog`, { headers: { Authorization: auth } });
      return ((await expectStatus<{ repositories: string[] }>(res, 200)).repositories);
    };
    assert.ok((await catalog(dev)).includes('alpine'));
    assert.ok(!(await catalog(outsider)).includes('alpine'));
  });

  test('a project named after an image does not capture it: alpine stays in library', async () => {
    // Project "nginx" exists, with outsider as its project admin; the repository "nginx" is library's.
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'nginx' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/nginx/members', { auth: admin, body: { username: 'outsider', role: 'projectAdmin' } }), 201);
    await pushImage(url, 'nginx', '1');
    assert.deepEqual(await tokenActions(outsider, 'repository:nginx:pull,push'), []);
    assert.deepEqual((await tokenActions(outsider, 'repository:nginx/web:pull,push')).sort(), ['pull', 'push']);
    const nginx = await expectStatus<Project>(await api(url, 'GET', '/projects/nginx', { auth: admin }), 200);
    assert.equal(nginx.repositoryCount, 0);
    assert.equal(nginx.usageBytes, 0);
  });

  test("library's quota applies to single-segment names; library/x is library's too", async () => {
    await pushImage(url, 'library/x', 'v1');
    const listed = await expectStatus<ListPage<{ name: string; project: string }>>(await api(url, 'GET', '/repositories?project=library', { auth: admin }), 200);
    assert.deepEqual(listed.items.map((r) => r.name), ['alpine', 'busybox', 'library/x', 'nginx']);
    const pull = await fetch(`${url}/v2/library/x/manifests/v1`, { headers: { Authorization: admin, Accept: MEDIA.ociManifest } });
    assert.equal(pull.status, 200);
    await pull.arrayBuffer();

    const used = (await expectStatus<Project>(await api(url, 'GET', '/projects/library', { auth: admin }), 200)).usageBytes;
    await expectStatus(await api(url, 'PATCH', '/projects/library', { auth: admin, body: { quotaBytes: used + 100 } }), 200);
    const big = randomBlob(500);
    const res = await fetch(`${url}/v2/alpine/blobs/uploads/?digest=${encodeURIComponent(digestOf(big))}`, { method: 'POST', headers: { Authorization: admin }, body: big });
    const refused = await expectError(res, 403, 'DENIED');
    assert.match(refused.errors[0]!.message, /quota exceeded: project "library" uses \d+ of \d+ bytes/);
    await pushBlob(url, 'alpine', randomBlob(50));

    // Deleting library refuses while it holds repositories.
    await expectError(await api(url, 'DELETE', '/projects/library', { auth: admin }), 409, 'CONFLICT');
  });
});
