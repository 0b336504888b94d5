// The connection check (/api/v1/system/connection), in-process: requests shaped as proxies send
// them (Host, X-Forwarded-*, from a trusted peer or not) and what Berth makes of them — the
// derived origin, whether it agrees with the external URLs, the problems with their mechanism and
// fix. test/e2e/proxy-connection-check.test.ts does the same through a real nginx.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { adminBasic, basic, expectStatus, api } from '../support/api.ts';
import { expectError } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'connection-test-password';
const EXTERNAL = 'https://registry.example.test';

interface Connection {
  request: { host: string | null; scheme: string; forwarded: Record<string, string>; peer: string; client: string; trustedProxy: boolean; source: string };
  origin: string;
  externalURLs: string[];
  agrees: boolean;
  problems: { id: string; mechanism: string | null; message: string; fix: string }[];
  doctorCommand: string;
}

/** GET /system/connection with raw headers (Host included), from `localAddress`. */
function check(url: string, headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<{ status: number; body: Connection }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: '/api/v1/system/connection', headers, localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Connection }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const ids = (c: Connection) => c.problems.map((p) => `${p.id}/${p.mechanism}`).sort();

describe('connection check', () => {
  let configured: TestServer;
  let bare: TestServer;
  const admin = adminBasic();
  let alice: string;

  before(async () => {
    // 127.0.0.1 is the trusted proxy; requests from 127.0.0.2 play an untrusted one.
    configured = await startTestServer({ externalURL: [EXTERNAL], trustedProxies: ['127.0.0.1'] });
    bare = await startTestServer();
    await expectStatus(await api(configured.url, 'POST', '/users', { auth: admin, body: { username: 'alice', password: PASSWORD } }), 201);
    alice = basic('alice', PASSWORD);
  });
  after(async () => {
    await configured?.close();
    await bare?.close();
  });

  test('anonymous callers get 401; any signed-in user may look', async () => {
    await expectError(await api(configured.url, 'GET', '/system/connection'), 401, 'UNAUTHORIZED');
    const { status, body } = await check(configured.url, { Host: 'registry.example.test', 'X-Forwarded-Proto': 'https', Authorization: alice });
    assert.equal(status, 200);
    assert.equal(body.doctorCommand, `berth doctor ${EXTERNAL} -u alice`);
  });

  test('a correct proxy (Host as typed, X-Forwarded-Proto https, trusted): agrees, no problems', async () => {
    const { body } = await check(configured.url, { Host: 'registry.example.test', 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '198.51.100.7', Authorization: admin });
    assert.equal(body.origin, EXTERNAL);
    assert.equal(body.agrees, true);
    assert.deepEqual(body.problems, []);
    assert.deepEqual(body.externalURLs, [EXTERNAL]);
    assert.deepEqual(body.request, {
      host: 'registry.example.test',
      scheme: 'http',
      forwarded: { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https' },
      peer: '127.0.0.1',
      client: '198.51.100.7',
      trustedProxy: true,
      source: 'x-forwarded',
    });
  });

  test('https outside, http inside without X-Forwarded-Proto: scheme-mismatch (M1) with the header to set', async () => {
    const { body } = await check(configured.url, { Host: 'registry.example.test', Authorization: admin });
    assert.equal(body.origin, 'http://registry.example.test');
    assert.equal(body.agrees, false);
    assert.deepEqual(ids(body), ['scheme-mismatch/M1']);
    assert.match(body.problems[0]!.fix, /X-Forwarded-Proto \$scheme/);
    assert.match(body.problems[0]!.message, /no trusted proxy stated X-Forwarded-Proto/);
  });

  test('nginx\'s default Host (the upstream address): host-mismatch (M2) naming $http_host', async () => {
    const { body } = await check(configured.url, { Host: '127.0.0.1:5000', 'X-Forwarded-Proto': 'https', Authorization: admin });
    assert.equal(body.origin, 'https://127.0.0.1:5000');
    assert.equal(body.agrees, false);
    assert.deepEqual(ids(body), ['host-mismatch/M2']);
    assert.match(body.problems[0]!.fix, /proxy_set_header Host \$http_host;/);
  });

  test('forwarded headers from a peer not trusted are ignored, and the fix says trustedProxies', async () => {
    const { body } = await check(configured.url, { Host: 'registry.example.test', 'X-Forwarded-Proto': 'https', Authorization: admin }, '127.0.0.2');
    assert.equal(body.request.trustedProxy, false);
    assert.equal(body.request.peer, '127.0.0.2');
    assert.equal(body.origin, 'http://registry.example.test');
    assert.equal(body.agrees, false);
    assert.deepEqual(ids(body), ['forwarded-untrusted/M3', 'scheme-mismatch/M1']);
    for (const p of body.problems) assert.match(p.fix, /trustedProxies/);
  });

  test('without externalURL: direct access agrees; through a proxy it does not, and says to set externalURL', async () => {
    const direct = (await check(bare.url, { Host: new URL(bare.url).host, Authorization: admin })).body;
    assert.equal(direct.agrees, true);
    assert.deepEqual(direct.problems, []);
    assert.equal(direct.origin, bare.url);
    assert.equal(direct.doctorCommand, `berth doctor ${bare.url} -u admin`);

    const proxied = (await check(bare.url, { Host: 'hub.example.test:443', 'X-Forwarded-For': '198.51.100.9', Authorization: admin })).body;
    assert.equal(proxied.agrees, false);
    assert.deepEqual(ids(proxied), ['external-url-missing/M2', 'forwarded-untrusted/M3']);
    assert.match(proxied.problems.find((p) => p.id === 'external-url-missing')!.fix, /externalURL/);
  });

  test('echoed values are capped and never include Authorization or Cookie', async () => {
    const long = `${'a'.repeat(2000)}.example`;
    const { status, body } = await check(configured.url, { Host: 'registry.example.test', 'X-Forwarded-Host': long, Cookie: 'berth_session=secret-cookie-value', Authorization: admin });
    assert.equal(status, 200);
    const text = JSON.stringify(body);
    assert.ok(!text.includes('secret-cookie-value') && !text.includes(admin.slice(6)), 'no credentials echoed');
    assert.ok(body.request.forwarded['x-forwarded-host']!.length <= 513);
    assert.ok(text.length < 8000, `answer stays small: ${text.length}`);
    // A Host no URL can hold is a host mismatch, not a 500.
    const odd = await check(configured.url, { Host: 'a:b:c', 'X-Forwarded-Proto': 'https', Authorization: admin });
    assert.equal(odd.status, 200);
    assert.equal(odd.body.agrees, false);
    assert.deepEqual(ids(odd.body), ['host-mismatch/M2']);
  });
});
