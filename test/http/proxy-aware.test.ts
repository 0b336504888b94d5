// What Berth does for requests that crossed proxies: trusted forwarded headers, the echo endpoint,
// and the explanations it gives when a later request of an upload session fails (PROXIES.md).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenService } from '../../src/auth/tokens.ts';
import { serverSigningKey } from '../support/backend.ts';
import { adminBasic, adminToken, startTestServer, type TestServer } from '../support/server.ts';
import { digestOf, expectError, randomBlob, rawRequest, resolveLocation, uniqueName, withDigest } from '../support/oci.ts';

describe('trusted proxies decide the realm only when trusted', () => {
  let trusting: TestServer;
  let untrusting: TestServer;
  before(async () => {
    trusting = await startTestServer({ trustedProxies: ['127.0.0.0/8'] });
    untrusting = await startTestServer();
  });
  after(async () => {
    await trusting.close();
    await untrusting.close();
  });

  const headers = { Host: '127.0.0.1:5000', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'hub.example.com', 'X-Forwarded-For': '198.51.100.7' };

  test('from a trusted proxy, X-Forwarded-Proto/-Host build the realm', async () => {
    const raw = await rawRequest(trusting.url, { path: '/v2/', headers });
    assert.equal(raw.status, 401);
    assert.match(String(raw.headers['www-authenticate']), /^Bearer realm="https:\/\/hub\.example\.com\/service\/token"/);
  });

  test('RFC 7239 Forwarded from a trusted proxy', async () => {
    const raw = await rawRequest(trusting.url, { path: '/v2/', headers: { Host: 'x', Forwarded: 'for=198.51.100.7;proto=https;host="hub.example.com:8443"' } });
    assert.match(String(raw.headers['www-authenticate']), /^Bearer realm="https:\/\/hub\.example\.com:8443\/service\/token"/);
  });

  test('from anyone else, they are ignored: the realm follows the connection and Host', async () => {
    const raw = await rawRequest(untrusting.url, { path: '/v2/', headers });
    assert.match(String(raw.headers['www-authenticate']), /^Bearer realm="http:\/\/127\.0\.0\.1:5000\/service\/token"/);
  });

  test('never a redirect on /v2, /v2/ or the token endpoint', async () => {
    for (const path of ['/v2', '/v2/', '/service/token', '/service/token/', '/v2/team/app/blobs/uploads']) {
      for (const method of ['GET', 'POST', 'PUT']) {
        const raw = await rawRequest(untrusting.url, { method, path, headers: { Host: 'hub.example.com', 'X-Forwarded-Proto': 'http' } });
        assert.ok(raw.status < 300 || raw.status >= 400, `${method} ${path} → ${raw.status}`);
        assert.equal(raw.headers.location, undefined, `${method} ${path} has no Location`);
      }
    }
  });
});

