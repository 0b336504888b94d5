// Personal access tokens stop working when they expire, and API sessions at api.sessionTTL — on a
// clock the test moves (node:test's Date mock), not by sleeping; a password set by the CLI on the
// data directory ends earlier refresh tokens.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { adminBasic, api, basic, expectStatus } from '../support/api.ts';
import { testBackend } from '../support/backend.ts';
import { expectError, pushImage, uniqueName } from '../support/oci.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'expiry-user-password';
const DAY = 86_400_000;

describe('expiry on a moved clock', () => {
  let server: TestServer;
  let url: string;
  let repo: string;
  before(async () => {
    server = await startTestServer({ api: { sessionTTL: '1h' }, auth: { tokenTTL: '30d' } });
    url = server.url;
    repo = uniqueName('expiry/app');
    await pushImage(url, repo, 'v1');
  });
  after(() => server.close());

  test('a personal access token, and every token and session made from it, stop when it expires; a session stops at sessionTTL', async (t) => {
    const user = uniqueName('expiring');
    await expectStatus(await api(url, 'POST', '/users', { auth: adminBasic(), body: { username: user, password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/expiry/members', { auth: adminBasic(), body: { username: user, role: 'developer' } }), 201);
    const { token: pat } = await expectStatus<{ token: string }>(await api(url, 'POST', '/users/me/tokens', { auth: basic(user, PASSWORD), body: { name: 'day', expiresInDays: 1 } }), 201);
    const login = await api(url, 'POST', '/auth/session', { body: { username: user, password: PASSWORD } });
    await expectStatus(login, 201);
    const cookie = /berth_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')![0];
    const issued = await fetch(`${url}/service/token?service=berth&offline_token=true&scope=repository:${repo}:pull`, { headers: { Authorization: basic(user, pat) } });
    const { token: access, refresh_token: refresh } = (await issued.json()) as { token: string; refresh_token: string };
    const pull = () => fetch(`${url}/v2/${repo}/manifests/v1`, { headers: { Authorization: `Bearer ${access}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } }).then(async (r) => (await r.arrayBuffer(), r.status));
    const refreshStatus = () =>
      fetch(`${url}/service/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, service: 'berth' }) }).then(async (r) => (await r.arrayBuffer(), r.status));
    const whoami = (auth: Record<string, string>) => api(url, 'GET', '/auth/whoami', { headers: auth });

    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    await expectStatus(await whoami({ Cookie: cookie }), 200);
    t.mock.timers.tick(3_600_000 - 60_000);
    await expectStatus(await whoami({ Cookie: cookie }), 200, 'a minute before sessionTTL');
    t.mock.timers.tick(61_000);
    const ended = await expectError(await whoami({ Cookie: cookie }), 401, 'UNAUTHORIZED');
    assert.match(ended.errors[0]!.message, /session expired/);

    await expectStatus(await whoami({ Authorization: basic(user, pat) }), 200, 'the token still works within its day');
    assert.equal(await pull(), 200);
    assert.equal(await refreshStatus(), 200);
    t.mock.timers.tick(DAY);
    const expired = await expectError(await whoami({ Authorization: basic(user, pat) }), 401, 'UNAUTHORIZED');
    assert.match(expired.errors[0]!.message, /personal access token "day" expired on /);
    assert.equal(await pull(), 401, 'an access token from the expired token');
    assert.equal(await refreshStatus(), 400, 'a refresh token from it');
    const issue = await fetch(`${url}/service/token?service=berth`, { headers: { Authorization: basic(user, pat) } });
    assert.equal(issue.status, 401);
    await issue.arrayBuffer();
  });
});

// The CLI's --data-dir mode opens the embedded database only; on PostgreSQL it has no data directory to act on.
const cliOnDataDir = testBackend() === 'sqlite-fs' ? {} : { skip: 'berth user passwd --data-dir works on the embedded SQLite database only' };

test('berth user passwd on the data directory makes every earlier refresh token fail at once', cliOnDataDir, async () => {
  const server = await startTestServer();
  try {
    const issued = await fetch(`${server.url}/service/token?service=berth&offline_token=true`, { headers: { Authorization: adminBasic() } });
    const { refresh_token: refresh } = (await issued.json()) as { refresh_token: string };
    const grant = () =>
      fetch(`${server.url}/service/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, service: 'berth' }) }).then(async (r) => (await r.arrayBuffer(), r.status));
    assert.equal(await grant(), 200);
    const bin = new URL('../../bin/berth.js', import.meta.url).pathname;
    rememberSecret('a-new-admin-password', 'admin');
    const cli = spawnSync(process.execPath, [bin, 'user', 'passwd', 'admin', '--data-dir', server.dataDir, '--password-stdin'], { input: 'a-new-admin-password\n', encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(await grant(), 400, 'the refresh token from the old password is refused');
  } finally {
    await server.close();
  }
});
