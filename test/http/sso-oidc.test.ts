// Sign-in through a real OpenID provider (oidc-provider in a child process): the portal's browser
// flow, the CLI's loopback flow and its code exchange, the device flow, and the hostile inputs of
// each — driven over plain HTTP (test/e2e/sso-login.test.ts drives the CLI and a real browser).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newVerifier, s256 } from '../../src/auth/oidc/flows.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus } from '../support/api.ts';
import { serverQuery } from '../support/backend.ts';
import { expectError } from '../support/oci.ts';
import { approveDevice, generateSigningKey, signInWithForm, startOidcProvider, type OidcProviderHandle, type OidcTestUser } from '../support/oidc-provider.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { freePort } from '../support/system.ts';

const CALLBACK = '/api/v1/auth/oidc/callback';

function person(login: string, groups: string[]): OidcTestUser {
  const password = `${login}-provider-password`;
  rememberSecret(password, login);
  return { sub: `sub-${login}`, login, password, claims: { preferred_username: login, name: login, email: `${login}@example.com`, email_verified: true, groups } };
}

const alice = person('alice', ['team-a']);
const bob = person('bob', ['team-b']);
const carol = person('carol', ['team-a']);
const dave = person('dave', []);
const erin = person('erin', ['team-a']);

describe('single sign-on through an OpenID provider', () => {
  let provider: OidcProviderHandle;
  let server: TestServer;
  let closed: TestServer;
  let url: string;
  const admin = adminBasic();

  before(async () => {
    const [port, closedPort] = [await freePort(), await freePort()];
    provider = await startOidcProvider({
      clients: [{ clientId: 'berth', redirectUris: [`http://127.0.0.1:${port}${CALLBACK}`, `http://127.0.0.1:${closedPort}${CALLBACK}`] }],
      users: [alice, bob, carol, dave, erin],
      keys: [await generateSigningKey()],
    });
    const oidc = { issuer: provider.issuer, clientId: 'berth', scopes: ['openid', 'profile', 'email', 'groups'], displayName: 'Test <IdP>' };
    server = await startTestServer({ addr: `127.0.0.1:${port}`, auth: { mode: 'oidc', oidc: { ...oidc, redirectURL: `http://127.0.0.1:${port}${CALLBACK}`, recheckInterval: 1 } } });
    closed = await startTestServer({ addr: `127.0.0.1:${closedPort}`, auth: { mode: 'oidc', oidc: { ...oidc, autoOnboard: false, redirectURL: `http://127.0.0.1:${closedPort}${CALLBACK}` } } });
    url = server.url;
  });
  after(async () => {
    await server?.close();
    await closed?.close();
    await provider?.stop();
  });

  /** The flow cookie (berth_sso) each portal sign-in set, by its state: this test is one browser. */
  const browser = new Map<string, string>();

  /** GET without following redirects; a callback carries the cookie its sign-in's start set, as the browser would. */
  const get = (target: string, headers: Record<string, string> = {}) => {
    const state = target.includes(CALLBACK) ? new URL(target).searchParams.get('state') : null;
    const cookie = state === null ? undefined : browser.get(state);
    return fetch(target, { redirect: 'manual', headers: { ...(cookie ? { Cookie: cookie } : {}), ...headers } });
  };

  /** Starts a sign-in at Berth; returns the provider URL it redirects to. */
  async function begin(query: string, base = url): Promise<string> {
    const res = await get(`${base}/api/v1/auth/oidc/login?${query}`);
    assert.equal(res.status, 302, await res.text());
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${provider.issuer}/`), location);
    const flowCookie = /berth_sso=([A-Za-z0-9_-]+)/.exec(res.headers.get('set-cookie') ?? '');
    if (flowCookie) browser.set(new URL(location).searchParams.get('state')!, `berth_sso=${flowCookie[1]}`);
    return location;
  }

  /** The portal flow: Berth → provider form → Berth's callback; returns the callback's answer. */
  async function portal(who: OidcTestUser, query = 'return=/', base = url): Promise<Response> {
    const callback = await signInWithForm(await begin(query, base), who.login, who.password);
    assert.equal(callback.origin, base);
    // The provider's code and state are one-time proofs: the access log must not keep them (the leak scanner checks).
    for (const name of ['code', 'state']) rememberSecret(callback.searchParams.get(name)!, `oidc ${name}`);
    return get(callback.href);
  }

  /** A refused portal sign-in: 302 to the portal's sign-in page with exactly `code`, no session, the flow cookie spent. */
  function assertBackToPortal(res: Response, code: string): void {
    assert.equal(res.status, 302, `back to the portal with ${code}`);
    assert.equal(res.headers.get('location'), `/login?error=${code}`);
    const cookies = res.headers.get('set-cookie') ?? '';
    assert.doesNotMatch(cookies, /berth_session=/, 'no session');
    assert.match(cookies, /berth_sso=;/, 'the flow cookie is cleared');
  }

  function sessionCookie(res: Response): string {
    const header = res.headers.get('set-cookie') ?? '';
    const m = /berth_session=([A-Za-z0-9_-]+)/.exec(header);
    assert.ok(m, `a session cookie: ${header}`);
    rememberSecret(m[1]);
    return `berth_session=${m[1]}`;
  }

  async function auditRows(action: string, actor?: string): Promise<{ actor: string; detail: Record<string, unknown> | null }[]> {
    for (let i = 0; i < 20; i++) {
      const query = new URLSearchParams({ action, ...(actor ? { actor } : {}) });
      const page = await expectStatus<{ items: { actor: string; detail: Record<string, unknown> | null }[] }>(await api(url, 'GET', `/audit?${query}`, { auth: admin }), 200);
      if (page.items.length > 0) return page.items;
      await sleep(50);
    }
    return [];
  }

  /** The CLI's browser flow up to the redirect to its listener; returns Berth's one-time code. */
  async function cliCode(who: OidcTestUser, verifier: string, port = 40123): Promise<string> {
    const callback = await signInWithForm(await begin(`cli_port=${port}&cli_challenge=${s256(verifier)}`), who.login, who.password);
    const res = await get(callback.href);
    assert.equal(res.status, 302, await res.text());
    const back = new URL(res.headers.get('location')!);
    assert.equal(back.origin, `http://127.0.0.1:${port}`);
    assert.equal(back.pathname, '/callback');
    const code = back.searchParams.get('code');
    assert.ok(code, `a code: ${back.href}`);
    rememberSecret(code);
    return code;
  }

  test('GET /auth/config tells the portal and the CLI how to sign in', async () => {
    const config = await expectStatus(await api(url, 'GET', '/auth/config'), 200);
    assert.deepEqual(config, { mode: 'oidc', oidc: { displayName: 'Test <IdP>', loginPath: '/api/v1/auth/oidc/login' } });
  });

  test('portal: sign in at the provider, come back with a session; group membership gives the project role', async () => {
    // Only alice's group is a member of the project.
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'team-a-only', public: false } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/team-a-only/members', { auth: admin, body: { group: 'team-a', role: 'developer' } }), 201);

    const res = await portal(alice, `return=${encodeURIComponent('/projects/team-a-only?tab=members')}`);
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get('location'), '/projects/team-a-only?tab=members');
    const cookie = sessionCookie(res);
    assert.match(res.headers.get('set-cookie')!, /HttpOnly; SameSite=Strict/);
    const me = await expectStatus(await api(url, 'GET', '/auth/whoami', { headers: { cookie } }), 200);
    assert.deepEqual(me, { kind: 'user', name: 'alice', isAdmin: false });
    await expectStatus(await api(url, 'GET', '/projects/team-a-only', { headers: { cookie } }), 200, 'alice sees her group\'s project');

    const logins = await auditRows('login', 'alice');
    assert.ok(logins.some((row) => row.detail?.['via'] === 'oidc'), JSON.stringify(logins));

    // bob (team-b) signs in too, but sees nothing of team-a's project.
    const bobCookie = sessionCookie(await portal(bob));
    await expectError(await api(url, 'GET', '/projects/team-a-only', { headers: { cookie: bobCookie } }), 404, 'NOT_FOUND');
  });

  test('a fresh OIDC session creates a personal access token, which works with Basic (docker login)', async () => {
    const cookie = sessionCookie(await portal(carol));
    const created = await expectStatus<{ token: string }>(
      await api(url, 'POST', '/users/me/tokens', { headers: { cookie, 'X-Berth-Request': '1' }, body: { name: 'docker', expiresInDays: 30 } }),
      201,
    );
    assert.match(created.token, /^berth_pat_/);
    assert.deepEqual(await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: basic('carol', created.token) }), 200), { kind: 'user', name: 'carol', isAdmin: false });
    const res = await fetch(`${url}/service/token?service=berth&scope=repository:team-a-only/app:push,pull`, { headers: { Authorization: basic('carol', created.token) } });
    const { token } = await expectStatus<{ token: string }>(res, 200);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: { actions: string[] }[] };
    assert.deepEqual(claims.access[0]!.actions.sort(), ['pull', 'push'], 'push and pull from the group role alone');
  });

  test('local users keep their password; an OIDC user\'s password login is refused with the hint', async () => {
    await expectStatus(await api(url, 'POST', '/auth/session', { body: { username: 'admin', password: 'test-admin-password' } }), 201);
    const refused = await expectError(await api(url, 'POST', '/auth/session', { body: { username: 'alice', password: alice.password } }), 401, 'UNAUTHORIZED');
    assert.match(refused.errors[0]!.message, /--sso/);
  });

  test('CLI: the one-time code works once, only with the verifier, only while fresh; a name clash keeps it', async () => {
    const verifier = newVerifier();
    rememberSecret(verifier);
    const code = await cliCode(bob, verifier);
    await expectInvalid(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code, verifier: newVerifier(), tokenName: 'cli-1' } }), 'verifier');
    // A wrong verifier used the code up.
    await expectInvalid(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code, verifier, tokenName: 'cli-1' } }), 'code');

    const second = newVerifier();
    rememberSecret(second);
    const code2 = await cliCode(bob, second);
    const issued = await expectStatus<{ username: string; token: string; name: string; expiresAt: string }>(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: code2, verifier: second, tokenName: 'cli-1' } }), 200);
    assert.equal(issued.username, 'bob');
    assert.equal(issued.name, 'cli-1');
    const days = (Date.parse(issued.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 89 && days <= 90, `expires in 90 days: ${issued.expiresAt}`);
    assert.equal(await (await api(url, 'GET', '/auth/whoami', { auth: basic('bob', issued.token) })).status, 200);
    // Replayed: refused.
    await expectInvalid(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: code2, verifier: second, tokenName: 'cli-2' } }), 'code');

    // A taken name: 409, and the code still works for the next name.
    const third = newVerifier();
    rememberSecret(third);
    const code3 = await cliCode(bob, third);
    await expectError(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: code3, verifier: third, tokenName: 'cli-1' } }), 409, 'CONFLICT');
    await expectStatus(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: code3, verifier: third, tokenName: 'cli-1-2' } }), 200);

    // Expired (10 minutes after the sign-in): refused.
    const fourth = newVerifier();
    rememberSecret(fourth);
    const code4 = await cliCode(bob, fourth);
    await serverQuery(server.dataDir, "update auth_flows set expires_at = 1 where kind = 'oidc-cli-code'");
    await expectInvalid(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: code4, verifier: fourth, tokenName: 'cli-3' } }), 'code');

    const logins = await auditRows('login', 'bob');
    assert.ok(logins.some((row) => row.detail?.['via'] === 'oidc-cli'), JSON.stringify(logins));
  });

  test('device flow: early polls never reach the provider; approval gives a token once; denial ends it', async () => {
    const start = await expectStatus<{ flow: string; userCode: string; verificationUri: string; verificationUriComplete: string; interval: number; expiresIn: number }>(
      await api(url, 'POST', '/auth/oidc/device'),
      200,
    );
    rememberSecret(start.flow);
    assert.ok(start.interval >= 1 && start.expiresIn > 0 && start.expiresIn <= 600, JSON.stringify({ interval: start.interval, expiresIn: start.expiresIn }));
    assert.ok(start.verificationUriComplete.startsWith(provider.issuer));
    const tokenRequests = async () => (await provider.stats())['/token'] ?? 0;
    const before = await tokenRequests();
    const early = await expectStatus(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: start.flow, tokenName: 'device' } }), 200);
    assert.deepEqual(early, { status: 'slow_down' });
    assert.equal(await tokenRequests(), before, 'a poll sooner than the interval is answered by Berth alone');

    await sleep(start.interval * 1000);
    const pending = await expectStatus(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: start.flow, tokenName: 'device' } }), 200);
    assert.deepEqual(pending, { status: 'pending' });

    await approveDevice(start.verificationUriComplete, dave.login, dave.password);
    await sleep(start.interval * 1000);
    const done = await expectStatus<{ status: string; username: string; token: string; name: string }>(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: start.flow, tokenName: 'device' } }), 200);
    assert.equal(done.status, 'done');
    assert.equal(done.username, 'dave');
    assert.equal(done.name, 'device');
    assert.equal(await (await api(url, 'GET', '/auth/whoami', { auth: basic('dave', done.token) })).status, 200);
    await expectInvalid(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: start.flow, tokenName: 'device' } }), 'flow');
    const logins = await auditRows('login', 'dave');
    assert.ok(logins.some((row) => row.detail?.['via'] === 'oidc-device'), JSON.stringify(logins));

    const denied = await expectStatus<{ flow: string; verificationUriComplete: string; interval: number }>(await api(url, 'POST', '/auth/oidc/device'), 200);
    rememberSecret(denied.flow);
    await approveDevice(denied.verificationUriComplete, dave.login, dave.password, { deny: true });
    await sleep(denied.interval * 1000);
    assert.deepEqual(await expectStatus(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: denied.flow, tokenName: 'device-2' } }), 200), { status: 'denied' });
    await expectInvalid(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: denied.flow, tokenName: 'device-2' } }), 'flow');
  });

  test('hostile sign-in starts: foreign return paths, privileged or malformed CLI ports, oversize values', async () => {
    const login = (query: string) => get(`${url}/api/v1/auth/oidc/login?${query}`);
    for (const target of ['//evil.example', 'https://evil.example/', '/\\evil.example', 'evil', '/\t/evil.example', `/${'a'.repeat(2000)}`]) {
      const env = await expectInvalid(await login(`return=${encodeURIComponent(target)}`), 'return');
      assert.ok(!JSON.stringify(env).includes('evil.example'), 'the value is not echoed');
    }
    await expectInvalid(await login(`cli_port=22&cli_challenge=${s256(newVerifier())}`), 'cli_port');
    await expectInvalid(await login(`cli_port=99999&cli_challenge=${s256(newVerifier())}`), 'cli_port');
    await expectInvalid(await login(`cli_port=8080&cli_challenge=short`), 'cli_challenge');
    await expectInvalid(await login('cli_port=8080'), 'cli_challenge');
    await expectInvalid(await login(`cli_port=127.0.0.2:80&cli_challenge=${s256(newVerifier())}`), 'cli_port');
    await expectInvalid(await api(url, 'POST', '/auth/oidc/cli/exchange', { body: { code: 'x'.repeat(5000), verifier: 'v'.repeat(500), tokenName: 'a' } }), 'code');
    await expectInvalid(await api(url, 'POST', '/auth/oidc/device/poll', { body: { flow: 'f'.repeat(5000), tokenName: 'a' } }), 'flow');
  });

  test('hostile callbacks: unknown state, another flow\'s state, the provider\'s refusal, oversize values — never a 500', async () => {
    await expectInvalid(await get(`${url}${CALLBACK}?state=nosuchstate&code=abc`), 'state');
    await expectInvalid(await get(`${url}${CALLBACK}?code=abc`), 'state');
    await expectInvalid(await get(`${url}${CALLBACK}?state=${'s'.repeat(600)}&code=abc`), 'state');
    await expectInvalid(await get(`${url}${CALLBACK}?state=abc&code=${'c'.repeat(5000)}`), 'code');

    // The state of flow A with the code of flow B: A's PKCE verifier does not fit B's code.
    const a = new URL(await begin('return=/'));
    const callbackB = await signInWithForm(await begin('return=/'), alice.login, alice.password);
    const mixed = new URL(callbackB);
    mixed.searchParams.set('state', a.searchParams.get('state')!);
    // The portal started it (this browser has its flow cookie): the refusal sends the browser back
    // to the portal's sign-in page with a fixed code, and no session.
    const res = await get(mixed.href);
    assertBackToPortal(res, 'sso_failed');
    await res.arrayBuffer();
    // And flow A is used up.
    assertBackToPortal(await get(mixed.href), 'sso_expired');

    // A callback URL sent to another browser (login CSRF: the victim would be signed in as the
    // attacker): without the cookie of the browser that started the sign-in, refused.
    const elsewhere = await signInWithForm(await begin('return=/'), alice.login, alice.password);
    const victim = await fetch(elsewhere.href, { redirect: 'manual' });
    const refusedHere = await expectInvalid(victim, 'state');
    assert.match(refusedHere.errors[0]!.message, /another browser/);
    assert.equal(victim.headers.get('set-cookie'), null, 'no session');

    // The person cancels at the provider: back to the portal with sso_denied, no session.
    const cancelled = await signInWithForm(await begin('return=/'), alice.login, alice.password, { deny: true });
    assert.equal(cancelled.searchParams.get('error'), 'access_denied');
    assertBackToPortal(await get(cancelled.href), 'sso_denied');

    // A provider error text with markup never reaches the portal: only the fixed code does.
    const c = new URL(await begin('return=/'));
    const crafted = new URL(`${url}${CALLBACK}`);
    crafted.searchParams.set('state', c.searchParams.get('state')!);
    crafted.searchParams.set('iss', provider.issuer);
    crafted.searchParams.set('error', 'access_denied');
    crafted.searchParams.set('error_description', '<script>alert(1)</script>');
    const markup = await get(crafted.href);
    assertBackToPortal(markup, 'sso_denied');
    assert.ok(!(await markup.text()).includes('<script>'));

    // The same answers to a sign-in the portal did not start in this browser stay JSON errors.
    const env = await expectError(await fetch(cancelled.href, { redirect: 'manual' }), 400, 'INVALID');
    assert.ok(!JSON.stringify(env).includes('<script>'));

    // A CLI sign-in cancelled at the provider: the CLI's listener is told, so it stops waiting.
    const cliCancelled = await signInWithForm(await begin(`cli_port=40124&cli_challenge=${s256(newVerifier())}`), alice.login, alice.password, { deny: true });
    const toCli = await get(cliCancelled.href);
    assert.equal(toCli.status, 302);
    const told = new URL(toCli.headers.get('location')!);
    assert.equal(`${told.origin}${told.pathname}`, 'http://127.0.0.1:40124/callback');
    assert.equal(told.searchParams.get('error'), 'denied');
    assert.match(told.searchParams.get('error_description') ?? '', /access_denied/);
    assert.equal(told.searchParams.get('code'), null);

    const failures = await auditRows('login.failed');
    assert.ok(failures.some((row) => String(row.detail?.['reason']).includes('access_denied')), JSON.stringify(failures));
  });

  test('autoOnboard false: a person Berth does not know is refused with the reason', async () => {
    const res = await portal(erin, 'return=/', closed.url);
    assertBackToPortal(res, 'sso_not_onboarded');
    const failures = await expectStatus<{ items: { detail: Record<string, unknown> | null }[] }>(await api(closed.url, 'GET', '/audit?action=login.failed', { auth: admin }), 200);
    assert.ok(failures.items.some((row) => String(row.detail?.['reason']).includes('not a Berth user yet')), 'the reason is in the audit log');
  });

  test('the provider is asked again (recheckInterval): group changes follow, and a person it drops loses tokens and sessions', async () => {
    const frank = person('frank', ['team-b']);
    await provider.setUsers([alice, bob, carol, dave, erin, frank]);
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'recheck' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/recheck/members', { auth: admin, body: { group: 'team-a', role: 'developer' } }), 201);
    const cookie = sessionCookie(await portal(frank));
    const { token } = await expectStatus<{ token: string }>(
      await api(url, 'POST', '/users/me/tokens', { headers: { cookie, 'X-Berth-Request': '1' }, body: { name: 'ci', expiresInDays: 30 } }),
      201,
    );
    rememberSecret(token);
    const pushPull = async () => {
      const res = await fetch(`${url}/service/token?service=berth&scope=repository:recheck/app:push,pull`, { headers: { Authorization: basic('frank', token) } });
      if (res.status !== 200) return res.status;
      const granted = JSON.parse(Buffer.from(((await res.json()) as { token: string }).token.split('.')[1]!, 'base64url').toString()) as { access: { actions: string[] }[] };
      return (granted.access[0]?.actions ?? []).sort();
    };
    assert.deepEqual(await pushPull(), []);
    // frank joins team-a at the provider: with his token alone (no sign-in), the role follows.
    await provider.setUsers([alice, bob, carol, dave, erin, { ...frank, claims: { ...frank.claims, groups: ['team-b', 'team-a'] } }]);
    await sleep(1_100);
    assert.deepEqual(await pushPull(), ['pull', 'push']);
    const groupRows = await auditRows('user.groups', 'frank');
    assert.ok(groupRows.some((r) => (r.detail?.['added'] as string[] | undefined)?.includes('team-a')), JSON.stringify(groupRows));
    // The provider drops frank: his token, and his portal session, stop working at the next check.
    await provider.setUsers([alice, bob, carol, dave, erin]);
    await sleep(1_100);
    assert.equal(await pushPull(), 401);
    await expectError(await api(url, 'GET', '/auth/whoami', { headers: { cookie } }), 401, 'UNAUTHORIZED');
    const revoked = await expectStatus<{ items: { resource: string; detail: Record<string, unknown> }[] }>(await api(url, 'GET', '/audit?action=user.revoke&resource=frank', { auth: admin }), 200);
    assert.ok(revoked.items.some((r) => r.resource === 'frank' && /no longer accepts/.test(String(r.detail['why']))), JSON.stringify(revoked.items));
    // The provider's refresh token is a secret: never in a log line (the leak scanner checks the server's).
  });

  test('an administrator tests the provider: discovery and the device flow; a person cannot be looked up there', async () => {
    const result = await expectStatus<{ ok: boolean; mode: string; target: string; deviceFlow: boolean }>(await api(url, 'POST', '/auth/test', { auth: admin, body: {} }), 200);
    assert.deepEqual([result.ok, result.mode, result.target, result.deviceFlow], [true, 'oidc', provider.issuer, true]);
    await expectInvalid(await api(url, 'POST', '/auth/test', { auth: admin, body: { username: 'alice' } }), 'username');
    await expectError(await api(url, 'POST', '/auth/test', { body: {} }), 401, 'UNAUTHORIZED');
  });

  test('a provider that is down: the portal is told sso_unavailable, the API 503 with Retry-After, never a 500', async () => {
    const started = new URL(await begin('return=/'));
    await provider.stop();
    const callback = new URL(`${url}${CALLBACK}`);
    callback.searchParams.set('state', started.searchParams.get('state')!);
    callback.searchParams.set('iss', provider.issuer);
    callback.searchParams.set('code', 'a-code-nobody-can-redeem');
    // The portal's sign-in comes back to the portal; the API's flows answer 503 (below).
    assertBackToPortal(await get(callback.href), 'sso_unavailable');
    // The administrator's test asks the provider afresh: it says so, with a 200.
    const tested = await expectStatus<{ ok: boolean; error: string }>(await api(url, 'POST', '/auth/test', { auth: admin, body: {} }), 200);
    assert.equal(tested.ok, false);
    assert.ok(tested.error.length > 0);
    const device = await api(url, 'POST', '/auth/oidc/device');
    assert.equal(device.headers.get('retry-after'), '10');
    await expectError(device, 503, 'UNAVAILABLE');
  });

  test('the flows are off when auth.mode is local', async () => {
    const local = await startTestServer();
    try {
      assert.deepEqual(await expectStatus(await api(local.url, 'GET', '/auth/config'), 200), { mode: 'local' });
      await expectError(await get(`${local.url}/api/v1/auth/oidc/login`), 404, 'NOT_FOUND');
      await expectError(await api(local.url, 'POST', '/auth/oidc/device'), 404, 'NOT_FOUND');
    } finally {
      await local.close();
    }
  });
});
