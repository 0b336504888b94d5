// Berth keeps manifest bytes in memory by digest and serves tags lists from a cached, serialised
// copy. These tests change tags and manifests every way there is (retag, delete by tag and by digest,
// the management API, a repository deleted and re-created, another process writing the database) and
// check that every GET, HEAD and tags list says what the database says at that moment.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverQuery } from '../support/backend.ts';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { api, expectStatus } from '../support/api.ts';
import { MEDIA, digestOf, expectError, indexManifest, manifestBytes, pushBlob, pushImage, pushManifest, randomBlob, uniqueName } from '../support/oci.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { openMetadata } from '../../src/metadata/index.ts';
import { QuotaService } from '../../src/registry/quota.ts';
import { ManifestService } from '../../src/registry/manifests.ts';

const AUTH = { Authorization: adminBasic() };

/** An OCI index referring to nothing: a valid manifest that needs no blobs, distinct per `label`. */
function emptyIndex(label: string): Buffer<ArrayBuffer> {
  return manifestBytes({ ...indexManifest({ manifests: [] }), annotations: { 'test.label': label } });
}

describe('manifest and tags-list caches', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(() => server.close());

  async function get(name: string, reference: string, method = 'GET'): Promise<{ status: number; digest: string | null; body: Buffer }> {
    const res = await fetch(`${url}/v2/${name}/manifests/${reference}`, { method, headers: AUTH });
    return { status: res.status, digest: res.headers.get('docker-content-digest'), body: Buffer.from(await res.arrayBuffer()) };
  }

  async function expectServed(name: string, reference: string, bytes: Buffer): Promise<void> {
    for (let i = 0; i < 2; i++) {
      const got = await get(name, reference);
      assert.equal(got.status, 200, `GET ${name}:${reference}`);
      assert.equal(got.digest, digestOf(bytes));
      assert.ok(got.body.equals(bytes), `GET ${name}:${reference} returns the exact bytes`);
    }
    const head = await get(name, reference, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.digest, digestOf(bytes));
  }

  async function expectUnknown(name: string, reference: string): Promise<void> {
    await expectError(await fetch(`${url}/v2/${name}/manifests/${reference}`, { headers: AUTH }), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await get(name, reference, 'HEAD')).status, 404);
  }

  async function tags(name: string, query = ''): Promise<{ tags: string[]; link: string | null }> {
    const res = await fetch(`${url}/v2/${name}/tags/list${query}`, { headers: AUTH });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(text)));
    const body = JSON.parse(text) as { name: string; tags: string[] };
    assert.equal(body.name, name);
    return { tags: body.tags, link: res.headers.get('link') };
  }

  test('retag: GET and HEAD by tag return the new manifest at once', async () => {
    const name = uniqueName('retag');
    const first = await pushImage(url, name, 'latest');
    await expectServed(name, 'latest', first.bytes);
    const second = await pushImage(url, name, 'latest');
    await expectServed(name, 'latest', second.bytes);
    await expectServed(name, first.digest, first.bytes);
    // And back: the tag moves to a manifest whose bytes are already cached.
    await pushManifest(url, name, 'latest', first.bytes, first.mediaType);
    await expectServed(name, 'latest', first.bytes);
  });

  test('delete by digest: the manifest and its tags are gone, however warm the cache was', async () => {
    const name = uniqueName('delete');
    const img = await pushImage(url, name, 'v1');
    await pushManifest(url, name, 'v1-alias', img.bytes, img.mediaType);
    const keep = await pushImage(url, name, 'keep');
    await expectServed(name, 'v1', img.bytes);
    await expectServed(name, img.digest, img.bytes);
    assert.deepEqual((await tags(name)).tags, ['keep', 'v1', 'v1-alias']);
    const res = await fetch(`${url}/v2/${name}/manifests/${img.digest}`, { method: 'DELETE', headers: AUTH });
    assert.equal(res.status, 202);
    await expectUnknown(name, img.digest);
    await expectUnknown(name, 'v1');
    await expectUnknown(name, 'v1-alias');
    assert.deepEqual((await tags(name)).tags, ['keep']);
    await expectServed(name, 'keep', keep.bytes);
    // Pushed again, it is served again.
    await pushManifest(url, name, 'v1', img.bytes, img.mediaType);
    await expectServed(name, 'v1', img.bytes);
  });

  test('the cache never serves a manifest through a repository that does not hold it', async () => {
    const a = uniqueName('owner');
    const b = uniqueName('other');
    const img = await pushImage(url, a, 'v1');
    await pushImage(url, b, 'v1');
    await expectServed(a, img.digest, img.bytes);
    await expectUnknown(b, img.digest);
    // The same bytes in both repositories, then deleted from one: the other still serves them.
    const shared = emptyIndex(uniqueName('shared'));
    await pushManifest(url, a, 'shared', shared, MEDIA.ociIndex);
    await pushManifest(url, b, 'shared', shared, MEDIA.ociIndex);
    await expectServed(a, 'shared', shared);
    await expectServed(b, digestOf(shared), shared);
    assert.equal((await fetch(`${url}/v2/${b}/manifests/${digestOf(shared)}`, { method: 'DELETE', headers: AUTH })).status, 202);
    await expectUnknown(b, digestOf(shared));
    await expectUnknown(b, 'shared');
    await expectServed(a, digestOf(shared), shared);
    await expectServed(a, 'shared', shared);
  });

  test('tags list: every change through /v2 shows at once, pages included', async () => {
    const name = uniqueName('tags');
    const m = emptyIndex(name);
    for (const tag of ['b', 'd', 'f']) await pushManifest(url, name, tag, m, MEDIA.ociIndex);
    assert.deepEqual((await tags(name)).tags, ['b', 'd', 'f']);
    assert.deepEqual((await tags(name)).tags, ['b', 'd', 'f'], 'from the cache');
    await pushManifest(url, name, 'a', m, MEDIA.ociIndex);
    assert.deepEqual((await tags(name)).tags, ['a', 'b', 'd', 'f'], 'a new tag');
    assert.equal((await fetch(`${url}/v2/${name}/manifests/d`, { method: 'DELETE', headers: AUTH })).status, 202);
    assert.deepEqual((await tags(name)).tags, ['a', 'b', 'f'], 'a tag deleted through /v2');
    // Pages of a cached list: n, last, Link.
    const first = await tags(name, '?n=2');
    assert.deepEqual(first.tags, ['a', 'b']);
    assert.equal(first.link, `</v2/${name}/tags/list?n=2&last=b>; rel="next"`);
    await pushManifest(url, name, 'c', m, MEDIA.ociIndex);
    const second = await tags(name, '?n=2&last=b');
    assert.deepEqual(second.tags, ['c', 'f'], 'the next page sees the tag pushed in between');
    assert.equal(second.link, null);
    assert.deepEqual((await tags(name, '?n=2')).tags, ['a', 'b']);
    assert.equal((await tags(name, '?n=2')).link, `</v2/${name}/tags/list?n=2&last=b>; rel="next"`);
    assert.deepEqual((await tags(name, '?n=0')).tags, []);
    assert.deepEqual((await tags(name, '?last=bb')).tags, ['c', 'f']);
    assert.deepEqual((await tags(name, '?last=f')).tags, []);
    assert.deepEqual((await tags(name, '?n=4')).tags, ['a', 'b', 'c', 'f']);
    assert.equal((await tags(name, '?n=4')).link, null);
    // Deleting the manifest removes every tag on it.
    assert.equal((await fetch(`${url}/v2/${name}/manifests/${digestOf(m)}`, { method: 'DELETE', headers: AUTH })).status, 202);
    assert.deepEqual((await tags(name)).tags, []);
  });

  test('tags list: changes through the management API show at once, a re-created repository starts empty', async () => {
    const name = uniqueName('api');
    const m = emptyIndex(name);
    for (const tag of ['one', 'two']) await pushManifest(url, name, tag, m, MEDIA.ociIndex);
    assert.deepEqual((await tags(name)).tags, ['one', 'two']);
    await expectStatus(await api(url, 'DELETE', `/repositories/${name}/tags/one`, { auth: adminBasic() }), 204);
    assert.deepEqual((await tags(name)).tags, ['two'], 'tag deleted through the API');
    await expectStatus(await api(url, 'DELETE', `/repositories/${name}/artifacts/${digestOf(m)}`, { auth: adminBasic() }), 204);
    assert.deepEqual((await tags(name)).tags, [], 'artifact deleted through the API');
    await pushManifest(url, name, 'three', m, MEDIA.ociIndex);
    assert.deepEqual((await tags(name)).tags, ['three']);
    // The newest repository: SQLite gives its id to the next repository created once it is deleted.
    await expectStatus(await api(url, 'DELETE', `/repositories/${name}`, { auth: adminBasic() }), 204);
    await pushBlob(url, name, randomBlob(100));
    assert.deepEqual((await tags(name)).tags, [], 'a repository re-created by a blob push has no tags');
    await expectUnknown(name, 'three');
  });

  test('tags list: a change made by another process shows within the 2 s the cache trusts itself', async (t) => {
    const name = uniqueName('elsewhere');
    const m = emptyIndex(name);
    for (const tag of ['x', 'y']) await pushManifest(url, name, tag, m, MEDIA.ociIndex);
    // The server runs in this process: its clock is the test's from here on.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    assert.deepEqual((await tags(name)).tags, ['x', 'y']);
    // Straight into the database, past Berth's store (which would raise the repository's tags version
    // and so be seen at once, see ListingService): only the cache's 2 s bound can catch this one.
    const deleted = await serverQuery(server.dataDir, 'DELETE FROM tags WHERE name = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?) RETURNING name', ['x', name]);
    assert.equal(deleted.length, 1);
    t.mock.timers.tick(1_990);
    assert.deepEqual((await tags(name)).tags, ['x', 'y'], 'trusted for 2 s');
    t.mock.timers.tick(20);
    assert.deepEqual((await tags(name)).tags, ['y'], 'then read again');
  });
});

