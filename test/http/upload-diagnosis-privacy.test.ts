// Who may read how an upload session was opened. A refused request of a session is explained
// (PROXIES.md M1/M2/M5/M9), but a caller who has not proved to be the session's owner or an
// administrator — above all one without credentials — learns only what happened and what to run,
// never who opened the session, from where, with which client, or through which proxies. The log
// keeps all of it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TokenService } from '../../src/auth/tokens.ts';
import { serverSigningKey } from '../support/backend.ts';
import { api, basic, expectStatus } from '../support/api.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { digestOf, rawRequest, uniqueName, type RawResponse } from '../support/oci.ts';

const PASSWORD = 'privacy-password-1';
const OWNER = 'openerq7';
const OTHER = 'otherz3';

/** How the opening request arrives: every value distinctive, so a leak of any of them is found. */
const OPENING = {
  Host: 'hub.example.com',
  'User-Agent': 'OpenerClient/7.7 (opener-ua-q9z)',
  'X-Forwarded-For': '198.51.100.77',
  'X-Forwarded-Proto': 'https',
  'X-Real-IP': '198.51.100.77',
  Via: '1.1 opener-proxy-k4',
};
/** How the refused requests arrive (through another, port-adding proxy). */
const REFUSED = {
  Host: 'hub.example.com:443',
  'User-Agent': 'RefusedClient/3.3 (refused-ua-p2w)',
  'X-Forwarded-For': '203.0.113.88',
  'X-Forwarded-Proto': 'http',
  Via: '1.1 refused-proxy-m8',
};
const SECRETS = [OWNER, '198.51.100.77', 'opener-ua-q9z', 'OpenerClient', 'opener-proxy-k4', '203.0.113.88', 'refused-ua-p2w', 'RefusedClient', 'refused-proxy-m8'];

