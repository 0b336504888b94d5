// Hostile input: a request, however malformed, fails alone — with a 4xx envelope that names the
// field at fault without echoing what was sent, or at worst a 500 — and never ends the process.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { MEDIA, assertEnvelope, digestOf, expectError, pushImage, putManifest, rawRequest, uniqueName } from '../support/oci.ts';
import { createHandler } from '../../src/http/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { sendJSON } from '../../src/http/respond.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import { AddressSet } from '../../src/domain/cidr.ts';
import type { Route } from '../../src/http/context.ts';
import { guardProcess } from '../../src/cli/serve.ts';

const AUTH = { Authorization: adminBasic() };
const DEEP = 200_000;
const deepArray = '['.repeat(DEEP) + ']'.repeat(DEEP);

describe('hostile input to a real Berth', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  async function stillServing(): Promise<void> {
    const res = await fetch(`${url}/v2/`, { headers: AUTH });
    assert.equal(res.status, 200, 'the server still answers');
    await res.arrayBuffer();
  }

  test('a schemaVersion nested 200 000 arrays deep: 400 MANIFEST_INVALID naming the field, and the server keeps serving', { timeout: 30_000 }, async () => {
    const name = uniqueName('deep');
    const body = `{"schemaVersion":${deepArray},"mediaType":"${MEDIA.ociManifest}"}`;
    const env = await expectError(await putManifest(url, name, 'x', body, MEDIA.ociManifest), 400, 'MANIFEST_INVALID');
    assert.deepEqual(env.errors[0]!.detail, { reason: 'schemaVersion must be 2', field: 'schemaVersion', expected: 'the number 2' });
    await stillServing();
  });

  test('deep nesting in every other field a manifest has: 400 MANIFEST_INVALID, never an echo', { timeout: 60_000 }, async () => {
    const name = uniqueName('deep-fields');
    const config = `{"mediaType":"${MEDIA.ociConfig}","digest":"${digestOf(Buffer.from('{}'))}","size":2}`;
    const bodies = [
      `{"schemaVersion":2,"mediaType":${deepArray}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":{"mediaType":"x","digest":${deepArray},"size":1}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":${config},"layers":${deepArray}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":${config},"annotations":{"a":${deepArray}}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":${config},"artifactType":${deepArray}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":${config},"subject":${deepArray}}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociIndex}","manifests":${deepArray}}`,
      deepArray,
      '{"a":'.repeat(DEEP) + '1' + '}'.repeat(DEEP),
    ];
    for (const body of bodies) {
      const res = await putManifest(url, name, 'x', body, MEDIA.ociManifest);
      const text = await res.text();
      assert.equal(res.status, 400, `${body.slice(0, 80)}: ${res.status} ${text.slice(0, 300)}`);
      assert.equal(assertEnvelope(text).errors[0]!.code, 'MANIFEST_INVALID');
      assert.ok(text.length < 2000, `no echo of the body: ${text.slice(0, 300)}`);
    }
    await stillServing();
  });

  test('values a client sent are named, not echoed, in error details', { timeout: 30_000 }, async () => {
    const name = uniqueName('echo');
    const img = await pushImage(url, name, 'v1');
    const marker = 'ZQXJ-hostile-marker';
    const layer = img.layers[0]!.digest;
    const cases: { what: string; path: string; init?: RequestInit; status: number; code: string; detail?: Record<string, unknown> }[] = [
      { what: 'manifest body', path: `/v2/${name}/manifests/x`, init: { method: 'PUT', body: `{"schemaVersion":"${marker}"}`, headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400, code: 'MANIFEST_INVALID' },
      { what: 'not JSON', path: `/v2/${name}/manifests/x`, init: { method: 'PUT', body: `{"${marker}`, headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400, code: 'MANIFEST_INVALID', detail: { reason: 'body is not valid JSON', field: 'body', expected: 'a JSON object', position: 21 } },
      { what: 'media type', path: `/v2/${name}/manifests/x`, init: { method: 'PUT', body: `{"schemaVersion":2,"mediaType":"application/${marker}"}`, headers: { 'Content-Type': `application/${marker}` } }, status: 400, code: 'MANIFEST_INVALID' },
      { what: 'media type mismatch', path: `/v2/${name}/manifests/x`, init: { method: 'PUT', body: `{"schemaVersion":2,"mediaType":"application/${marker}"}`, headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400, code: 'MANIFEST_INVALID' },
      { what: 'descriptor digest', path: `/v2/${name}/manifests/x`, init: { method: 'PUT', body: `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","config":{"mediaType":"x","digest":"sha256:${marker}","size":1}}`, headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400, code: 'MANIFEST_INVALID', detail: { reason: 'config.digest is not a valid digest', field: 'config.digest', expected: 'algorithm:encoded, e.g. sha256:<64 lower-case hex characters>' } },
      { what: 'tag', path: `/v2/${name}/manifests/-${marker}`, init: { method: 'PUT', body: '{}', headers: { 'Content-Type': MEDIA.ociManifest } }, status: 400, code: 'TAG_INVALID', detail: { field: 'reference', expected: 'a tag matching [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}, or a digest' } },
      { what: 'digest', path: `/v2/${name}/blobs/sha256:${marker}`, status: 400, code: 'DIGEST_INVALID' },
      { what: 'digest algorithm', path: `/v2/${name}/blobs/zz${marker.toLowerCase()}:abc`, status: 400, code: 'DIGEST_INVALID' },
      { what: 'name', path: `/v2/${marker}/tags/list`, status: 400, code: 'NAME_INVALID' },
      { what: 'page size', path: `/v2/${name}/tags/list?n=${marker}`, status: 400, code: 'PAGINATION_NUMBER_INVALID', detail: { field: 'n', expected: 'a whole number of at most 9 digits' } },
      { what: 'range', path: `/v2/${name}/blobs/${layer}`, init: { headers: { Range: `bytes=${marker}` } }, status: 416, code: 'RANGE_INVALID' },
      { what: 'endpoint', path: `/v2/${name}/${marker}`, status: 404, code: 'NOT_FOUND' },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}${c.path}`, { ...c.init, headers: { ...AUTH, ...(c.init?.headers as Record<string, string> | undefined) } });
      const text = await res.text();
      assert.equal(res.status, c.status, `${c.what}: ${text}`);
      const env = assertEnvelope(text);
      assert.equal(env.errors[0]!.code, c.code, c.what);
      assert.ok(!text.includes(marker) && !text.includes(marker.toLowerCase()), `${c.what}: the input is not echoed: ${text}`);
      if (c.detail) assert.deepEqual(env.errors[0]!.detail, c.detail, c.what);
    }
    // Headers of an upload: Content-Length and Content-Range are named, not echoed.
    const start = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: AUTH });
    assert.equal(start.status, 202);
    const location = new URL(start.headers.get('location')!, url);
    const hostileHeaders: Record<string, string>[] = [{ 'Content-Range': `0-${marker}` }, { 'Content-Range': '5-1' }, { 'Content-Length': `1${marker}` }];
    for (const headers of hostileHeaders) {
      const res = await rawRequest(url, { method: 'PATCH', path: location.pathname, headers: { ...AUTH, ...headers }, body: Buffer.from('x') });
      assert.ok(res.status === 400 || res.status === 416, `${JSON.stringify(headers)}: ${res.status} ${res.text}`);
      assert.ok(!res.text.includes(marker) && !res.text.includes('5-1'), `${JSON.stringify(headers)}: not echoed: ${res.text}`);
      // A Content-Length that is not a number never reaches Berth: Node's parser answers 400 with no body.
      if (res.text !== '') assertEnvelope(res.text);
    }
    await stillServing();
  });
});

describe('the last-resort guard', () => {
  let server: Server;
  let base: string;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    // An object whose serialisation throws (a BigInt), one that cannot be inspected at all (every
    // trap throws), a circular detail, a failure after the headers went out, and a plain route.
    const hostile = new Proxy({}, {
      getPrototypeOf() {
        throw new Error('no prototype for you');
      },
      get() {
        throw new Error('no property for you');
      },
      ownKeys() {
        throw new Error('no keys for you');
      },
    });
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const routes: Route[] = [
      { name: 'bigint', methods: ['GET', 'HEAD'], pattern: /^\/bigint$/, handler: async () => { throw new RegistryError('MANIFEST_INVALID', 'bad', { n: 10n }); } },
      { name: 'circular', methods: ['GET'], pattern: /^\/circular$/, handler: async () => { throw new RegistryError('NAME_INVALID', 'bad', circular); } },
      { name: 'proxy', methods: ['GET', 'HEAD'], pattern: /^\/proxy$/, handler: async () => { throw hostile; } },
      { name: 'sync', methods: ['GET'], pattern: /^\/sync$/, handler: (() => { throw new RegistryError('INTERNAL', 'sync', { n: 1n }); }) as unknown as Route['handler'] },
      { name: 'bad-header', methods: ['GET'], pattern: /^\/bad-header$/, handler: async () => { throw new RegistryError('RANGE_INVALID', 'bad', undefined, { headers: { Range: 'a\r\nb' } }); } },
      {
        name: 'late',
        methods: ['GET'],
        pattern: /^\/late$/,
        handler: async (ctx) => {
          ctx.res.writeHead(200, { 'Content-Length': 10 });
          ctx.res.write('12345');
          throw new RegistryError('INTERNAL', 'late', { n: 1n });
        },
      },
      { name: 'ok', methods: ['GET'], pattern: /^\/ok$/, handler: async (ctx) => sendJSON(ctx.res, 200, { ok: true }) },
    ];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    server = createServer(createHandler(routes, { log, metrics: createMetrics(), secure: false, trustedProxies: new AddressSet([]) }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function ok(): Promise<void> {
    const res = await rawRequest(base, { path: '/ok' });
    assert.equal(res.status, 200, 'the server still answers');
    assert.deepEqual(JSON.parse(res.text), { ok: true });
  }

  test('an error whose envelope cannot be serialised becomes a 500 envelope with the request id, and is logged', async () => {
    for (const path of ['/bigint', '/circular', '/proxy', '/sync', '/bad-header']) {
      const res = await rawRequest(base, { path, headers: { 'X-Request-Id': `req-${path.slice(1)}` } });
      assert.equal(res.status, 500, `${path}: ${res.status} ${res.text}`);
      const env = assertEnvelope(res.text);
      assert.equal(env.errors[0]!.code, 'INTERNAL', path);
      assert.deepEqual(env.errors[0]!.detail, { requestId: `req-${path.slice(1)}` }, path);
      assert.match(String(res.headers['content-type']), /^application\/json/, path);
      assert.ok(lines.some((l) => l.reqId === `req-${path.slice(1)}` && l.level === 50), `${path}: logged at error level with the request id`);
      await ok();
    }
    // A HEAD has no body to serialise: the error keeps its own status; one that cannot be inspected is a 500.
    assert.equal((await rawRequest(base, { method: 'HEAD', path: '/bigint' })).status, 400);
    assert.equal((await rawRequest(base, { method: 'HEAD', path: '/proxy' })).status, 500);
    await ok();
  });

  test('a failure after the headers went out closes that connection; the server keeps serving', async () => {
    await assert.rejects(rawRequest(base, { path: '/late', headers: { 'X-Request-Id': 'req-late' } }));
    assert.ok(lines.some((l) => l.reqId === 'req-late' && l.level === 50), 'logged');
    await ok();
  });
});

test('a request that cannot even be set up fails with a 500, and the server keeps listening', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  // Working out the request's origin throws, before there is a context to send an error with.
  const broken = { has: () => { throw new Error('address set unavailable'); } } as unknown as AddressSet;
  const server = createServer(createHandler([], { log, metrics: createMetrics(), secure: false, trustedProxies: broken }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (let i = 0; i < 2; i++) {
      const res = await rawRequest(base, { path: '/v2/', headers: { 'X-Request-Id': 'req-setup' } });
      assert.equal(res.status, 500, res.text);
      assert.deepEqual(assertEnvelope(res.text).errors[0], { code: 'INTERNAL', message: 'internal server error', detail: { requestId: 'req-setup' } });
    }
    assert.ok(lines.some((l) => l.level === 50 && l.reqId === 'req-setup' && l.msg === 'request failed and its error could not be sent'), 'logged at error level with the request id');
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('the serve command\'s process guard', () => {
  // In a child process: the test runner has its own unhandled-rejection handling.
  const script = (guarded: boolean) => `
    import { pino } from 'pino';
    import { guardProcess } from './src/cli/serve.ts';
    const lines = [];
    const log = pino({ level: 'info' }, { write: (line) => void lines.push(JSON.parse(line)) });
    ${guarded ? 'guardProcess(log);' : ''}
    void Promise.reject(new Error('nobody caught this'));
    setTimeout(() => process.stdout.write(JSON.stringify(lines.map((l) => [l.level, l.msg, l.err?.message]))), 100);
  `;
  const run = (guarded: boolean) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(guarded)], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8', timeout: 60_000 });

  test('an unhandled rejection is logged at error level and the process keeps running', () => {
    const guarded = run(true);
    assert.equal(guarded.status, 0, guarded.stderr);
    assert.deepEqual(JSON.parse(guarded.stdout), [[50, 'unhandled rejection', 'nobody caught this']]);
    // Without the guard, Node's default ends the process: the guard is what keeps it up.
    assert.notEqual(run(false).status, 0);
  });
});