test('manifest bytes stay exact through a small cache that keeps evicting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-manifest-cache-'));
  const store = new FilesystemBlobStore(join(dir, 'storage'));
  await store.init();
  const meta = await openMetadata(dir);
  try {
    const manifests = new ManifestService(store, meta, new QuotaService(meta), 2048);
    const pushed = Array.from({ length: 24 }, (_, i) => emptyIndex(`${i}-${'x'.repeat(i * 7)}`));
    for (const [i, bytes] of pushed.entries()) {
      const body = Buffer.from(bytes);
      await manifests.put('cache/evict', `t${i}`, body, MEDIA.ociIndex);
      body.fill(0); // what the caller does with its buffer afterwards cannot reach the cache
    }
    for (let round = 0; round < 3; round++) {
      for (const [i, bytes] of pushed.entries()) {
        for (const reference of [`t${i}`, digestOf(bytes)]) {
          const got = await manifests.get('cache/evict', reference, MEDIA.ociIndex);
          assert.equal(got.digest, digestOf(bytes));
          assert.ok(got.body.equals(bytes), `${reference}, round ${round}`);
        }
      }
    }
    await assert.rejects(manifests.get('cache/other', digestOf(pushed[0]!), MEDIA.ociIndex), /manifest unknown/);
  } finally {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
