// /v2 base endpoint, Bearer challenges, the token service (GET and OAuth2 POST), anonymous pull,
// and the token realm built from external URLs.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, adminBasic, adminToken, ADMIN_PASSWORD, type TestServer } from '../support/server.ts';
import {
  expectError,
  jwtPayload,
  parseChallenge,
  pushBlob,
  pushImage,
  randomBlob,
  rawRequest,
  resolveLocation,
  uniqueName,
  withDigest,
  digestOf,
} from '../support/oci.ts';

interface TokenBody {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

interface OAuthBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  issued_at: string;
  scope: string;
  refresh_token?: string;
}

type Access = { type: string; name: string; actions: string[] }[];

function tokenURL(url: string, scopes: string[], extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({ service: 'berth', ...extra });
  for (const s of scopes) q.append('scope', s);
  return `${url}/service/token?${q}`;
}

function bearer(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

function form(fields: Record<string, string | string[]>): { body: string; headers: Record<string, string> } {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const item of Array.isArray(v) ? v : [v]) q.append(k, item);
  return { body: q.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } };
}

describe('base endpoint and token service', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  test('GET /v2/ without credentials: 401 with a complete Bearer challenge', async () => {
    const res = await fetch(`${url}/v2/`);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${url}/service/token",service="berth"`);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const body = await expectError(res, 401, 'UNAUTHORIZED');
    assert.equal(body.errors.length, 1);
  });

  test('HEAD /v2/ without credentials: 401 with the challenge and no body', async () => {
    const res = await fetch(`${url}/v2/`, { method: 'HEAD' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${url}/service/token",service="berth"`);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
  });

  test('GET /v2 (no trailing slash) is the base endpoint too', async () => {
    const res = await fetch(`${url}/v2`, { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  });

  test('GET /v2/ with valid Basic credentials: 200 {} with the API version header', async () => {
    const res = await fetch(`${url}/v2/`, { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), {});
  });

  test('GET /v2/ with a wrong password or unknown user: 401 with the challenge', async () => {
    for (const authorization of [adminBasic('wrong-password'), `Basic ${Buffer.from('nobody:whatever').toString('base64')}`]) {
      const res = await fetch(`${url}/v2/`, { headers: { Authorization: authorization } });
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.scheme, 'Bearer');
      assert.equal(challenge.params.realm, `${url}/service/token`);
      assert.equal(challenge.params.service, 'berth');
      await expectError(res, 401, 'UNAUTHORIZED');
    }
  });

  test('GET /v2/ with a malformed Authorization header: 401, not 500', async () => {
    for (const authorization of ['Basic', 'Basic !!!notbase64', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Digest abc', 'Bearer']) {
      const res = await fetch(`${url}/v2/`, { headers: { Authorization: authorization } });
      assert.ok(res.headers.get('www-authenticate')?.startsWith('Bearer realm='), authorization);
      await expectError(res, 401, 'UNAUTHORIZED');
    }
  });

  test('protected endpoints challenge with the scope they need', async () => {
    const name = uniqueName('scoped/app');
    const digest = digestOf(Buffer.from('x'));
    const cases: { method: string; path: string; scope: string }[] = [
      { method: 'GET', path: `/v2/${name}/tags/list`, scope: `repository:${name}:pull` },
      { method: 'GET', path: `/v2/${name}/manifests/latest`, scope: `repository:${name}:pull` },
      { method: 'HEAD', path: `/v2/${name}/manifests/latest`, scope: `repository:${name}:pull` },
      { method: 'GET', path: `/v2/${name}/blobs/${digest}`, scope: `repository:${name}:pull` },
      { method: 'GET', path: `/v2/${name}/referrers/${digest}`, scope: `repository:${name}:pull` },
      { method: 'PUT', path: `/v2/${name}/manifests/latest`, scope: `repository:${name}:pull,push` },
      { method: 'POST', path: `/v2/${name}/blobs/uploads/`, scope: `repository:${name}:pull,push` },
      { method: 'PATCH', path: `/v2/${name}/blobs/uploads/AAAAAAAAAAAAAAAAAAAAAAAA`, scope: `repository:${name}:pull,push` },
      { method: 'DELETE', path: `/v2/${name}/manifests/latest`, scope: `repository:${name}:delete` },
      { method: 'DELETE', path: `/v2/${name}/blobs/${digest}`, scope: `repository:${name}:delete` },
      { method: 'GET', path: `/v2/_catalog`, scope: `registry:catalog:*` },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}${c.path}`, { method: c.method, body: c.method === 'PUT' || c.method === 'PATCH' ? '{}' : undefined });
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.scheme, 'Bearer', `${c.method} ${c.path}`);
      assert.deepEqual(challenge.params, { realm: `${url}/service/token`, service: 'berth', scope: c.scope }, `${c.method} ${c.path}`);
      if (c.method === 'HEAD') {
        assert.equal(res.status, 401);
        await res.arrayBuffer();
      } else {
        await expectError(res, 401, 'UNAUTHORIZED');
      }
    }
  });

  test('token GET with valid Basic credentials: 200 with a token granting the requested scope', async () => {
    const name = uniqueName('tok');
    const res = await fetch(tokenURL(url, [`repository:${name}:pull,push`]), { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as TokenBody;
    assert.equal(typeof body.token, 'string');
    assert.equal(body.access_token, body.token);
    assert.equal(body.expires_in, 1800);
    assert.ok(Math.abs(Date.parse(body.issued_at) - Date.now()) < 60_000, 'issued_at is now');
    const claims = jwtPayload(body.token);
    assert.equal(claims.sub, 'admin');
    assert.equal(claims.aud, 'berth');
    assert.deepEqual(claims.access as Access, [{ type: 'repository', name, actions: ['pull', 'push'] }]);
    assert.equal(body.refresh_token, undefined, 'no refresh token unless offline_token=true');
  });

  test('token GET with invalid credentials: 401', async () => {
    for (const authorization of [adminBasic('not-the-password'), `Basic ${Buffer.from('ghost:test-admin-password').toString('base64')}`]) {
      const res = await fetch(tokenURL(url, ['repository:x:pull']), { headers: { Authorization: authorization } });
      const body = await expectError(res, 401, 'UNAUTHORIZED');
      assert.doesNotMatch(JSON.stringify(body), /not-the-password|test-admin-password/, 'the password is not echoed');
    }
  });

  test('token GET 401 carries a WWW-Authenticate challenge (RFC 7235: a 401 MUST have one)', async () => {
    const res = await fetch(tokenURL(url, ['repository:x:pull']), { headers: { Authorization: adminBasic('not-the-password') } });
    await expectError(res, 401, 'UNAUTHORIZED');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+"/);
  });

  test('token GET with several scope parameters grants each of them', async () => {
    const a = uniqueName('multi-a');
    const b = uniqueName('multi-b');
    const res = await fetch(tokenURL(url, [`repository:${a}:pull`, `repository:${b}:pull,push`, 'registry:catalog:*', `repository:${a}:push`, 'garbage', 'repository::pull', `repository:${a}:`]), {
      headers: { Authorization: adminBasic() },
    });
    assert.equal(res.status, 200);
    const access = jwtPayload(((await res.json()) as TokenBody).token).access as Access;
    const byName = new Map(access.map((e) => [`${e.type}:${e.name}`, [...e.actions].sort()]));
    assert.deepEqual(byName.get(`repository:${a}`), ['pull', 'push'], 'scopes for the same repository are merged');
    assert.deepEqual(byName.get(`repository:${b}`), ['pull', 'push']);
    assert.deepEqual(byName.get('registry:catalog'), ['*']);
    assert.equal(access.length, 3);
  });

  test('token GET with offline_token=true returns a refresh token', async () => {
    const res = await fetch(tokenURL(url, [], { offline_token: 'true', client_id: 'test' }), { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as TokenBody;
    assert.equal(typeof body.refresh_token, 'string');
    assert.equal(jwtPayload(body.refresh_token!).typ, 'refresh');
  });

  test('anonymous token (no credentials) grants nothing when anonymous pull is off', async () => {
    const name = uniqueName('anon');
    const res = await fetch(tokenURL(url, [`repository:${name}:pull`, 'registry:catalog:*']));
    assert.equal(res.status, 200);
    const body = (await res.json()) as TokenBody;
    const claims = jwtPayload(body.token);
    assert.equal(claims.sub, undefined);
    assert.deepEqual(claims.access, []);
  });

  test('an anonymous token without the scope is refused with a 401 challenge (so the client logs in)', async () => {
    const name = uniqueName('anon-use');
    await pushImage(url, name, 'v1');
    const token = ((await (await fetch(tokenURL(url, [`repository:${name}:pull`]))).json()) as TokenBody).token;
    const res = await fetch(`${url}/v2/${name}/tags/list`, { headers: bearer(token) });
    await expectError(res, 401, 'UNAUTHORIZED');
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge.params.scope, `repository:${name}:pull`);
    assert.equal(challenge.params.realm, `${url}/service/token`);
  });

  test('a token works on /v2 for what it grants: push and pull', async () => {
    const name = uniqueName('tokpush');
    const token = await adminToken(url, `repository:${name}:pull,push`);
    const blob = randomBlob(300);
    const digest = await pushBlob(url, name, blob, { auth: `Bearer ${token}` });
    const get = await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: bearer(token) });
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
    const base = await fetch(`${url}/v2/`, { headers: bearer(token) });
    assert.equal(base.status, 200);
    await base.arrayBuffer();
  });

  test('a token lacking the needed scope: 401 insufficient_scope naming the scope', async () => {
    const name = uniqueName('insufficient');
    const other = uniqueName('other');
    await pushImage(url, name, 'v1');
    const pullOnly = await adminToken(url, `repository:${name}:pull`);

    const push = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: bearer(pullOnly) });
    let challenge = parseChallenge(push.headers.get('www-authenticate'));
    assert.equal(challenge.params.error, 'insufficient_scope');
    assert.equal(challenge.params.scope, `repository:${name}:pull,push`);
    assert.equal(challenge.params.realm, `${url}/service/token`);
    await expectError(push, 401, 'UNAUTHORIZED');

    const elsewhere = await fetch(`${url}/v2/${other}/tags/list`, { headers: bearer(pullOnly) });
    challenge = parseChallenge(elsewhere.headers.get('www-authenticate'));
    assert.equal(challenge.params.error, 'insufficient_scope');
    assert.equal(challenge.params.scope, `repository:${other}:pull`);
    await expectError(elsewhere, 401, 'UNAUTHORIZED');

    const del = await fetch(`${url}/v2/${name}/manifests/v1`, { method: 'DELETE', headers: bearer(pullOnly) });
    challenge = parseChallenge(del.headers.get('www-authenticate'));
    assert.equal(challenge.params.error, 'insufficient_scope');
    assert.equal(challenge.params.scope, `repository:${name}:delete`);
    await expectError(del, 401, 'UNAUTHORIZED');

    // And the manifest is still there: the refused delete did nothing.
    const still = await fetch(`${url}/v2/${name}/manifests/v1`, { headers: bearer(pullOnly) });
    assert.equal(still.status, 200);
    await still.arrayBuffer();
  });

  test('a catalog token works on /_catalog; a repository token does not', async () => {
    const catalogToken = await adminToken(url, 'registry:catalog:*');
    const ok = await fetch(`${url}/v2/_catalog`, { headers: bearer(catalogToken) });
    assert.equal(ok.status, 200);
    assert.ok(Array.isArray(((await ok.json()) as { repositories: string[] }).repositories));
    const repoToken = await adminToken(url, 'repository:x:pull');
    const refused = await fetch(`${url}/v2/_catalog`, { headers: bearer(repoToken) });
    assert.equal(parseChallenge(refused.headers.get('www-authenticate')).params.error, 'insufficient_scope');
    await expectError(refused, 401, 'UNAUTHORIZED');
  });

  test('a garbage token: 401 invalid_token', async () => {
    for (const token of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.']) {
      const res = await fetch(`${url}/v2/`, { headers: bearer(token) });
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.params.error, 'invalid_token');
      const body = await expectError(res, 401, 'UNAUTHORIZED');
      assert.equal(body.errors[0]!.message, 'token invalid');
    }
  });

  test('a tampered token (payload altered, signature kept): 401 token invalid', async () => {
    const name = uniqueName('tamper');
    const token = await adminToken(url, `repository:${name}:pull`);
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as { access: Access };
    payload.access[0]!.actions = ['pull', 'push', 'delete'];
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: bearer(forged) });
    assert.equal(parseChallenge(res.headers.get('www-authenticate')).params.error, 'invalid_token');
    const body = await expectError(res, 401, 'UNAUTHORIZED');
    assert.equal(body.errors[0]!.message, 'token invalid');
  });

  test('a refresh token cannot be used as an access token', async () => {
    const res = await fetch(tokenURL(url, [], { offline_token: 'true' }), { headers: { Authorization: adminBasic() } });
    const refresh = ((await res.json()) as TokenBody).refresh_token!;
    const use = await fetch(`${url}/v2/`, { headers: bearer(refresh) });
    assert.equal(parseChallenge(use.headers.get('www-authenticate')).params.error, 'invalid_token');
    await expectError(use, 401, 'UNAUTHORIZED');
  });

  test('POST /service/token password grant with access_type=offline, then the refresh_token grant', async () => {
    const name = uniqueName('oauth');
    const first = form({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD, service: 'berth', client_id: 'test', access_type: 'offline', scope: `repository:${name}:pull,push` });
    const res = await fetch(`${url}/service/token`, { method: 'POST', headers: first.headers, body: first.body });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as OAuthBody;
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, `repository:${name}:pull,push`);
    assert.equal(body.expires_in, 1800);
    assert.equal(typeof body.refresh_token, 'string');
    assert.deepEqual(jwtPayload(body.access_token).access, [{ type: 'repository', name, actions: ['pull', 'push'] }]);

    // The access token works.
    await pushBlob(url, name, randomBlob(64), { auth: `Bearer ${body.access_token}` });

    // The refresh token gets a new access token, for a scope of our choosing.
    const second = form({ grant_type: 'refresh_token', refresh_token: body.refresh_token!, service: 'berth', client_id: 'test', scope: `repository:${name}:pull` });
    const res2 = await fetch(`${url}/service/token`, { method: 'POST', headers: second.headers, body: second.body });
    assert.equal(res2.status, 200);
    const body2 = (await res2.json()) as OAuthBody;
    assert.equal(body2.scope, `repository:${name}:pull`);
    assert.equal(body2.refresh_token, undefined, 'the refresh grant does not mint another refresh token');
    assert.equal(jwtPayload(body2.access_token).sub, 'admin');
    const probe = await fetch(`${url}/v2/${name}/blobs/${digestOf(Buffer.from('nope'))}`, { method: 'HEAD', headers: bearer(body2.access_token) });
    assert.equal(probe.status, 404, 'the refreshed token is accepted (404 for an unknown blob, not 401)');
  });

  test('POST /service/token password grant without access_type=offline: no refresh token', async () => {
    const f = form({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD, scope: 'repository:x:pull' });
    const res = await fetch(`${url}/service/token`, { method: 'POST', headers: f.headers, body: f.body });
    assert.equal(res.status, 200);
    const body = (await res.json()) as OAuthBody;
    assert.equal(typeof body.access_token, 'string');
    assert.equal(body.refresh_token, undefined);
  });

  test('POST /service/token with a wrong password or unknown user: 400 invalid_grant', async () => {
    for (const [username, password] of [['admin', 'wrong-password'], ['nobody', ADMIN_PASSWORD]] as const) {
      const f = form({ grant_type: 'password', username, password });
      const res = await fetch(`${url}/service/token`, { method: 'POST', headers: f.headers, body: f.body });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_grant');
      assert.equal(typeof body.error_description, 'string');
    }
  });

  test('POST /service/token with an invalid refresh token or an access token as refresh token: 400 invalid_grant', async () => {
    const access = await adminToken(url, 'repository:x:pull');
    for (const refresh of ['not-a-jwt', access]) {
      const f = form({ grant_type: 'refresh_token', refresh_token: refresh });
      const res = await fetch(`${url}/service/token`, { method: 'POST', headers: f.headers, body: f.body });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
    }
  });

  test('POST /service/token with missing fields: 400 invalid_request', async () => {
    const cases: Record<string, string>[] = [{ grant_type: 'password', username: 'admin' }, { grant_type: 'password', password: 'x' }, { grant_type: 'refresh_token' }];
    for (const fields of cases) {
      const f = form(fields);
      const res = await fetch(`${url}/service/token`, { method: 'POST', headers: f.headers, body: f.body });
      assert.equal(res.status, 400, JSON.stringify(fields));
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    }
  });

  test('POST /service/token with an unsupported or missing grant_type: 400 unsupported_grant_type', async () => {
    const cases: Record<string, string>[] = [{ grant_type: 'client_credentials', client_id: 'x' }, { grant_type: 'authorization_code', code: 'x' }, { username: 'admin', password: ADMIN_PASSWORD }];
    for (const fields of cases) {
      const f = form(fields);
      const res = await fetch(`${url}/service/token`, { method: 'POST', headers: f.headers, body: f.body });
      assert.equal(res.status, 400, JSON.stringify(fields));
      assert.equal(((await res.json()) as { error: string }).error, 'unsupported_grant_type');
    }
  });

  test('POST /service/token with a non-form content type: 400 invalid_request', async () => {
    const cases: { type?: string; body: string }[] = [
      { type: 'application/json', body: JSON.stringify({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD }) },
      { type: 'text/plain', body: `grant_type=password&username=admin&password=${ADMIN_PASSWORD}` },
      { type: 'multipart/form-data; boundary=x', body: '--x--' },
    ];
    for (const c of cases) {
      const res = await fetch(`${url}/service/token`, { method: 'POST', headers: c.type ? { 'Content-Type': c.type } : {}, body: c.body });
      assert.equal(res.status, 400, c.type);
      const body = (await res.json()) as { error: string };
      assert.equal(body.error, 'invalid_request');
    }
  });

  test('POST /service/token form content type with a charset parameter is accepted', async () => {
    const f = form({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD });
    const res = await fetch(`${url}/service/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: f.body });
    assert.equal(res.status, 200);
    assert.equal(typeof ((await res.json()) as OAuthBody).access_token, 'string');
  });

  test('a token issued by another server (another signing key) is refused as invalid', async () => {
    const other = await startTestServer();
    try {
      const name = uniqueName('foreign');
      const foreign = await adminToken(other.url, `repository:${name}:pull,push`);
      const res = await fetch(`${url}/v2/${name}/tags/list`, { headers: bearer(foreign) });
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge.params.error, 'invalid_token');
      assert.equal(challenge.params.scope, `repository:${name}:pull`);
      const body = await expectError(res, 401, 'UNAUTHORIZED');
      assert.equal(body.errors[0]!.message, 'token invalid');
      // The same token is fine on the server that issued it.
      const home = await fetch(`${other.url}/v2/`, { headers: bearer(foreign) });
      assert.equal(home.status, 200);
      await home.arrayBuffer();
    } finally {
      await other.close();
    }
  });

  test('the realm follows the request Host when no external URL is configured', async () => {
    const res = await rawRequest(url, { path: '/v2/', headers: { Host: 'registry.internal:5000' } });
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="http://registry.internal:5000/service/token",service="berth"');
    const defaultPort = await rawRequest(url, { path: '/v2/', headers: { Host: 'registry.internal:80' } });
    assert.equal(defaultPort.headers['www-authenticate'], 'Bearer realm="http://registry.internal/service/token",service="berth"');
  });

  test('a Host header with quotes cannot inject challenge parameters', async () => {
    const res = await rawRequest(url, { path: '/v2/', headers: { Host: 'evil.example",error="injected' } });
    assert.equal(res.status, 401);
    const header = res.headers['www-authenticate'];
    assert.ok(typeof header === 'string');
    const challenge = parseChallenge(header);
    assert.equal(challenge.params.error, undefined);
    assert.doesNotMatch(challenge.params.realm!, /evil/);
    assert.match(challenge.params.realm!, /^http:\/\/127\.0\.0\.1:\d+\/service\/token$/);
  });
});