/** The last log line that `match` accepts. */
function lastLogIn(logs: Record<string, unknown>[], match: (line: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  return [...logs].reverse().find(match);
}

function assertNoLeak(raw: RawResponse, what: string): void {
  const shown = `${JSON.stringify(raw.headers)}\n${raw.text}`;
  for (const secret of SECRETS) assert.ok(!shown.includes(secret), `${what}: the response shows "${secret}": ${shown}`);
}

describe('upload-session explanations show session details only to its owner or an administrator', () => {
  let server: TestServer;
  const logs: Record<string, unknown>[] = [];
  const project = uniqueName('privacy').replace(/[^a-z0-9]/g, '');
  const owner = basic(OWNER, PASSWORD);
  const other = basic(OTHER, PASSWORD);

  before(async () => {
    server = await startTestServer({ externalURL: ['https://hub.example.com'], trustedProxies: ['127.0.0.1'] }, undefined, logs);
    const admin = adminBasic();
    for (const username of [OWNER, OTHER]) await expectStatus(await api(server.url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    await expectStatus(await api(server.url, 'POST', '/projects', { auth: admin, body: { name: project } }), 201);
    for (const username of [OWNER, OTHER]) {
      await expectStatus(await api(server.url, 'POST', `/projects/${project}/members`, { auth: admin, body: { username, role: 'developer' } }), 201);
    }
  });
  after(() => server.close());
  const lastLog = (match: (line: Record<string, unknown>) => boolean) => lastLogIn(logs, match);

  /** A session opened by the owner, with Basic credentials, through the distinctive proxy headers. */
  async function openSession(): Promise<{ path: string; id: string; name: string }> {
    const name = `${project}/app${Math.random().toString(36).slice(2, 8)}`;
    const raw = await rawRequest(server.url, { method: 'POST', path: `/v2/${name}/blobs/uploads/`, headers: { ...OPENING, Authorization: owner } });
    assert.equal(raw.status, 202, raw.text);
    const path = String(raw.headers.location);
    return { path, id: path.split('/').pop()!, name };
  }

  test('without credentials (credentials dropped on the way): what happened and what to run, nothing about the opener', async () => {
    const { path, id } = await openSession();
    const requests = [
      { method: 'GET', path },
      { method: 'PATCH', path, body: Buffer.from('bytes') },
      { method: 'PUT', path: `${path}?digest=${digestOf(Buffer.alloc(0))}` },
    ];
    for (const r of requests) {
      const raw = await rawRequest(server.url, { method: r.method, path: r.path, headers: { ...REFUSED, ...(r.body ? { 'Content-Length': String(r.body.length) } : {}) }, ...(r.body ? { body: r.body } : {}) });
      const what = `${r.method} without credentials`;
      assert.equal(raw.status, 401, `${what}: ${raw.text}`);
      assertNoLeak(raw, what);
      const error = JSON.parse(raw.text).errors[0];
      assert.equal(error.code, 'UNAUTHORIZED');
      assert.equal(error.detail.diagnosis, 'credentials-dropped');
      assert.match(error.message, new RegExp(`upload session ${id} was opened with credentials, but this request arrived without an Authorization header`));
      assert.match(error.message, /Run `berth doctor https:\/\/hub\.example\.com` from the client's machine/);
      assert.equal(error.detail.doctor, 'berth doctor https://hub.example.com');
      assert.ok(error.detail.likelyCauses.length >= 2, what);
      assert.ok(error.detail.likelyCauses.some((c: string) => /Authorization header/.test(c) && /M5/.test(c)), 'a proxy removing Authorization is named');
      assert.ok(error.detail.likelyCauses.some((c: string) => /hub\.example\.com:443/.test(c) && /M1\/M2/.test(c)), 'the host this request arrived with is compared');
      assert.deepEqual(Object.keys(error.detail.session).sort(), ['id', 'openedAt'], 'no opener, no origin');
      assert.deepEqual(error.detail.received, { host: 'hub.example.com:443', scheme: 'http' }, 'no forwarded headers, no client address');

      // The log keeps the whole story: who, from where, with which client, through which proxies.
      const line = lastLog((l) => l.msg === 'request' && l.method === r.method && String(l.path) === path && l.status === 401);
      assert.ok(line, `${what}: logged`);
      const diagnosis = line.diagnosis as Record<string, any>;
      assert.equal(diagnosis.code, 'credentials-dropped');
      assert.equal(diagnosis.openedBy, OWNER);
      assert.match(diagnosis.message, new RegExp(`opened by "${OWNER}" via https://hub\\.example\\.com`));
      assert.equal(diagnosis.openedFrom.client, '198.51.100.77');
      assert.equal(diagnosis.openedFrom.userAgent, OPENING['User-Agent']);
      assert.equal(diagnosis.openedFrom.forwarded.via, OPENING.Via);
      assert.equal(line.userAgent, REFUSED['User-Agent']);
      assert.equal((line.forwarded as Record<string, string>).via, REFUSED.Via);
      assert.equal(line.client, '203.0.113.88');
    }
  });

  test('another user: a token that expired says so, without the opener; the session itself shows nothing of its origin', async () => {
    const { path, name } = await openSession();
    const stale = new TokenService(await serverSigningKey(server.dataDir), { issuer: 'berth', service: 'berth', ttl: -120, refreshTTL: 60 });
    const { token } = await stale.issueAccess(OTHER, [{ type: 'repository', name, actions: ['pull', 'push'] }]);
    for (const method of ['GET', 'PATCH', 'PUT']) {
      const target = method === 'PUT' ? `${path}?digest=${digestOf(Buffer.alloc(0))}` : path;
      const raw = await rawRequest(server.url, { method, path: target, headers: { ...REFUSED, Authorization: `Bearer ${token}` } });
      assert.equal(raw.status, 401, raw.text);
      assertNoLeak(raw, `${method} with another user's expired token`);
      const error = JSON.parse(raw.text).errors[0];
      assert.equal(error.detail.diagnosis, 'token-expired');
      assert.match(error.message, /access token expired during upload session .* auth\.tokenTTL = 1800 s/);
      assert.deepEqual(Object.keys(error.detail.session).sort(), ['id', 'openedAt']);
      const line = lastLog((l) => l.msg === 'request' && l.method === method && l.status === 401 && String(l.path) === path);
      assert.equal((line?.diagnosis as Record<string, unknown> | undefined)?.openedBy, OWNER, 'the log names the opener');
    }

    // A token of the other user that lacks the scope: a plain challenge, nothing about the session.
    const unscoped = await new TokenService(await serverSigningKey(server.dataDir), { issuer: 'berth', service: 'berth', ttl: 600, refreshTTL: 60 }).issueAccess(OTHER, []);
    const challenged = await rawRequest(server.url, { method: 'GET', path, headers: { ...REFUSED, Authorization: `Bearer ${unscoped.token}` } });
    assert.equal(challenged.status, 401);
    assertNoLeak(challenged, 'GET with a token lacking the scope');

    // A user who may push to the repository sees the session's state (Location, Range, id) and nothing more.
    const status = await rawRequest(server.url, { method: 'GET', path, headers: { ...REFUSED, Authorization: other } });
    assert.equal(status.status, 204, status.text);
    assertNoLeak(status, 'upload status for another user');
    assert.equal(status.headers.range, '0-0');
  });
});