describe('echo endpoint', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ externalURL: ['https://hub.example.com'], trustedProxies: ['127.0.0.1'] });
  });
  after(() => server.close());

  test('shows what arrived, without credentials needed and without their values', async () => {
    const token = await adminToken(server.url, 'repository:team/app:pull');
    const body = randomBlob(100_000);
    const raw = await rawRequest(server.url, {
      method: 'PATCH',
      path: '/v2/_berth/echo?probe=1',
      headers: { Host: 'hub.example.com:443', 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '198.51.100.7', Authorization: `Bearer ${token}`, 'Content-Length': String(body.length) },
      body,
    });
    assert.equal(raw.status, 200, raw.text);
    assert.ok(!raw.text.includes(token), 'the token never comes back');
    const echo = JSON.parse(raw.text) as Record<string, any>;
    assert.deepEqual(echo.berth.externalURLs, ['https://hub.example.com']);
    assert.equal(echo.berth.tokenTTLSeconds, 1800);
    const r = echo.received;
    assert.equal(r.method, 'PATCH');
    assert.equal(r.query, 'probe=1');
    assert.equal(r.host, 'hub.example.com:443');
    assert.equal(r.scheme, 'http');
    assert.equal(r.peer, '127.0.0.1');
    assert.equal(r.trustedProxy, true);
    assert.equal(r.client, '198.51.100.7');
    assert.deepEqual(r.origin, { scheme: 'https', host: 'hub.example.com:443', source: 'x-forwarded' });
    assert.deepEqual(r.forwarded, { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https' });
    assert.deepEqual(r.authorization, { present: true, scheme: 'bearer', token: 'valid' });
    assert.deepEqual(r.body, { declaredLength: 100_000, chunked: false, receivedBytes: 100_000 });
  });

  test('anonymous, Basic, chunked and a garbage token', async () => {
    const anonymous = JSON.parse((await rawRequest(server.url, { path: '/v2/_berth/echo' })).text) as Record<string, any>;
    assert.deepEqual(anonymous.received.authorization, { present: false, scheme: null });
    const basic = JSON.parse((await rawRequest(server.url, { path: '/v2/_berth/echo', headers: { Authorization: adminBasic() } })).text) as Record<string, any>;
    assert.deepEqual(basic.received.authorization, { present: true, scheme: 'basic' });
    const garbage = JSON.parse((await rawRequest(server.url, { path: '/v2/_berth/echo', headers: { Authorization: 'Bearer abc.def.ghi' } })).text) as Record<string, any>;
    assert.equal(garbage.received.authorization.token, 'invalid');
    const res = await fetch(`${server.url}/v2/_berth/echo`, {
      method: 'POST',
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(5000));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    const chunked = (await res.json()) as Record<string, any>;
    assert.deepEqual(chunked.received.body, { declaredLength: null, chunked: true, receivedBytes: 5000 });
  });
});

describe('explanations for failing upload-session requests', () => {
  let server: TestServer;
  const logs: Record<string, unknown>[] = [];
  before(async () => {
    server = await startTestServer({ externalURL: ['https://hub.example.com', 'http://registry.lan:5000'] }, undefined, logs);
  });
  after(() => server.close());

  async function openSession(name: string, host: string): Promise<{ url: string; token: string }> {
    const token = await adminToken(server.url, `repository:${name}:pull,push`);
    const raw = await rawRequest(server.url, { method: 'POST', path: `/v2/${name}/blobs/uploads/`, headers: { Host: host, Authorization: `Bearer ${token}` } });
    assert.equal(raw.status, 202, raw.text);
    return { url: resolveLocation(server.url, String(raw.headers.location)), token };
  }

  test('credentials dropped: the 401 names the session, the causes and the doctor command; the log also who opened it and how', async () => {
    const name = uniqueName('dropped');
    const { url } = await openSession(name, 'hub.example.com');
    const path = new URL(url).pathname;
    const raw = await rawRequest(server.url, { method: 'PUT', path: `${path}?digest=${digestOf(Buffer.alloc(0))}`, headers: { Host: 'hub.example.com:443', 'User-Agent': 'containerd/1.7.24' } });
    assert.equal(raw.status, 401);
    assert.match(String(raw.headers['www-authenticate']), /^Bearer realm="https:\/\/hub\.example\.com\/service\/token",service="berth",scope="repository:[^"]+:pull,push"/);
    const error = JSON.parse(raw.text).errors[0];
    assert.equal(error.code, 'UNAUTHORIZED');
    assert.match(error.message, /credentials were dropped between the client and Berth/);
    // Shown to a caller without credentials: what happened, not who opened the session or from where.
    assert.match(error.message, /was opened with credentials, but this request arrived without an Authorization header/);
    assert.match(error.message, /berth doctor https:\/\/hub\.example\.com/);
    assert.equal(error.detail.diagnosis, 'credentials-dropped');
    assert.deepEqual(Object.keys(error.detail.session).sort(), ['id', 'openedAt']);
    assert.deepEqual(error.detail.received, { host: 'hub.example.com:443', scheme: 'http' });
    assert.match(error.detail.likelyCauses[0], /hub\.example\.com:443, not as the session's first request did/);
    assert.ok(!raw.text.includes('containerd/1.7.24') && !raw.text.includes('"admin"'), raw.text);

    const line = logs.find((l) => l.msg === 'request' && l.status === 401 && l.path === path);
    assert.ok(line, 'the access log has the request');
    assert.equal(line.error, 'UNAUTHORIZED');
    assert.equal(line.userAgent, 'containerd/1.7.24');
    const diagnosis = line.diagnosis as Record<string, any>;
    assert.deepEqual(
      { ...diagnosis, message: undefined, openedFrom: undefined },
      { code: 'credentials-dropped', message: undefined, session: path.split('/').pop(), openedBy: 'admin', openedVia: 'https://hub.example.com', openedFrom: undefined },
    );
    assert.match(diagnosis.message, /opened by "admin" via https:\/\/hub\.example\.com/);
    assert.equal(diagnosis.openedFrom.host, 'hub.example.com');
  });

  test('with credentials, the same session goes on', async () => {
    const name = uniqueName('continued');
    const { url, token } = await openSession(name, 'registry.lan:5000');
    const blob = randomBlob(3000);
    const res = await fetch(withDigest(url, digestOf(blob)), { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: blob });
    assert.equal(res.status, 201, await res.text());
  });

  test('an expired token mid-upload says "expired" and names the lifetime (M9)', async () => {
    const name = uniqueName('expired');
    const { url } = await openSession(name, 'hub.example.com');
    const stale = new TokenService(await serverSigningKey(server.dataDir), { issuer: 'berth', service: 'berth', ttl: -120, refreshTTL: 60 });
    const { token } = await stale.issueAccess('admin', [{ type: 'repository', name, actions: ['pull', 'push'] }]);
    const res = await fetch(url, { method: 'PATCH', headers: { Authorization: `Bearer ${token}` }, body: randomBlob(10) });
    const body = await expectError(res, 401, 'UNAUTHORIZED');
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.match(body.errors[0]!.message, /access token expired during upload session .* auth\.tokenTTL = 1800 s/);
    assert.equal((body.errors[0]!.detail as { diagnosis: string }).diagnosis, 'token-expired');
  });

  test('an unknown session says whether this registry ever issued it (M10)', async () => {
    const name = uniqueName('unknown');
    const token = await adminToken(server.url, `repository:${name}:pull,push`);
    const auth = { Authorization: `Bearer ${token}` };
    const never = await fetch(`${server.url}/v2/${name}/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`, { method: 'PATCH', headers: auth, body: 'x' });
    const neverBody = await expectError(never, 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((neverBody.errors[0]!.detail as { diagnosis: string }).diagnosis, 'upload-session-never-issued');
    assert.match(neverBody.errors[0]!.message, /never issued/);

    const { url } = await openSession(name, 'hub.example.com');
    const blob = randomBlob(10);
    assert.equal((await fetch(withDigest(url, digestOf(blob)), { method: 'PUT', headers: auth, body: blob })).status, 201);
    const ended = await fetch(url, { method: 'PATCH', headers: auth, body: 'x' });
    const endedBody = await expectError(ended, 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((endedBody.errors[0]!.detail as { diagnosis: string }).diagnosis, 'upload-session-ended');
    assert.match(endedBody.errors[0]!.message, /issued here at .* has ended/);
    const line = logs.find((l) => l.msg === 'request' && l.path === new URL(url).pathname && l.status === 404);
    assert.equal((line?.diagnosis as { code: string } | undefined)?.code, 'upload-session-ended');
  });
});
