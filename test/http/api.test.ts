// The management API (/api/v1), part 1: authentication (Basic password / personal token / robot
// secret, Bearer personal token, the session cookie), system endpoints, users, personal tokens and
// request validation — against a real in-process server.
import { testBackend } from '../support/backend.ts';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { expectError } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';

const PASSWORD = 'api-test-password';

describe('management API: authentication, system, users, tokens', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();

  before(async () => {
    // 127.0.0.1 is a trusted proxy here, so a test can claim the client came by https.
    server = await startTestServer({ trustedProxies: ['127.0.0.1'], api: { sessionTTL: '1h' } });
    url = server.url;
    for (const username of ['alice', 'bob']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'shared' } }), 201);
  });
  after(() => server.close());

  test('health needs no credentials; system info tells the version and settings', async () => {
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/health'), 200), { status: 'ok', database: 'ok' });
    const info = await expectStatus(await api(url, 'GET', '/system/info', { auth: admin }), 200);
    assert.match(String(info.version), /^\d+\.\d+\.\d+/);
    assert.equal(info.projectCreation, 'admins');
    assert.equal(info.auditPulls, false);
    assert.equal(info.storage, testBackend() === 'postgres-s3' ? 's3' : 'filesystem');
    assert.equal(info.database, testBackend() === 'postgres-s3' ? 'postgres' : 'sqlite');
    assert.deepEqual(info.externalURLs, []);
  });

  test('whoami: user, anonymous', async () => {
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: admin }), 200), { kind: 'user', name: 'admin', isAdmin: true });
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: basic('alice', PASSWORD) }), 200), { kind: 'user', name: 'alice', isAdmin: false });
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami'), 200), { kind: 'anonymous', name: null, isAdmin: false });
  });

  test('bad credentials are a 401 with a Basic challenge, never anonymous access', async () => {
    for (const auth of [basic('alice', 'wrong-password'), 'Bearer not-a-personal-token', 'Bearer berth_pat_unknown', 'Digest abc']) {
      const res = await api(url, 'GET', '/auth/whoami', { auth });
      assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="berth"/, auth);
      await expectError(res, 401, 'UNAUTHORIZED');
    }
    // Anonymous callers asking for an admin-only list are told to authenticate.
    const res = await api(url, 'GET', '/users');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
    await expectError(res, 401, 'UNAUTHORIZED');
    // A failed login is in the audit log.
    const events = await expectStatus<ListPage<{ actor: string; success: boolean }>>(await api(url, 'GET', '/audit?action=login.failed&actor=alice', { auth: admin }), 200);
    assert.ok(events.items.length >= 1 && events.items.every((e) => !e.success));
  });

  test('session: login sets an HttpOnly SameSite=Strict cookie on /api; it authenticates; logout ends it', async () => {
    const res = await api(url, 'POST', '/auth/session', { body: { username: 'alice', password: PASSWORD } });
    const created = await expectStatus(res, 201);
    assert.equal(created.username, 'alice');
    const expiresIn = Date.parse(String(created.expiresAt)) - Date.now();
    assert.ok(expiresIn > 3500_000 && expiresIn <= 3600_000, `expires in about an hour (api.sessionTTL): ${created.expiresAt}`);
    const setCookie = res.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^berth_session=[A-Za-z0-9_-]{20,}; /);
    for (const attribute of ['HttpOnly', 'SameSite=Strict', 'Path=/api', 'Max-Age=3600']) assert.ok(setCookie.split('; ').includes(attribute), `${attribute} in ${setCookie}`);
    assert.ok(!setCookie.includes('Secure'), 'no Secure flag over plain http');
    const cookie = setCookie.split(';')[0]!;

    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { headers: { Cookie: cookie } }), 200), { kind: 'user', name: 'alice', isAdmin: false });
    // The cookie holds no admin rights: alice is not an administrator.
    await expectError(await api(url, 'GET', '/users', { headers: { Cookie: cookie } }), 403, 'DENIED');

    const out = await api(url, 'DELETE', '/auth/session', { headers: { Cookie: cookie } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^berth_session=; .*Max-Age=0/);
    // The old cookie is dead; a browser holding it gets no Basic challenge (no login pop-up).
    const after = await api(url, 'GET', '/auth/whoami', { headers: { Cookie: cookie } });
    assert.equal(after.headers.get('www-authenticate'), null);
    await expectError(after, 401, 'UNAUTHORIZED');
  });

  test('session: wrong password is a 401 without a challenge; the cookie is Secure when the client came by https', async () => {
    const wrong = await api(url, 'POST', '/auth/session', { body: { username: 'alice', password: 'nope-nope' } });
    assert.equal(wrong.headers.get('www-authenticate'), null);
    assert.equal(wrong.headers.get('set-cookie'), null);
    await expectError(wrong, 401, 'UNAUTHORIZED');
    const secure = await api(url, 'POST', '/auth/session', { body: { username: 'bob', password: PASSWORD }, headers: { 'X-Forwarded-Proto': 'https' } });
    await expectStatus(secure, 201);
    assert.ok((secure.headers.get('set-cookie') ?? '').split('; ').includes('Secure'));
    await expectInvalid(await api(url, 'POST', '/auth/session', { body: { username: 'bob' } }), 'password');
  });

  test('personal access tokens: create (shown once), use with Basic and Bearer, list, revoke', async () => {
    const alice = basic('alice', PASSWORD);
    const created = await expectStatus(await api(url, 'POST', '/users/me/tokens', { auth: alice, body: { name: 'ci-laptop', expiresInDays: 7 } }), 201);
    const token = String(created.token);
    assert.match(token, /^berth_pat_[A-Za-z0-9_-]{40,}$/);
    assert.ok(token.startsWith(String(created.prefix)));
    assert.ok(Math.abs(Date.parse(String(created.expiresAt)) - (Date.now() + 7 * 86_400_000)) < 60_000);

    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: basic('alice', token) }), 200), { kind: 'user', name: 'alice', isAdmin: false });
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: `Bearer ${token}` }), 200), { kind: 'user', name: 'alice', isAdmin: false });
    // A token is bound to its user.
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: basic('bob', token) }), 401, 'UNAUTHORIZED');

    const list = await expectStatus<ListPage<Record<string, unknown>>>(await api(url, 'GET', '/users/me/tokens', { auth: `Bearer ${token}` }), 200);
    assert.equal(list.total, 1);
    const listed = list.items[0]!;
    assert.deepEqual(Object.keys(listed).sort(), ['createdAt', 'expiresAt', 'lastUsedAt', 'name', 'prefix', 'revoked']);
    assert.equal(listed.name, 'ci-laptop');
    assert.equal(listed.revoked, false);
    assert.ok(!JSON.stringify(list).includes(token), 'the token itself is never listed');

    await expectError(await api(url, 'POST', '/users/me/tokens', { auth: alice, body: { name: 'ci-laptop' } }), 409, 'CONFLICT');
    await expectInvalid(await api(url, 'POST', '/users/me/tokens', { auth: alice, body: { name: 'x', expiresInDays: 0 } }), 'expiresInDays');
    await expectInvalid(await api(url, 'POST', '/users/me/tokens', { auth: alice, body: { name: 'has space' } }), 'name');
    // Bob cannot see or revoke alice's tokens: "me" is always the caller.
    await expectError(await api(url, 'DELETE', '/users/me/tokens/ci-laptop', { auth: basic('bob', PASSWORD) }), 404, 'NOT_FOUND');

    assert.equal((await api(url, 'DELETE', '/users/me/tokens/ci-laptop', { auth: alice })).status, 204);
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: `Bearer ${token}` }), 401, 'UNAUTHORIZED');
    const revoked = await expectStatus<ListPage<{ revoked: boolean }>>(await api(url, 'GET', '/users/me/tokens', { auth: alice }), 200);
    assert.equal(revoked.items[0]!.revoked, true);
    const events = await expectStatus<ListPage<{ action: string; resource: string }>>(await api(url, 'GET', '/audit?actor=alice&resource=ci-laptop', { auth: admin }), 200);
    assert.deepEqual(events.items.map((e) => e.action), ['token.revoke', 'token.create']);
  });

  test('a robot secret authenticates on the API; robots have no tokens or sessions', async () => {
    const robot = await expectStatus(await api(url, 'POST', '/robots', { auth: admin, body: { name: 'reader', project: 'shared', permissions: [{ project: 'shared', actions: ['list', 'pull'] }] } }), 201);
    const auth = basic(String(robot.name), String(robot.secret));
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth }), 200), { kind: 'robot', name: 'robot$shared+reader', isAdmin: false });
    const project = await expectStatus(await api(url, 'GET', '/projects/shared', { auth }), 200);
    assert.deepEqual(project.permissions, ['project.read', 'repository.list', 'repository.pull']);
    await expectStatus(await api(url, 'GET', '/repositories?project=shared', { auth }), 200);
    await expectError(await api(url, 'PATCH', '/projects/shared', { auth, body: { public: true } }), 403, 'DENIED');
    await expectError(await api(url, 'POST', '/users/me/tokens', { auth, body: { name: 'sneaky' } }), 403, 'DENIED');
    await expectError(await api(url, 'POST', '/auth/session', { body: { username: robot.name, password: robot.secret } }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: basic(String(robot.name), 'wrong-secret') }), 401, 'UNAUTHORIZED');
  });

  test('users: administrators create (password generated once), list, show, update and delete', async () => {
    const created = await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username: 'carol' } }), 201);
    assert.equal(created.admin, false);
    const generated = String(created.password);
    assert.ok(generated.length >= 16);
    assert.equal((await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: basic('carol', generated) }), 200)).name, 'carol');
    assert.equal((await expectStatus(await api(url, 'GET', '/users/carol', { auth: admin }), 200)).password, undefined, 'never shown again');

    await expectError(await api(url, 'POST', '/users', { auth: admin, body: { username: 'carol', password: PASSWORD } }), 409, 'CONFLICT');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'Not Valid', password: PASSWORD } }), 'username');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'dave', password: 'short' } }), 'password');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'me', password: PASSWORD } }), 'username');
    await expectError(await api(url, 'POST', '/users', { auth: basic('alice', PASSWORD), body: { username: 'eve', password: PASSWORD } }), 403, 'DENIED');

    const list = await expectStatus<ListPage<{ username: string; admin: boolean }>>(await api(url, 'GET', '/users?q=ca', { auth: admin }), 200);
    assert.deepEqual(list.items.map((u) => u.username), ['carol']);
    await expectError(await api(url, 'GET', '/users', { auth: basic('alice', PASSWORD) }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/users/carol', { auth: basic('alice', PASSWORD) }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/users/nobody', { auth: admin }), 404, 'NOT_FOUND');

    // A user changes their own password through "me", but not their admin flag.
    const carol = basic('carol', generated);
    assert.equal((await expectStatus(await api(url, 'GET', '/users/me', { auth: carol }), 200)).username, 'carol');
    await expectError(await api(url, 'PATCH', '/users/me', { auth: carol, body: { admin: true } }), 403, 'DENIED');
    await expectInvalid(await api(url, 'PATCH', '/users/me', { auth: carol, body: { password: 'carol-new-password' } }), 'currentPassword');
    await expectStatus(await api(url, 'PATCH', '/users/me', { auth: carol, body: { password: 'carol-new-password', currentPassword: generated } }), 200);
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: carol }), 401, 'UNAUTHORIZED');
    const carolNew = basic('carol', 'carol-new-password');
    await expectStatus(await api(url, 'GET', '/users/me', { auth: carolNew }), 200);

    // An administrator promotes carol; she may then list users.
    assert.equal((await expectStatus(await api(url, 'PATCH', '/users/carol', { auth: admin, body: { admin: true } }), 200)).admin, true);
    assert.equal((await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: carolNew }), 200)).isAdmin, true);
    assert.equal((await expectStatus(await api(url, 'PATCH', '/users/carol', { auth: admin, body: { admin: false } }), 200)).admin, false);

    assert.equal((await api(url, 'DELETE', '/users/carol', { auth: admin })).status, 204);
    await expectError(await api(url, 'GET', '/users/carol', { auth: admin }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'DELETE', '/users/carol', { auth: admin }), 404, 'NOT_FOUND');
    const events = await expectStatus<ListPage<{ action: string; detail: Record<string, unknown> | null }>>(await api(url, 'GET', '/audit?resource=carol&pageSize=500', { auth: admin }), 200);
    const actions = events.items.map((e) => e.action).filter((a) => a.startsWith('user.'));
    assert.deepEqual(actions, ['user.delete', 'user.update', 'user.update', 'user.update', 'user.create']);
  });

  test('users: the list is filtered, sorted and paged by the server (name case ignored); a bad sort names the field', async () => {
    const names = async (query: string) => (await expectStatus<ListPage<{ username: string }>>(await api(url, 'GET', `/users?${query}`, { auth: admin }), 200)).items.map((u) => u.username);
    const all = await names('sort=username');
    assert.deepEqual(all, [...all].sort());
    assert.deepEqual(await names('sort=-username'), [...all].sort().reverse());
    assert.deepEqual(await names('q=ALI'), ['alice']);
    const page = await expectStatus<ListPage<{ username: string }>>(await api(url, 'GET', '/users?sort=username&pageSize=1&page=2', { auth: admin }), 200);
    assert.deepEqual([page.items.map((u) => u.username), page.total], [[all[1]], all.length]);
    const newest = await names('sort=-createdAt');
    assert.equal(newest.at(-1), 'admin', 'the first user is the oldest');
    await expectInvalid(await api(url, 'GET', '/users?sort=password', { auth: admin }), 'sort');
  });

  test('the last administrator can be neither demoted nor deleted', async () => {
    await expectError(await api(url, 'PATCH', '/users/admin', { auth: admin, body: { admin: false } }), 409, 'CONFLICT');
    await expectError(await api(url, 'DELETE', '/users/admin', { auth: admin }), 409, 'CONFLICT');
    assert.equal((await expectStatus(await api(url, 'GET', '/users/me', { auth: admin }), 200)).admin, true);
  });

  test('validation: every offending field is named; unknown fields and non-JSON bodies are refused', async () => {
    const res = await api(url, 'POST', '/projects', { auth: admin, body: { name: 'Bad Name', quotaBytes: -1, color: 'red' } });
    const env = await expectInvalid(res, 'name');
    const fields = (env.errors[0]!.detail as { fields: { path: string; message: string }[] }).fields;
    assert.deepEqual(fields.map((f) => f.path).sort(), ['color', 'name', 'quotaBytes']);
    assert.equal(fields.find((f) => f.path === 'color')!.message, 'unknown field');
    await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: {} }), 'name');
    assert.equal(
      ((await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: {} }), 'name')).errors[0]!.detail as { fields: { message: string }[] }).fields[0]!.message,
      'required',
    );
    await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: '{not json' }), 'body');
    await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: 'name=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 'body');
    await expectInvalid(await api(url, 'GET', '/projects?pageSize=501', { auth: admin }), 'pageSize');
    await expectInvalid(await api(url, 'GET', '/projects?page=zero', { auth: admin }), 'page');
    await expectError(await api(url, 'GET', '/no-such-thing', { auth: admin }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'PUT', '/projects', { auth: admin, body: {} }), 405, 'UNSUPPORTED');
  });
});