describe('anonymous pull', () => {
  let server: TestServer;
  let url: string;
  const name = uniqueName('public/app');
  let image: Awaited<ReturnType<typeof pushImage>>;

  before(async () => {
    server = await startTestServer({ auth: { anonymousPull: true } });
    url = server.url;
    image = await pushImage(url, name, 'latest');
  });
  after(async () => {
    await server.close();
  });

  test('pull works without credentials: manifest, blob, tags', async () => {
    const manifest = await fetch(`${url}/v2/${name}/manifests/latest`);
    assert.equal(manifest.status, 200);
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.bytes);
    const blob = await fetch(`${url}/v2/${name}/blobs/${image.layers[0]!.digest}`);
    assert.equal(blob.status, 200);
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), image.layerBytes[0]);
    const tags = await fetch(`${url}/v2/${name}/tags/list`);
    assert.equal(tags.status, 200);
    assert.deepEqual(await tags.json(), { name, tags: ['latest'] });
  });

  test('GET /v2/ still challenges, so clients learn the realm', async () => {
    const res = await fetch(`${url}/v2/`);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${url}/service/token",service="berth"`);
    await expectError(res, 401, 'UNAUTHORIZED');
  });

  test('push without credentials: 401 with the pull,push scope; nothing is stored', async () => {
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
    assert.equal(parseChallenge(res.headers.get('www-authenticate')).params.scope, `repository:${name}:pull,push`);
    await expectError(res, 401, 'UNAUTHORIZED');
    const blob = randomBlob(32);
    const mono = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob });
    await expectError(mono, 401, 'UNAUTHORIZED');
    const head = await fetch(`${url}/v2/${name}/blobs/${digestOf(blob)}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    const put = await fetch(`${url}/v2/${name}/manifests/evil`, { method: 'PUT', headers: { 'Content-Type': image.mediaType }, body: image.bytes });
    await expectError(put, 401, 'UNAUTHORIZED');
    const tags = await fetch(`${url}/v2/${name}/tags/list`);
    assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['latest']);
  });

  test('delete and catalog without credentials: 401', async () => {
    const del = await fetch(`${url}/v2/${name}/manifests/latest`, { method: 'DELETE' });
    assert.equal(parseChallenge(del.headers.get('www-authenticate')).params.scope, `repository:${name}:delete`);
    await expectError(del, 401, 'UNAUTHORIZED');
    const catalog = await fetch(`${url}/v2/_catalog`);
    await expectError(catalog, 401, 'UNAUTHORIZED');
  });

  test('an anonymous token grants pull only', async () => {
    const res = await fetch(tokenURL(url, [`repository:${name}:pull,push,delete`]));
    assert.equal(res.status, 200);
    const token = ((await res.json()) as TokenBody).token;
    assert.deepEqual(jwtPayload(token).access, [{ type: 'repository', name, actions: ['pull'] }]);
    const pull = await fetch(`${url}/v2/${name}/manifests/latest`, { headers: bearer(token) });
    assert.equal(pull.status, 200);
    await pull.arrayBuffer();
  });

  test('an anonymous token used to push: 401 challenge (log in), not 403', async () => {
    const res = await fetch(tokenURL(url, [`repository:${name}:pull,push`]));
    const token = ((await res.json()) as TokenBody).token;
    const push = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: bearer(token) });
    await expectError(push, 401, 'UNAUTHORIZED');
    const challenge = parseChallenge(push.headers.get('www-authenticate'));
    assert.equal(challenge.params.scope, `repository:${name}:pull,push`);
  });

  test('with credentials, push works as usual', async () => {
    const location = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: { Authorization: adminBasic() } });
    assert.equal(location.status, 202);
    const blob = randomBlob(10);
    const put = await fetch(withDigest(resolveLocation(url, location.headers.get('location')), digestOf(blob)), {
      method: 'PUT',
      headers: { Authorization: adminBasic() },
      body: blob,
    });
    assert.equal(put.status, 201);
  });
});

describe('token realm from external URLs', () => {
  let single: TestServer;
  let multi: TestServer;

  before(async () => {
    single = await startTestServer({ externalURL: ['https://hub.example.com'] });
    multi = await startTestServer({ externalURL: ['https://hub.example.com', 'http://mirror.example.net', 'https://alt.example.org:8443'] });
  });
  after(async () => {
    await single.close();
    await multi.close();
  });

  test('one external URL: the realm uses it whatever the request Host', async () => {
    const res = await fetch(`${single.url}/v2/`);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="https://hub.example.com/service/token",service="berth"');
    await res.arrayBuffer();
    for (const host of ['elsewhere.example.org', 'hub.example.com', '10.0.0.1:5000']) {
      const raw = await rawRequest(single.url, { path: '/v2/', headers: { Host: host } });
      assert.equal(raw.headers['www-authenticate'], 'Bearer realm="https://hub.example.com/service/token",service="berth"', host);
    }
  });

  test('one external URL: repository challenges use it too', async () => {
    const raw = await rawRequest(single.url, { path: '/v2/team/app/tags/list', headers: { Host: 'internal:5000' } });
    assert.equal(raw.status, 401);
    assert.equal(raw.headers['www-authenticate'], 'Bearer realm="https://hub.example.com/service/token",service="berth",scope="repository:team/app:pull"');
  });

  test('several external URLs: the realm is the one matching the request Host', async () => {
    const cases: [string, string][] = [
      ['hub.example.com', 'https://hub.example.com'],
      ['hub.example.com:443', 'https://hub.example.com'],
      ['HUB.Example.COM', 'https://hub.example.com'],
      ['mirror.example.net', 'http://mirror.example.net'],
      ['mirror.example.net:80', 'http://mirror.example.net'],
      ['alt.example.org:8443', 'https://alt.example.org:8443'],
      // A proxy sending `Host $host` drops a non-default port (M2): the host name alone still matches.
      ['alt.example.org', 'https://alt.example.org:8443'],
      // No match: the first URL.
      ['unknown.example', 'https://hub.example.com'],
      ['127.0.0.1', 'https://hub.example.com'],
    ];
    for (const [host, base] of cases) {
      const raw = await rawRequest(multi.url, { path: '/v2/', headers: { Host: host } });
      assert.equal(raw.status, 401, host);
      assert.equal(raw.headers['www-authenticate'], `Bearer realm="${base}/service/token",service="berth"`, `Host: ${host}`);
    }
  });
});
