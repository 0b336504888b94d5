// Berth with auth.mode ldap against a real OpenLDAP (slapd, support/slapd.ts): directory users get
// tokens with their directory password, become users at their first sign-in, act in projects only
// through the roles of their groups (nested ones too), the admin group makes administrators, a
// change of groups is audited, a person the directory stops listing loses every credential, and a
// directory that is down is a 503 — while the local admin keeps working.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, adminBasic, basic, expectStatus } from '../support/api.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startSlapd, type SlapdHandle } from '../support/slapd.ts';

const PROJECT = 'ldapteam';
const REPO = `${PROJECT}/app`;

describe('auth.mode ldap: directory users, groups as members', { timeout: 120_000 }, () => {
  let ldap: SlapdHandle;
  let server: TestServer;

  before(async () => {
    ldap = await startSlapd();
    for (const u of ldap.users) rememberSecret(u.password, u.uid);
    server = await startTestServer({
      auth: {
        mode: 'ldap',
        ldap: {
          url: ldap.url,
          bindDN: ldap.serviceDN,
          bindPassword: ldap.servicePassword,
          baseDN: ldap.peopleDN,
          userFilter: '(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))',
          groupBaseDN: ldap.groupsDN,
          groupFilter: '(objectClass=groupOfNames)',
          nestedGroups: 'search',
          adminGroup: ldap.groupDN('registry-admins'),
          timeout: 2,
          cacheTTL: 1,
        },
      },
    });
    await expectStatus(await api(server.url, 'POST', '/projects', { auth: adminBasic(), body: { name: PROJECT } }), 201);
  });
  after(async () => {
    await server?.close();
    await ldap?.close();
  });

  const password = (uid: string) => ldap.users.find((u) => u.uid === uid)!.password;

  /** The actions a token request with Basic credentials is granted on REPO (status when refused). */
  async function granted(name: string, secret: string): Promise<string[] | number> {
    const res = await fetch(`${server.url}/service/token?service=berth&scope=repository:${REPO}:pull,push`, { headers: { Authorization: basic(name, secret) } });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return res.status;
    }
    const { token } = (await res.json()) as { token: string };
    rememberSecret(token);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: { actions: string[] }[] };
    return (claims.access[0]?.actions ?? []).sort();
  }

  async function auditRows(action: string, resource: string): Promise<{ detail: Record<string, unknown> }[]> {
    const page = await expectStatus<{ items: { action: string; resource: string; detail: Record<string, unknown> }[] }>(
      await api(server.url, 'GET', `/audit?action=${action}&resource=${encodeURIComponent(resource)}&limit=100`, { auth: adminBasic() }),
      200,
    );
    return page.items.filter((r) => r.resource === resource);
  }

  it('signs directory users in with their directory password; permissions come only from their groups', async () => {
    // Signed in (eight first sign-ins at once, as a CI job's parallel pulls would), but in no group
    // with a role yet: nothing on the project; onboarded once.
    assert.deepEqual(await Promise.all(Array.from({ length: 8 }, () => granted('alice', password('alice')))), Array.from({ length: 8 }, () => []));
    const onboard = await auditRows('user.onboard', 'alice');
    assert.equal(onboard.length, 1);
    assert.deepEqual((onboard[0]!.detail.groups as string[]).sort(), ['developers', 'readers']);

    // The group by name, resolved in the directory (nobody of `readers` needs to have signed in for that).
    await expectStatus(await api(server.url, 'POST', `/projects/${PROJECT}/members`, { auth: adminBasic(), body: { group: 'developers', role: 'developer' } }), 201);
    await expectStatus(await api(server.url, 'POST', `/projects/${PROJECT}/members`, { auth: adminBasic(), body: { group: ldap.groupDN('readers'), role: 'guest' } }), 201);
    assert.deepEqual(await granted('alice', password('alice')), ['pull', 'push']);
    // bob is in readers only: pull; carol is in developers through the nested group platform.
    assert.deepEqual(await granted('bob', password('bob')), ['pull']);
    assert.deepEqual(await granted('carol', password('carol')), ['pull', 'push']);
    // None of them is a member in their own right.
    const members = await expectStatus<{ items: { kind: string; name: string }[] }>(await api(server.url, 'GET', `/projects/${PROJECT}/members`, { auth: adminBasic() }), 200);
    assert.deepEqual(members.items.filter((m) => m.kind === 'user').map((m) => m.name), ['admin']);
  });

  it('makes members of the admin group system administrators', async () => {
    const me = await expectStatus<{ name: string; isAdmin: boolean }>(await api(server.url, 'GET', '/auth/whoami', { auth: basic('root-admin', password('root-admin')) }), 200);
    assert.deepEqual(me, { kind: 'user', name: 'root-admin', isAdmin: true });
    assert.deepEqual(await granted('root-admin', password('root-admin')), ['pull', 'push']);
    // The flag follows the directory's admin group: not set by hand, and no password kept here to change.
    await expectStatus(await api(server.url, 'PATCH', '/users/root-admin', { auth: adminBasic(), body: { admin: false } }), 409);
    await expectStatus(await api(server.url, 'PATCH', '/users/alice', { auth: adminBasic(), body: { password: 'a-new-password-1' } }), 409);
  });

  it('tests the directory for an administrator: the service bind, and a person as the directory describes them', async () => {
    const alice = await expectStatus<{ ok: boolean; mode: string; person: { found: boolean; externalId: string; groups: string[]; admin: boolean } }>(
      await api(server.url, 'POST', '/auth/test', { auth: adminBasic(), body: { username: 'alice' } }),
      200,
    );
    assert.equal(alice.ok, true);
    assert.equal(alice.mode, 'ldap');
    assert.equal(alice.person.found, true);
    assert.equal(alice.person.externalId, ldap.userDN('alice'));
    assert.ok(alice.person.groups.includes('developers'), JSON.stringify(alice));
    assert.equal(alice.person.admin, false);
    const nobody = await expectStatus<{ ok: boolean; person: { found: boolean } }>(await api(server.url, 'POST', '/auth/test', { auth: adminBasic(), body: { username: 'nobody*' } }), 200);
    assert.deepEqual([nobody.ok, nobody.person.found], [true, false]);
    // Not for everyone: a directory user who is no administrator.
    await expectStatus(await api(server.url, 'POST', '/auth/test', { auth: basic('bob', password('bob')), body: {} }), 403);
  });

  it('refuses wrong passwords, filtered-out users, unknown names and hostile names, without a 500', async () => {
    assert.equal(await granted('alice', 'not-her-password'), 401);
    assert.equal(await granted('alice', ''), 401);
    assert.equal(await granted('dave', password('dave')), 401, 'employeeType=disabled is outside userFilter');
    assert.equal(await granted('nobody', 'whatever-1'), 401);
    assert.equal(await granted('*', 'whatever-1'), 401);
    assert.equal(await granted('alice)(uid=*', 'whatever-1'), 401);
    const failed = await auditRows('login.failed', 'dave');
    assert.ok(failed.length >= 1);
  });

  it('reads groups again after cacheTTL, and audits the change', async () => {
    await ldap.modify(`dn: ${ldap.groupDN('readers')}\nchangetype: modify\ndelete: member\nmember: ${ldap.userDN('alice')}\n`);
    await sleep(1_200);
    assert.deepEqual(await granted('alice', password('alice')), ['pull', 'push']);
    const changes = await auditRows('user.groups', 'alice');
    assert.ok(changes.some((c) => (c.detail.removed as string[]).includes('readers')), JSON.stringify(changes));
    // bob leaves readers too: no pull any more once his groups are read again.
    // (groupOfNames needs a member: root-admin takes bob's place)
    await ldap.modify(`dn: ${ldap.groupDN('readers')}\nchangetype: modify\nreplace: member\nmember: ${ldap.userDN('root-admin')}\n`);
    await sleep(1_200);
    assert.deepEqual(await granted('bob', password('bob')), []);
  });

  it('ends every credential of a person the directory stops listing', async () => {
    // carol: a personal access token (the password proves her) and a refresh token.
    const pat = await expectStatus<{ token: string }>(await api(server.url, 'POST', '/users/me/tokens', { auth: basic('carol', password('carol')), body: { name: 'ci' } }), 201);
    rememberSecret(pat.token);
    assert.deepEqual(await granted('carol', pat.token), ['pull', 'push']);
    const form = new URLSearchParams({ grant_type: 'password', username: 'carol', password: password('carol'), service: 'berth', access_type: 'offline', client_id: 'test', scope: `repository:${REPO}:pull` });
    const offline = await fetch(`${server.url}/service/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form });
    const { refresh_token: refresh } = (await offline.json()) as { refresh_token: string };
    rememberSecret(refresh);
    assert.ok(refresh);

    await ldap.delete(ldap.userDN('carol'));
    await sleep(1_200);
    assert.equal(await granted('carol', pat.token), 401, 'the token of a removed person');
    const again = await fetch(`${server.url}/service/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh, service: 'berth', client_id: 'test', scope: `repository:${REPO}:pull` }),
    });
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_grant');
    assert.equal(await granted('carol', password('carol')), 401);
    assert.equal((await auditRows('user.revoke', 'carol')).length >= 1, true);
  });

  it('answers 503 while the directory is down; local users keep working; back when it is', async () => {
    await ldap.stop();
    try {
      await sleep(1_100); // past alice's cached sign-in
      const res = await fetch(`${server.url}/service/token?service=berth&scope=repository:${REPO}:pull`, { headers: { Authorization: basic('alice', password('alice')) } });
      const body = await res.text();
      assert.equal(res.status, 503, body);
      assert.match(body, /UNAVAILABLE/);
      assert.doesNotMatch(body, new RegExp(password('alice')));
      const admin = await fetch(`${server.url}/service/token?service=berth&scope=repository:${REPO}:pull`, { headers: { Authorization: adminBasic() } });
      assert.equal(admin.status, 200);
      await admin.arrayBuffer();
      // The administrator's test names the cause, and answers (200) rather than failing.
      const test = await expectStatus<{ ok: boolean; error: string }>(await api(server.url, 'POST', '/auth/test', { auth: adminBasic(), body: {} }), 200);
      assert.equal(test.ok, false);
      assert.match(test.error, /cannot connect|connect/i);
    } finally {
      await ldap.start();
    }
    assert.deepEqual(await granted('alice', password('alice')), ['pull', 'push']);
  });
});
