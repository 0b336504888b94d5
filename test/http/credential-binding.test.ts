// Every token and session is bound to the credential that issued it and stops working when that
// credential is revoked, expires or changes (issue: security review findings 2, 3, 4, 7, 8, 9, 10).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { openMetadata } from '../../src/metadata/index.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus } from '../support/api.ts';
import { expectError, pushImage, uniqueName } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'a-user-password-1';

describe('credentials bind every token and session', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  let repo: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
    repo = uniqueName('bound/app');
    await pushImage(url, repo, 'v1');
  });
  after(() => server.close());

  async function newUser(name = uniqueName('user')): Promise<string> {
    await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username: name, password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', `/projects/bound/members`, { auth: admin, body: { username: name, role: 'developer' } }), 201);
    return name;
  }

  async function newPat(user: string, name: string, expiresInDays?: number): Promise<string> {
    const body = await expectStatus<{ token: string }>(
      await api(url, 'POST', '/users/me/tokens', { auth: basic(user, PASSWORD), body: { name, ...(expiresInDays ? { expiresInDays } : {}) } }),
      201,
    );
    return body.token;
  }

  /** GET /service/token with Basic credentials; the JSON answer. */
  async function tokenFor(user: string, secret: string, query = `scope=repository:${repo}:pull&offline_token=true`): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${url}/service/token?service=berth&${query}`, { headers: { Authorization: basic(user, secret) } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** POST /service/token with the refresh_token grant, as containerd does. */
  async function refresh(refreshToken: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${url}/service/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth', scope: `repository:${repo}:pull` }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function pullStatus(accessToken: string): Promise<number> {
    const res = await fetch(`${url}/v2/${repo}/manifests/v1`, { headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    await res.arrayBuffer();
    return res.status;
  }

  async function openSession(user: string, secret: string): Promise<string> {
    const res = await api(url, 'POST', '/auth/session', { body: { username: user, password: secret } });
    await expectStatus(res, 201);
    return /berth_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
  }

  async function whoami(cookie: string): Promise<number> {
    const res = await api(url, 'GET', '/auth/whoami', { headers: { Cookie: `berth_session=${cookie}` } });
    await res.arrayBuffer();
    return res.status;
  }

  function claims(jwt: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
  }

  test('a refresh token from a personal access token dies with it, and never outlives it', async () => {
    const user = await newUser();
    const pat = await newPat(user, 'ci', 1);
    const issued = await tokenFor(user, pat);
    assert.equal(issued.status, 200);
    const refreshToken = issued.body.refresh_token as string;
    assert.ok(refreshToken, 'docker login with a PAT gets a refresh token');
    assert.ok((claims(refreshToken).exp as number) <= Math.floor(Date.now() / 1000) + 86_400, 'it expires with the one-day token');
    const accessToken = issued.body.token as string;
    assert.equal(await pullStatus(accessToken), 200);
    assert.equal((await refresh(refreshToken)).status, 200, 'the refresh grant works while the token does');
    const session = await openSession(user, pat);
    assert.equal(await whoami(session), 200);

    await expectStatus(await api(url, 'DELETE', '/users/me/tokens/ci', { auth: basic(user, PASSWORD) }), 204);
    const refused = await refresh(refreshToken);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
    assert.match(String(refused.body.error_description), /revoked/);
    assert.equal(await pullStatus(accessToken), 401, 'access tokens from the revoked token stop at once');
    assert.equal(await whoami(session), 401, 'a session opened with the revoked token ends');
  });

  test('a password change ends refresh tokens, access tokens and sessions from the old password', async () => {
    const user = await newUser();
    const issued = await tokenFor(user, PASSWORD);
    const session = await openSession(user, PASSWORD);
    const newPassword = 'a-new-password-2';
    await expectStatus(await api(url, 'PATCH', '/users/me', { auth: basic(user, PASSWORD), body: { password: newPassword, currentPassword: PASSWORD } }), 200);
    assert.equal((await refresh(issued.body.refresh_token as string)).status, 400);
    assert.equal(await pullStatus(issued.body.token as string), 401);
    assert.equal(await whoami(session), 401);
    assert.equal((await tokenFor(user, newPassword)).status, 200);
  });

  test("an administrator's password reset ends every session of the user; personal access tokens keep working", async () => {
    const user = await newUser();
    const pat = await newPat(user, 'laptop');
    const passwordSession = await openSession(user, PASSWORD);
    const patSession = await openSession(user, pat);
    await expectStatus(await api(url, 'PATCH', `/users/${user}`, { auth: admin, body: { password: 'reset-by-admin-3' } }), 200);
    assert.equal(await whoami(passwordSession), 401);
    assert.equal(await whoami(patSession), 401, 'a reset ends sessions opened with a token too');
    assert.equal((await tokenFor(user, pat)).status, 200, 'the README says: personal access tokens survive a reset');
  });

  test('a refresh token never carries over to a new user of the same name', async () => {
    const user = await newUser();
    const issued = await tokenFor(user, PASSWORD);
    const session = await openSession(user, PASSWORD);
    await expectStatus(await api(url, 'DELETE', `/users/${user}`, { auth: admin }), 204);
    await newUser(user);
    assert.equal((await refresh(issued.body.refresh_token as string)).status, 400);
    assert.equal(await pullStatus(issued.body.token as string), 401, "the old user's access token does not work for the new one");
    assert.equal(await whoami(session), 401);
    assert.equal((await tokenFor(user, PASSWORD)).status, 200, 'the new user logs in normally');
  });

  test('a disabled, refreshed or deleted robot: its access tokens stop working at once', async () => {
    const created = await expectStatus<{ name: string; secret: string }>(
      await api(url, 'POST', '/robots', { auth: admin, body: { name: uniqueName('puller'), project: 'bound', permissions: [{ project: 'bound', actions: ['pull'] }] } }),
      201,
    );
    const issued = await tokenFor(created.name, created.secret, `scope=repository:${repo}:pull`);
    assert.equal(issued.status, 200);
    const robotToken = issued.body.token as string;
    assert.equal(await pullStatus(robotToken), 200);
    const path = `/robots/${encodeURIComponent(created.name)}`;
    await expectStatus(await api(url, 'PATCH', path, { auth: admin, body: { disabled: true } }), 200);
    assert.equal(await pullStatus(robotToken), 401, 'disabled');
    await expectStatus(await api(url, 'PATCH', path, { auth: admin, body: { disabled: false } }), 200);
    assert.equal(await pullStatus(robotToken), 200, 'enabled again');
    const rotated = await expectStatus<{ secret: string }>(await api(url, 'POST', `${path}/refresh`, { auth: admin }), 200);
    assert.equal(await pullStatus(robotToken), 401, 'a refreshed secret ends tokens from the old one');
    const fresh = (await tokenFor(created.name, rotated.secret, `scope=repository:${repo}:pull`)).body.token as string;
    assert.equal(await pullStatus(fresh), 200);
    await expectStatus(await api(url, 'DELETE', path, { auth: admin }), 204);
    const res = await fetch(`${url}/v2/${repo}/manifests/v1`, { headers: { Authorization: `Bearer ${fresh}` } });
    const env = await expectError(res, 401, 'UNAUTHORIZED');
    assert.match(env.errors[0]!.message, /revoked/);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('a disabled robot, a revoked or expired token are told so — only to whoever holds that very secret', async () => {
    const created = await expectStatus<{ name: string; secret: string }>(
      await api(url, 'POST', '/robots', { auth: admin, body: { name: uniqueName('told'), project: 'bound', permissions: [{ project: 'bound', actions: ['pull'] }] } }),
      201,
    );
    await expectStatus(await api(url, 'PATCH', `/robots/${encodeURIComponent(created.name)}`, { auth: admin, body: { disabled: true } }), 200);
    const told = await fetch(`${url}/service/token?service=berth`, { headers: { Authorization: basic(created.name, created.secret) } });
    assert.match((await expectError(told, 401, 'UNAUTHORIZED')).errors[0]!.message, /robot account "robot\$bound\+told-[0-9a-f]+" is disabled/);
    const guess = await fetch(`${url}/service/token?service=berth`, { headers: { Authorization: basic(created.name, 'not-the-secret') } });
    assert.equal((await expectError(guess, 401, 'UNAUTHORIZED')).errors[0]!.message, 'invalid username or password', 'no hint without the secret');

    const user = await newUser();
    const pat = await newPat(user, 'gone');
    await expectStatus(await api(url, 'DELETE', '/users/me/tokens/gone', { auth: basic(user, PASSWORD) }), 204);
    const revoked = await api(url, 'GET', '/auth/whoami', { auth: basic(user, pat) });
    assert.match((await expectError(revoked, 401, 'UNAUTHORIZED')).errors[0]!.message, /personal access token "gone" was revoked/);
    const bearer = await api(url, 'GET', '/auth/whoami', { auth: `Bearer ${pat}` });
    assert.match((await expectError(bearer, 401, 'UNAUTHORIZED')).errors[0]!.message, /was revoked/);
    const unknown = await api(url, 'GET', '/auth/whoami', { auth: `Bearer berth_pat_${'x'.repeat(43)}` });
    assert.equal((await expectError(unknown, 401, 'UNAUTHORIZED')).errors[0]!.message, 'invalid personal access token');
  });

  test('a personal access token cannot change the password or mint a longer-lived token', async () => {
    const user = await newUser();
    const pat = await newPat(user, 'short', 2);
    const withPat = basic(user, pat);
    await expectInvalid(await api(url, 'PATCH', '/users/me', { auth: withPat, body: { password: 'stolen-password-9' } }), 'currentPassword');
    await expectInvalid(await api(url, 'PATCH', '/users/me', { auth: withPat, body: { password: 'stolen-password-9', currentPassword: 'guess-guess' } }), 'currentPassword');
    await expectInvalid(await api(url, 'POST', '/users/me/tokens', { auth: withPat, body: { name: 'forever' } }), 'currentPassword');
    await expectInvalid(await api(url, 'POST', '/users/me/tokens', { auth: withPat, body: { name: 'forever', currentPassword: PASSWORD } }), 'expiresInDays');
    await expectInvalid(await api(url, 'POST', '/users/me/tokens', { auth: withPat, body: { name: 'longer', expiresInDays: 3, currentPassword: PASSWORD } }), 'expiresInDays');
    await expectStatus(await api(url, 'POST', '/users/me/tokens', { auth: withPat, body: { name: 'shorter', expiresInDays: 1, currentPassword: PASSWORD } }), 201);
    const patSession = await openSession(user, pat);
    await expectInvalid(
      await api(url, 'POST', '/users/me/tokens', { headers: { Cookie: `berth_session=${patSession}`, 'X-Berth-Request': '1' }, body: { name: 'via-session' } }),
      'currentPassword',
    );
    await expectStatus(await api(url, 'PATCH', '/users/me', { auth: withPat, body: { password: 'changed-password-4', currentPassword: PASSWORD } }), 200);
    // With the password itself, or a fresh password session, no current password is asked for tokens.
    await expectStatus(await api(url, 'POST', '/users/me/tokens', { auth: basic(user, 'changed-password-4'), body: { name: 'by-password' } }), 201);
    const session = await openSession(user, 'changed-password-4');
    await expectStatus(await api(url, 'POST', '/users/me/tokens', { headers: { Cookie: `berth_session=${session}`, 'X-Berth-Request': '1' }, body: { name: 'by-session' } }), 201);
    await expectInvalid(await api(url, 'PATCH', '/users/me', { auth: basic(user, 'changed-password-4'), body: { password: 'x-password-5' } }), 'currentPassword');
  });

  test('a change made with the session cookie must come from this site (Origin or X-Berth-Request)', async () => {
    const robot = await expectStatus<{ name: string }>(
      await api(url, 'POST', '/robots', { auth: admin, body: { name: uniqueName('csrf'), project: 'bound', permissions: [{ project: 'bound', actions: ['pull'] }] } }),
      201,
    );
    const cookie = await openSession('admin', (await import('../support/server.ts')).ADMIN_PASSWORD);
    const path = `/robots/${encodeURIComponent(robot.name)}/refresh`;
    const send = (headers: Record<string, string>) => api(url, 'POST', path, { headers: { Cookie: `berth_session=${cookie}`, ...headers } });
    const evil = await expectError(await send({ Origin: 'http://evil.example' }), 403, 'DENIED');
    assert.match(evil.errors[0]!.message, /cross-site/);
    assert.ok(!JSON.stringify(evil).includes('evil.example'), 'the Origin is not echoed');
    await expectError(await send({ Origin: 'null' }), 403, 'DENIED');
    await expectError(await send({}), 403, 'DENIED');
    await expectStatus(await send({ Origin: url }), 200, 'the own origin');
    await expectStatus(await send({ 'X-Berth-Request': '1' }), 200, 'the custom header');
    await expectStatus(await api(url, 'GET', '/auth/whoami', { headers: { Cookie: `berth_session=${cookie}`, Origin: 'http://evil.example' } }), 200, 'reads are not changes');
    await expectStatus(await api(url, 'POST', path, { auth: admin, headers: { Origin: 'http://evil.example' } }), 200, 'Basic is not ambient: no Origin check');
  });
});

test('an unknown user name costs the same argon2 check as a wrong password', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-timing-'));
  const meta = await openMetadata(dir);
  try {
    await meta.users.create('known', await hashPassword('the-right-password'), false);
    const auth = new Authenticator(meta, { pairFree: 1_000, userFree: 1_000, addressFree: 1_000 });
    let attempt = 0;
    const time = async (user: string) => {
      const started = process.hrtime.bigint();
      // A fresh address each time: this measures the check, not the throttle.
      assert.equal((await auth.authenticate(user, 'wrong-password', { client: `10.0.0.${++attempt}`, via: 'api' })).identity, undefined);
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    await time('nobody-0');
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 10; i++) {
      known.push(await time('known'));
      unknown.push(await time(`nobody-${i + 1}`));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    // Before: ~17 ms against ~0.3 ms. An argon2 check for both puts the ratio near 1.
    assert.ok(median(unknown) >= 0.5 * median(known), `unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms`);
  } finally {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
