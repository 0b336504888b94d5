// Tags list and catalog (with pagination), repository names (multi-segment, invalid, traversal
// attempts), routing errors (404, 405), the error envelope, API version header, ops endpoints.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import {
  assertEnvelope,
  descriptorOf,
  digestOf,
  expectError,
  manifestBytes,
  artifactManifest,
  pushBlob,
  pushBlobChunked,
  pushImage,
  pushManifest,
  randomBlob,
  rawRequest,
  uniqueName,
  EMPTY_JSON,
  MEDIA,
} from '../support/oci.ts';

const AUTH = { Authorization: adminBasic() };

/** Parses `Link: <url>; rel="next"`, asserting that exact form. */
function nextLink(res: Response): string | undefined {
  const link = res.headers.get('link');
  if (link === null) return undefined;
  const m = /^<([^>]+)>; rel="next"$/.exec(link);
  assert.ok(m, `Link header has the form <url>; rel="next": ${link}`);
  return m[1];
}

describe('listings, names and routing', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  async function tagsPage(path: string): Promise<{ res: Response; body: { name: string; tags: string[] } }> {
    const res = await fetch(`${url}${path}`, { headers: AUTH });
    assert.equal(res.status, 200, path);
    return { res, body: (await res.json()) as { name: string; tags: string[] } };
  }

  /** Pushes one image and tags it with every tag in `tags`. */
  async function pushTags(name: string, tags: string[]): Promise<void> {
    const img = await pushImage(url, name, tags[0]);
    for (const tag of tags.slice(1)) await pushManifest(url, name, tag, img.bytes, img.mediaType);
  }

  test('tags list: every tag, sorted lexically', async () => {
    const name = uniqueName('tags-sorted');
    const tags = ['latest', 'b', 'a', '9', '10', 'A', 'Z_z', 'v1.0.0', 'v1.0.0-rc1', 'v1.10', 'v1.2'];
    await pushTags(name, tags);
    const { res, body } = await tagsPage(`/v2/${name}/tags/list`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.headers.get('link'), null);
    assert.equal(body.name, name);
    assert.deepEqual(body.tags, [...tags].sort());
  });

  test('tags list pagination: n and last, Link on every page but the last', async () => {
    const name = uniqueName('tags-pages');
    const tags = ['t1', 't2', 't3', 't4', 't5'];
    await pushTags(name, [...tags].reverse());
    const first = await tagsPage(`/v2/${name}/tags/list?n=2`);
    assert.deepEqual(first.body.tags, ['t1', 't2']);
    assert.equal(first.res.headers.get('link'), `</v2/${name}/tags/list?n=2&last=t2>; rel="next"`);

    const seen: string[] = [];
    let path: string | undefined = `/v2/${name}/tags/list?n=2`;
    let pages = 0;
    while (path) {
      const page = await tagsPage(path);
      assert.ok(page.body.tags.length <= 2);
      seen.push(...page.body.tags);
      path = nextLink(page.res);
      pages++;
      assert.ok(pages <= 5, 'pagination terminates');
    }
    assert.deepEqual(seen, tags);
    assert.equal(pages, 3);

    // A page size that divides the count: the last full page has no Link.
    const even = await tagsPage(`/v2/${name}/tags/list?n=5`);
    assert.deepEqual(even.body.tags, tags);
    assert.equal(even.res.headers.get('link'), null);
    const afterT4 = await tagsPage(`/v2/${name}/tags/list?n=1&last=t4`);
    assert.deepEqual(afterT4.body.tags, ['t5']);
    assert.equal(afterT4.res.headers.get('link'), null);
  });

  test('tags list: last without n, last beyond the end, n larger than the count', async () => {
    const name = uniqueName('tags-last');
    await pushTags(name, ['a', 'b', 'c']);
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list?last=a`)).body.tags, ['b', 'c']);
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list?last=bb`)).body.tags, ['c']);
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list?last=z`)).body.tags, []);
    const big = await tagsPage(`/v2/${name}/tags/list?n=1000000`);
    assert.deepEqual(big.body.tags, ['a', 'b', 'c']);
    assert.equal(big.res.headers.get('link'), null);
  });

  test('tags list: n=0 gives an empty list and no Link', async () => {
    const name = uniqueName('tags-zero');
    await pushTags(name, ['a', 'b']);
    const { res, body } = await tagsPage(`/v2/${name}/tags/list?n=0`);
    assert.deepEqual(body, { name, tags: [] });
    assert.equal(res.headers.get('link'), null);
  });

  test('tags list: a malformed n is 400 PAGINATION_NUMBER_INVALID', async () => {
    const name = uniqueName('tags-bad-n');
    await pushTags(name, ['a']);
    for (const n of ['abc', '-1', '1.5', '', '1e3', '0x10']) {
      const env = await expectError(await fetch(`${url}/v2/${name}/tags/list?n=${encodeURIComponent(n)}`, { headers: AUTH }), 400, 'PAGINATION_NUMBER_INVALID');
      // The parameter is named with the shape it needs; what was sent is not echoed.
      assert.deepEqual(env.errors[0]!.detail, { field: 'n', expected: 'a whole number of at most 9 digits' }, n);
    }
  });

  test('tags of an unknown repository: 404 NAME_UNKNOWN; a repository whose tags were all deleted lists none', async () => {
    await expectError(await fetch(`${url}/v2/${uniqueName('nope')}/tags/list`, { headers: AUTH }), 404, 'NAME_UNKNOWN');
    const name = uniqueName('untagged');
    const img = await pushImage(url, name, 'only');
    const del = await fetch(`${url}/v2/${name}/manifests/only`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list`)).body.tags, []);
    assert.equal((await fetch(`${url}/v2/${name}/manifests/${img.digest}`, { method: 'HEAD', headers: AUTH })).status, 200);
  });

  test('catalog: sorted, paginated with Link, every repository exactly once', async () => {
    const prefix = uniqueName('cat');
    const names = [`${prefix}/zeta`, `${prefix}/alpha`, `${prefix}/mid/deep`, `${prefix}-x`, `${prefix}/beta`];
    for (const n of names) await pushImage(url, n, 'v1');
    const full = await fetch(`${url}/v2/_catalog`, { headers: AUTH });
    assert.equal(full.status, 200);
    assert.match(full.headers.get('content-type') ?? '', /^application\/json/);
    const all = ((await full.json()) as { repositories: string[] }).repositories;
    assert.deepEqual(all, [...all].sort(), 'sorted');
    assert.equal(new Set(all).size, all.length, 'no duplicates');
    for (const n of names) assert.ok(all.includes(n), `${n} listed`);

    const seen: string[] = [];
    let path: string | undefined = '/v2/_catalog?n=2';
    let pages = 0;
    while (path) {
      const res: Response = await fetch(`${url}${path}`, { headers: AUTH });
      assert.equal(res.status, 200);
      const page = ((await res.json()) as { repositories: string[] }).repositories;
      assert.ok(page.length <= 2 && page.length > 0, `page ${pages}: ${page}`);
      const link = nextLink(res);
      if (link) {
        const next = new URL(link, url);
        assert.equal(next.pathname, '/v2/_catalog');
        assert.equal(next.searchParams.get('n'), '2');
        assert.equal(next.searchParams.get('last'), page[page.length - 1]);
      }
      seen.push(...page);
      path = link;
      pages++;
      assert.ok(pages <= all.length + 1, 'pagination terminates');
    }
    assert.deepEqual(seen, all);

    const zero = await fetch(`${url}/v2/_catalog?n=0`, { headers: AUTH });
    assert.deepEqual(await zero.json(), { repositories: [] });
    assert.equal(zero.headers.get('link'), null);
    const afterLast = await fetch(`${url}/v2/_catalog?last=${encodeURIComponent(all[all.length - 1]!)}`, { headers: AUTH });
    assert.deepEqual(await afterLast.json(), { repositories: [] });
    await expectError(await fetch(`${url}/v2/_catalog?n=abc`, { headers: AUTH }), 400, 'PAGINATION_NUMBER_INVALID');
  });

  test('multi-segment names work for every endpoint', async () => {
    const name = `${uniqueName('a')}/b/c/d`;
    const blob = randomBlob(100);
    const digest = await pushBlob(url, name, blob);
    await pushBlobChunked(url, name, randomBlob(100), 40);
    const img = await pushImage(url, name, 'v1');
    await pushBlob(url, name, EMPTY_JSON);
    const ref = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.x', layers: [descriptorOf('application/octet-stream', blob)], subject: img.descriptor }));
    await pushManifest(url, name, digestOf(ref), ref, MEDIA.ociManifest);

    const get = await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: AUTH });
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
    const man = await fetch(`${url}/v2/${name}/manifests/v1`, { headers: AUTH });
    assert.equal(man.status, 200);
    assert.ok(Buffer.from(await man.arrayBuffer()).equals(img.bytes));
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list`)).body, { name, tags: ['v1'] });
    const refs = await fetch(`${url}/v2/${name}/referrers/${img.digest}`, { headers: AUTH });
    assert.deepEqual(((await refs.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest), [digestOf(ref)]);
    const catalog = ((await (await fetch(`${url}/v2/_catalog`, { headers: AUTH })).json()) as { repositories: string[] }).repositories;
    assert.ok(catalog.includes(name));
    // A parent path is a different (unknown) repository.
    await expectError(await fetch(`${url}/v2/${name.split('/').slice(0, 2).join('/')}/tags/list`, { headers: AUTH }), 404, 'NAME_UNKNOWN');
    const del = await fetch(`${url}/v2/${name}/manifests/v1`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    const delBlob = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'DELETE', headers: AUTH });
    assert.equal(delBlob.status, 202);
  });

  test('names with path-like words (manifests, blobs, tags, uploads) are fine', async () => {
    const name = `${uniqueName('x')}/manifests/blobs/tags/list/uploads`;
    const img = await pushImage(url, name, 'v1');
    assert.deepEqual((await tagsPage(`/v2/${name}/tags/list`)).body, { name, tags: ['v1'] });
    const blob = await fetch(`${url}/v2/${name}/blobs/${img.layers[0]!.digest}`, { headers: AUTH });
    assert.equal(blob.status, 200);
    await blob.arrayBuffer();
  });

  test('a 255-character name is valid; 256 characters is NAME_INVALID', async () => {
    const segment = 'a'.repeat(50);
    const longest = [segment, segment, segment, segment].join('/') + '/' + 'b'.repeat(51);
    assert.equal(longest.length, 255);
    await pushBlob(url, longest, randomBlob(10));
    const tooLong = longest + 'f';
    const res = await fetch(`${url}/v2/${tooLong}/blobs/uploads/`, { method: 'POST', headers: AUTH });
    await expectError(res, 400, 'NAME_INVALID');
  });

  test('invalid names: 400 NAME_INVALID on every endpoint, never 200 or 500', async () => {
    const digest = digestOf(Buffer.from('x'));
    const names = [
      'UPPER/case',
      'Upper',
      'a//b',
      '-a',
      'a-',
      '_a',
      '.a',
      'a/',
      '/a',
      'a.-b',
      'a___b',
      'a%20b',
      'a%2Fb',
      'a'.repeat(256),
      '../../etc/passwd',
      'a/../b',
      'a/./b',
      '..',
      '%2e%2e/%2e%2e/etc',
      'a/%2e%2e/b',
      '%2E%2E',
      '..%2f..%2fkeys',
      'a%00b',
      'caf%C3%A9',
    ];
    for (const name of names) {
      const endpoints: { method: string; path: string }[] = [
        { method: 'GET', path: `/v2/${name}/tags/list` },
        { method: 'GET', path: `/v2/${name}/manifests/latest` },
        { method: 'HEAD', path: `/v2/${name}/manifests/latest` },
        { method: 'PUT', path: `/v2/${name}/manifests/latest` },
        { method: 'DELETE', path: `/v2/${name}/manifests/latest` },
        { method: 'GET', path: `/v2/${name}/blobs/${digest}` },
        { method: 'DELETE', path: `/v2/${name}/blobs/${digest}` },
        { method: 'POST', path: `/v2/${name}/blobs/uploads/` },
        { method: 'POST', path: `/v2/${name}/blobs/uploads/?digest=${digest}` },
        { method: 'PATCH', path: `/v2/${name}/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAAAA` },
        { method: 'GET', path: `/v2/${name}/referrers/${digest}` },
      ];
      for (const e of endpoints) {
        const body = e.method === 'PUT' || e.method === 'PATCH' || e.method === 'POST' ? Buffer.from('x') : undefined;
        const res = await rawRequest(url, { method: e.method, path: e.path, headers: AUTH, ...(body ? { body } : {}) });
        const what = `${e.method} ${e.path.slice(0, 120)}`;
        assert.notEqual(res.status, 200, what);
        assert.ok(res.status < 500, `${what}: ${res.status} ${res.text}`);
        assert.equal(res.status, 400, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
        if (e.method !== 'HEAD') assert.equal(assertEnvelope(res.text).errors[0]!.code, 'NAME_INVALID', what);
      }
    }
  });

  test('a mount source with an invalid name: 400 NAME_INVALID', async () => {
    const name = uniqueName('mount-bad-from');
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/?mount=${digestOf(Buffer.from('x'))}&from=${encodeURIComponent('../etc')}`, { method: 'POST', headers: AUTH });
    await expectError(res, 400, 'NAME_INVALID');
  });

  test('paths that cannot be routed: 404 NOT_FOUND, never 200 or 500', async () => {
    const paths = ['/v2/../../etc/passwd', '/v2/%2e%2e/%2e%2e/etc/passwd', '/../../etc/passwd', '/v2/..', '/v2/x/manifests/', '/v2/x/blobs/', '/v2/x', '/v2//', '/v2/_catalog/x', '/v3/', '/nope', '/projectsx', '/v2/x/unknown', '/service/nothing', '/healthz/x'];
    for (const path of paths) {
      const res = await rawRequest(url, { path, headers: AUTH });
      assert.equal(res.status, 404, `${path}: ${res.status} ${res.text.slice(0, 200)}`);
      assert.match(String(res.headers['content-type']), /^application\/json/, path);
      assert.equal(assertEnvelope(res.text).errors[0]!.code, 'NOT_FOUND', path);
    }
  });

  test('unknown /v2 endpoints: 404 with the OCI error envelope and the API version header', async () => {
    for (const path of ['/v2/foo/bar', '/v2/x/tags', '/v2/x/tags/list/more', '/nope']) {
      const res = await fetch(`${url}${path}`, { headers: AUTH });
      if (path.startsWith('/v2')) assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0', path);
      await expectError(res, 404, 'NOT_FOUND');
    }
  });

  test('wrong method: 405 UNSUPPORTED with an Allow header', async () => {
    const digest = digestOf(Buffer.from('x'));
    const cases: { method: string; path: string; allow: string[] }[] = [
      { method: 'POST', path: '/v2/x/manifests/y', allow: ['GET', 'HEAD', 'PUT', 'DELETE'] },
      { method: 'PATCH', path: '/v2/x/manifests/y', allow: ['GET', 'HEAD', 'PUT', 'DELETE'] },
      { method: 'PUT', path: '/v2/x/tags/list', allow: ['GET'] },
      { method: 'DELETE', path: '/v2/', allow: ['GET', 'HEAD'] },
      { method: 'POST', path: '/v2/_catalog', allow: ['GET'] },
      { method: 'PUT', path: `/v2/x/blobs/${digest}`, allow: ['GET', 'HEAD', 'DELETE'] },
      { method: 'GET', path: '/v2/x/blobs/uploads/', allow: ['POST'] },
      { method: 'POST', path: '/v2/x/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAAAA', allow: ['GET', 'PATCH', 'PUT', 'DELETE'] },
      { method: 'DELETE', path: `/v2/x/referrers/${digest}`, allow: ['GET'] },
      { method: 'PUT', path: '/service/token', allow: ['GET', 'POST'] },
      { method: 'POST', path: '/healthz', allow: ['GET', 'HEAD'] },
      { method: 'OPTIONS', path: '/v2/', allow: ['GET', 'HEAD'] },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}${c.path}`, { method: c.method, headers: AUTH, body: c.method === 'GET' || c.method === 'OPTIONS' || c.method === 'DELETE' ? undefined : 'x' });
      const allow = (res.headers.get('allow') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      assert.deepEqual([...allow].sort(), [...c.allow].sort(), `${c.method} ${c.path}: Allow`);
      await expectError(res, 405, 'UNSUPPORTED');
    }
  });

  test('every error response is an OCI error envelope with Content-Type application/json', async () => {
    const name = uniqueName('envelopes');
    const img = await pushImage(url, name, 'v1');
    const cases: { init: RequestInit & { headers?: Record<string, string> }; path: string; status: number; anonymous?: boolean }[] = [
      { path: '/v2/', init: {}, status: 401, anonymous: true },
      { path: `/v2/${name}/tags/list`, init: { headers: { Authorization: 'Bearer junk' } }, status: 401 },
      { path: `/v2/${name}/manifests/nope`, init: {}, status: 404 },
      { path: `/v2/${name}/manifests/-x`, init: {}, status: 404 },
      { path: `/v2/${name}/manifests/v1`, init: { method: 'PUT', body: '{', headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400 },
      { path: `/v2/${name}/blobs/${digestOf(Buffer.from('nope'))}`, init: {}, status: 404 },
      { path: `/v2/${name}/blobs/sha256:zz`, init: {}, status: 400 },
      { path: `/v2/${name}/blobs/${img.layers[0]!.digest}`, init: { headers: { Range: 'bytes=9999-' } }, status: 416 },
      { path: `/v2/${name}/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAAAA`, init: {}, status: 404 },
      { path: `/v2/${name}/tags/list?n=x`, init: {}, status: 400 },
      { path: `/v2/NOPE/tags/list`, init: {}, status: 400 },
      { path: `/v2/${uniqueName('gone')}/tags/list`, init: {}, status: 404 },
      { path: '/v2/x/manifests/y', init: { method: 'POST' }, status: 405 },
      { path: '/v2/nothing/here', init: {}, status: 404 },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}${c.path}`, { ...c.init, headers: { ...(c.anonymous ? {} : AUTH), ...c.init.headers } });
      assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0', c.path);
      const env = await expectError(res, c.status);
      assert.ok(env.errors[0]!.message.length > 0, `${c.path}: message is not empty`);
    }
  });

  test('Docker-Distribution-API-Version is on successful /v2 responses of every kind', async () => {
    const name = uniqueName('api-version');
    const blob = randomBlob(10);
    const checks: Response[] = [];
    checks.push(await fetch(`${url}/v2/`, { headers: AUTH }));
    checks.push(await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: AUTH }));
    checks.push(await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', headers: AUTH, body: blob }));
    checks.push(await fetch(`${url}/v2/${name}/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: AUTH }));
    const img = await pushImage(url, name, 'v1');
    checks.push(await fetch(`${url}/v2/${name}/manifests/v1`, { headers: AUTH }));
    checks.push(await fetch(`${url}/v2/${name}/tags/list`, { headers: AUTH }));
    checks.push(await fetch(`${url}/v2/_catalog`, { headers: AUTH }));
    checks.push(await fetch(`${url}/v2/${name}/referrers/${img.digest}`, { headers: AUTH }));
    for (const res of checks) {
      assert.ok(res.status < 300, `${res.url}: ${res.status}`);
      assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0', res.url);
      await res.arrayBuffer();
    }
  });

  test('X-Request-Id: echoed when well-formed, generated otherwise', async () => {
    const echoed = await fetch(`${url}/v2/`, { headers: { ...AUTH, 'X-Request-Id': 'trace-abc.123' } });
    assert.equal(echoed.headers.get('x-request-id'), 'trace-abc.123');
    const generated = await fetch(`${url}/v2/`, { headers: { ...AUTH, 'X-Request-Id': 'bad id with spaces' } });
    const id = generated.headers.get('x-request-id') ?? '';
    assert.notEqual(id, 'bad id with spaces');
    assert.match(id, /^[\w.-]{1,64}$/);
  });

  test('/healthz and /readyz: 200 without credentials', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as { status: string };
      assert.ok(body.status === 'ok' || body.status === 'ready', `${path}: ${JSON.stringify(body)}`);
      const h = await fetch(`${url}${path}`, { method: 'HEAD' });
      assert.equal(h.status, 200, `HEAD ${path}`);
    }
  });

  test('/metrics exposes berth_http_requests_total, counting requests by route and status', async () => {
    const name = uniqueName('metrics');
    await fetch(`${url}/v2/${name}/tags/list`, { headers: AUTH }).then((r) => r.arrayBuffer());
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# TYPE berth_http_requests_total counter$/m);
    assert.match(text, /^berth_http_requests_total\{[^}]*route="tags"[^}]*status="404"[^}]*\} [1-9]\d*$/m);
    assert.match(text, /^berth_http_request_duration_seconds_bucket\{/m);
  });
});
