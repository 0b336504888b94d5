// How Berth serves the web portal (src/http/portal/portal.ts): the page with no-cache and its
// security headers at every portal path, hashed assets cached for a year and compressed per
// Accept-Encoding, 404 for a missing asset, the registry/API/token/metrics paths keeping their own
// answers, 405 for a write, and hostile paths that never reach a file outside the portal folder.
// A small portal of known content is built into a temp folder (BERTH_PORTAL_DIR), with a file
// beside it that no request may read; the real build (dist/ui) is checked too when it exists.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { REPO_ROOT } from '../support/berth.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { PORTAL_SECTIONS } from '../../src/http/portal/portal.ts';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request sent exactly as written (fetch would normalise `..` and `%2e` away). */
function raw(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const SECRET = `outside-the-portal-${randomBytes(8).toString('hex')}`;
const INDEX = '<!doctype html><html lang="en"><head><title>Berth</title><script type="module" src="/assets/index-AbCd1234.js"></script></head><body><div id="root"></div></body></html>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(2000))});`;

/** A portal build of known content, with `.br`/`.gz` beside the text files as scripts/build.mjs leaves them. */
function fakePortal(root: string): string {
  const dir = join(root, 'ui');
  mkdirSync(join(dir, 'assets'), { recursive: true });
  const put = (name: string, content: string, compress = true) => {
    writeFileSync(join(dir, name), content);
    if (!compress) return;
    writeFileSync(join(dir, `${name}.br`), brotliCompressSync(content));
    writeFileSync(join(dir, `${name}.gz`), gzipSync(content));
  };
  put('index.html', INDEX);
  put('assets/index-AbCd1234.js', SCRIPT);
  put('assets/style-EfGh5678.css', 'body{margin:0}', false);
  put('favicon.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>');
  // What a path escaping the folder would reach.
  writeFileSync(join(root, 'secret.txt'), SECRET);
  writeFileSync(join(root, 'package.json'), SECRET);
  return dir;
}

function assertIndex(answer: Answer, what: string): void {
  assert.equal(answer.status, 200, `${what}: status`);
  assert.match(String(answer.headers['content-type']), /^text\/html/, `${what}: content type`);
  assert.equal(answer.headers['cache-control'], 'no-cache', `${what}: the page is revalidated every time`);
  assert.match(String(answer.headers['content-security-policy']), /script-src 'self'/, `${what}: CSP`);
  assert.match(String(answer.headers['content-security-policy']), /frame-ancestors 'none'/, `${what}: CSP forbids framing`);
  assert.equal(answer.headers['x-frame-options'], 'DENY', `${what}: X-Frame-Options`);
  assert.equal(answer.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
}

/** The body as sent, decoded per Content-Encoding. */
function decoded(answer: Answer): string {
  const encoding = answer.headers['content-encoding'];
  const body = encoding === 'br' ? brotliDecompressSync(answer.body) : encoding === 'gzip' ? gunzipSync(answer.body) : answer.body;
  return body.toString('utf8');
}

describe('the portal as Berth serves it', () => {
  let root: string;
  let server: TestServer;
  const saved = process.env.BERTH_PORTAL_DIR;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-portal-static-'));
    process.env.BERTH_PORTAL_DIR = fakePortal(root);
    server = await startTestServer();
  });

  after(async () => {
    if (saved === undefined) delete process.env.BERTH_PORTAL_DIR;
    else process.env.BERTH_PORTAL_DIR = saved;
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('/ and every portal path answer the page, never cached, with CSP and X-Frame-Options', async () => {
    for (const path of ['/', '/projects', '/projects/x', '/repositories/team/app/-/sha256:abc', '/login?return=%2Fprojects', '/admin/gc']) {
      const answer = await raw(server.url, path);
      assertIndex(answer, path);
      assert.equal(answer.body.toString('utf8'), INDEX, `${path}: the page itself`);
    }
  });

  test('hashed assets: cached for a year, compressed per Accept-Encoding, identity without one', async () => {
    const path = '/assets/index-AbCd1234.js';
    const cases: [string | undefined, string | undefined][] = [
      ['gzip, deflate, br', 'br'],
      ['br', 'br'],
      ['gzip', 'gzip'],
      ['gzip, br;q=0', 'gzip'],
      ['identity', undefined],
      [undefined, undefined],
    ];
    for (const [accept, expected] of cases) {
      const answer = await raw(server.url, path, { headers: accept === undefined ? {} : { 'Accept-Encoding': accept } });
      assert.equal(answer.status, 200, `Accept-Encoding ${accept}`);
      assert.equal(answer.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.match(String(answer.headers['content-type']), /^text\/javascript/);
      assert.equal(answer.headers['content-encoding'], expected, `Accept-Encoding ${accept}`);
      assert.match(String(answer.headers.vary), /Accept-Encoding/i);
      assert.equal(Number(answer.headers['content-length']), answer.body.length);
      assert.equal(decoded(answer), SCRIPT, `Accept-Encoding ${accept}: the script`);
    }
    // A file the build did not compress goes as it is whatever the client accepts.
    const css = await raw(server.url, '/assets/style-EfGh5678.css', { headers: { 'Accept-Encoding': 'br, gzip' } });
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-encoding'], undefined);
    assert.equal(css.body.toString('utf8'), 'body{margin:0}');
  });

  test('a missing asset is a 404, not the page', async () => {
    for (const path of ['/assets/index-Gone0000.js', '/assets/', '/assets/index-AbCd1234.js.br', '/assets/nested/x.js']) {
      const answer = await raw(server.url, path);
      assert.equal(answer.status, 404, path);
      assert.doesNotMatch(answer.body.toString('utf8'), /<html/i, `${path}: not the page`);
      assert.match(String(answer.headers['content-type']), /json/, `${path}: an error body`);
    }
  });

  test('the registry, the API, the token service and the operations endpoints keep their own answers', async () => {
    const v2 = await raw(server.url, '/v2/');
    assert.equal(v2.status, 401);
    assert.match(String(v2.headers['www-authenticate']), /^Bearer /);
    assert.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0');
    // Paths nobody owns (not a page of the portal either) are the registry's JSON 404 too.
    for (const path of ['/api/v1/unknown', '/api/unknown', '/v2/team/app/unknown', '/api/v1/', '/apix', '/nope', '/projectsx', '/missing.js']) {
      const answer = await raw(server.url, path);
      assert.equal(answer.status, 404, path);
      assert.match(String(answer.headers['content-type']), /application\/json/, `${path}: JSON`);
      assert.doesNotMatch(answer.body.toString('utf8'), /<html/i, `${path}: not the page`);
      assert.equal(answer.headers['content-security-policy'], undefined, `${path}: no page headers`);
    }
    // The token service answers itself (an anonymous token), never the page.
    const token = await raw(server.url, '/service/token?service=berth');
    assert.match(String(token.headers['content-type']), /application\/json/, '/service/token: JSON');
    assert.doesNotMatch(token.body.toString('utf8'), /<html/i);
    const unknownService = await raw(server.url, '/service/unknown');
    assert.equal(unknownService.status, 404, '/service/unknown');
    assert.match(String(unknownService.headers['content-type']), /application\/json/);
    const metrics = await raw(server.url, '/metrics');
    assert.ok(metrics.status === 200 || metrics.status === 401 || metrics.status === 403, `/metrics: ${metrics.status}`);
    assert.doesNotMatch(metrics.body.toString('utf8'), /<html/i);
    for (const path of ['/healthz', '/readyz']) assert.equal((await raw(server.url, path)).status, 200, path);
  });

  test('a write to a portal path is 405 with Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/projects/x', '/', '/assets/index-AbCd1234.js']) {
        const answer = await raw(server.url, path, { method });
        assert.equal(answer.status, 405, `${method} ${path}`);
        assert.match(String(answer.headers.allow), /GET/, `${method} ${path}: Allow`);
        assert.match(String(answer.headers.allow), /HEAD/, `${method} ${path}: Allow`);
      }
    }
  });

  test('HEAD: the headers of GET without a body', async () => {
    for (const path of ['/', '/projects/x', '/assets/index-AbCd1234.js']) {
      const get = await raw(server.url, path, { headers: { 'Accept-Encoding': 'gzip' } });
      const head = await raw(server.url, path, { method: 'HEAD', headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(head.status, 200, path);
      assert.equal(head.body.length, 0, `${path}: no body`);
      for (const name of ['content-type', 'content-length', 'content-encoding', 'cache-control', 'content-security-policy']) {
        assert.equal(head.headers[name], get.headers[name], `${path}: ${name}`);
      }
    }
    assert.equal((await raw(server.url, '/assets/missing-0000.js', { method: 'HEAD' })).status, 404);
  });

  test('hostile paths never reach a file outside the portal folder, and never fail the server', async () => {
    const paths = [
      '/..%2f..%2fetc/passwd',
      '/..%2fsecret.txt',
      '/..%2fpackage.json',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/../../package.json',
      '/assets/../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/assets/..%5c..%5csecret.txt',
      '/..\\secret.txt',
      '/%00',
      '/assets/index-AbCd1234.js%00.html',
      '/assets/%00',
      '/%ff%fe',
      '/%',
      '/assets/%zz.js',
      '//etc/passwd',
      '/./secret.txt',
      `/${'a'.repeat(4000)}`,
      `/assets/${'b'.repeat(4000)}.js`,
      `/${'../'.repeat(200)}etc/passwd`,
    ];
    for (const path of paths) {
      const answer = await raw(server.url, path);
      const body = answer.body.toString('utf8');
      const what = path.length > 60 ? `${path.slice(0, 60)}…` : path;
      assert.ok(!body.includes(SECRET), `${what}: answered a file outside the portal folder`);
      assert.ok(!/root:.*:0:0:/.test(body), `${what}: answered /etc/passwd`);
      assert.ok([200, 400, 404, 414].includes(answer.status), `${what}: status ${answer.status}`);
      if (answer.status === 200) assert.equal(body, INDEX, `${what}: the page or nothing`);
      else assert.doesNotMatch(body, /console\.log/, `${what}: no asset under another name`);
    }
    const long = await raw(server.url, `/${'c'.repeat(20_000)}`).catch((error: Error) => ({ status: -1, body: Buffer.from(error.message), headers: {} }));
    assert.ok(long.status !== 500 && !long.body.toString('utf8').includes(SECRET), `a very long path: ${long.status}`);
    assert.equal((await raw(server.url, '/readyz')).status, 200, 'the server is still well');
  });
});

test("the server serves the page at every address of the portal's route table (ui/src/app/routes.ts)", () => {
  const routes = readFileSync(join(REPO_ROOT, 'ui', 'src', 'app', 'routes.ts'), 'utf8');
  const sections = [...routes.matchAll(/pattern: '\/([a-z-]+)/g)].map((m) => m[1]!);
  assert.ok(sections.length >= 10, 'the route table was read');
  for (const section of new Set([...sections, 'login'])) assert.ok((PORTAL_SECTIONS as readonly string[]).includes(section), `/${section}/… is a page of the portal: add it to PORTAL_SECTIONS (src/http/portal/portal.ts)`);
});

describe('the real build (dist/ui), when it has been built', { skip: !existsSync(join(REPO_ROOT, 'dist', 'ui', 'index.html')) ? 'dist/ui not built: npm run build (the fake build above is checked)' : false }, () => {
  let server: TestServer;
  const saved = process.env.BERTH_PORTAL_DIR;

  before(async () => {
    process.env.BERTH_PORTAL_DIR = join(REPO_ROOT, 'dist', 'ui');
    server = await startTestServer();
  });

  after(async () => {
    if (saved === undefined) delete process.env.BERTH_PORTAL_DIR;
    else process.env.BERTH_PORTAL_DIR = saved;
    await server?.close();
  });

  test('every script and stylesheet the page names is served hashed, immutable and compressed', async () => {
    const page = await raw(server.url, '/projects');
    assertIndex(page, '/projects');
    const html = page.body.toString('utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script (the CSP forbids them)');
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.some((a) => a.endsWith('.js')), `the page loads its script: ${html}`);
    for (const asset of assets) {
      assert.match(asset, /-[A-Za-z0-9_-]{8,}\.(js|css)$/, `${asset}: a content hash in the name`);
      const answer = await raw(server.url, asset, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
      assert.equal(answer.status, 200, asset);
      assert.equal(answer.headers['cache-control'], 'public, max-age=31536000, immutable', asset);
      assert.equal(answer.headers['content-encoding'], 'br', asset);
      const plain = readFileSync(join(REPO_ROOT, 'dist', 'ui', asset.slice(1)));
      assert.ok(decoded(answer) === plain.toString('utf8'), `${asset}: the built file`);
    }
  });
});
