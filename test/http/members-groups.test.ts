// Groups as project members, the groups listing, and users that live in LDAP or OIDC — through the
// real management API, token service and /v2 of an in-process server. Neither a directory nor an
// OpenID provider runs here: groups, memberships and external users are written the way sign-ins
// write them (meta.groups, meta.users.createExternal) over a second connection to the server's
// database. A user's permissions are the union of their own role and their groups' roles, checked
// with real token requests and pushes; group members are added, changed and removed with audit
// rows; ambiguous names, local mode and hostile input are refused clearly. How an unknown group is
// learnt from its source (auth.mode oidc: created; ldap: asked of the directory, through the
// `directoryGroups` seam the composition root wires to the LDAP client) is driven through the same
// operations with a configuration of that mode.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { IdentitySourceUnavailableError, type ExternalGroup } from '../../src/auth/external.ts';
import { ProjectAuthorizer } from '../../src/auth/authorizer.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { ApiServices } from '../../src/http/api/common.ts';
import { memberOperations } from '../../src/http/api/members.ts';
import { validate } from '../../src/http/api/route.ts';
import type { Context } from '../../src/http/context.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import type { GroupRow } from '../../src/metadata/schema.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';
import { backendConfig } from '../support/backend.ts';
import { expectError, jwtPayload, pushImage } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'groups-test-password';

interface MemberView {
  kind: 'user' | 'group';
  name: string;
  role: string;
  createdAt: string;
  username?: string;
  group?: { id: number; source: string; externalId: string };
}

interface AuditEvent {
  actor: string;
  action: string;
  resource: string;
  project: string | null;
  detail: Record<string, unknown> | null;
}

describe('groups as project members; groups and users of identity sources in the API', () => {
  let server: TestServer;
  let url: string;
  let meta: Metadata;
  const admin = adminBasic();
  const auth = (name: string) => basic(name, PASSWORD);
  const groups: Record<string, GroupRow> = {};

  /** The actions a docker-style token request grants `who` on `repository`. */
  async function granted(who: string, repository: string): Promise<string[]> {
    const res = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:pull,push`, { headers: { Authorization: auth(who) } });
    const body = await expectStatus<{ token: string }>(res, 200, `token for ${who}`);
    const access = (jwtPayload(body.token).access ?? []) as { name: string; actions: string[] }[];
    return [...(access.find((a) => a.name === repository)?.actions ?? [])].sort();
  }

  async function bearer(who: string, repository: string): Promise<string> {
    const res = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:pull,push`, { headers: { Authorization: auth(who) } });
    return `Bearer ${(await expectStatus<{ token: string }>(res, 200)).token}`;
  }

  async function members(project: string): Promise<MemberView[]> {
    return (await expectStatus<ListPage<MemberView>>(await api(url, 'GET', `/projects/${project}/members`, { auth: admin }), 200)).items;
  }

  async function auditOf(action: string, resource: string): Promise<AuditEvent[]> {
    const query = new URLSearchParams({ action, resource });
    return (await expectStatus<ListPage<AuditEvent>>(await api(url, 'GET', `/audit?${query}`, { auth: admin }), 200)).items;
  }

  async function userId(name: string): Promise<number> {
    return (await meta.users.find(name))!.id;
  }

  before(async () => {
    server = await startTestServer();
    url = server.url;
    meta = await openMetadataFor(configSchema.parse({ dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) }));
    for (const name of ['gina', 'gus', 'dora', 'olaf']) {
      await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username: name, password: PASSWORD } }), 201, `create ${name}`);
    }
    for (const project of ['grp', 'other']) await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: project } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { username: 'gus', role: 'guest' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { username: 'dora', role: 'developer' } }), 201);
    // As sign-ins would have recorded them: an OIDC group, and two LDAP groups of one name in two places.
    const [pushers, platformA, platformB, platformOidc] = [
      ...(await meta.groups.upsert('oidc', [{ externalId: 'ci-pushers', name: 'ci-pushers' }])),
      ...(await meta.groups.upsert('ldap', [
        { externalId: 'cn=Platform,ou=berlin,dc=example,dc=org', name: 'Platform' },
        { externalId: 'cn=Platform,ou=paris,dc=example,dc=org', name: 'Platform' },
      ])),
      ...(await meta.groups.upsert('oidc', [{ externalId: 'Platform', name: 'Platform' }])),
    ];
    Object.assign(groups, { pushers, platformA, platformB, platformOidc });
    await meta.groups.setUserGroups(await userId('gina'), [groups.pushers!.id]);
    await meta.groups.setUserGroups(await userId('gus'), [groups.pushers!.id, groups.platformA!.id]);
  });
  after(async () => {
    await meta?.close();
    await server?.close();
  });

  test("a user with no role of their own pulls and pushes through their group's role, and loses it with the group's membership", async () => {
    assert.deepEqual(await granted('gina', 'grp/app'), []);
    await expectError(await api(url, 'GET', '/projects/grp', { auth: auth('gina') }), 404, 'NOT_FOUND');

    const added = await expectStatus<MemberView>(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', role: 'developer' } }), 201);
    assert.deepEqual(added, { kind: 'group', name: 'ci-pushers', role: 'developer', createdAt: added.createdAt, group: { id: groups.pushers!.id, source: 'oidc', externalId: 'ci-pushers' } });

    assert.deepEqual(await granted('gina', 'grp/app'), ['pull', 'push']);
    await pushImage(url, 'grp/app', 'via-group', { auth: await bearer('gina', 'grp/app') });
    const seen = await expectStatus<{ permissions: string[] }>(await api(url, 'GET', '/projects/grp', { auth: auth('gina') }), 200);
    assert.ok(seen.permissions.includes('repository.push') && !seen.permissions.includes('member.manage'), JSON.stringify(seen.permissions));
    const listed = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/projects', { auth: auth('gina') }), 200);
    assert.deepEqual(listed.items.map((p) => p.name), ['grp'], 'the project is listed for members through a group');
    assert.deepEqual(await granted('gina', 'other/app'), [], 'the group has no role elsewhere');

    // The identity source drops her from the group (her next sign-in): the role goes with it, at once.
    await meta.groups.setUserGroups(await userId('gina'), []);
    assert.deepEqual(await granted('gina', 'grp/app'), []);
    await meta.groups.setUserGroups(await userId('gina'), [groups.pushers!.id]);
    assert.deepEqual(await granted('gina', 'grp/app'), ['pull', 'push']);
  });

  test("permissions are the union of the user's own role and their groups' roles; removing the group member takes its part away", async () => {
    // gus: guest himself, developer through ci-pushers (added above).
    assert.deepEqual(await granted('gus', 'grp/app'), ['pull', 'push']);
    const id = groups.pushers!.id;
    assert.equal((await api(url, 'DELETE', `/projects/grp/member-groups/${id}`, { auth: admin })).status, 204);
    assert.deepEqual(await granted('gus', 'grp/app'), ['pull'], 'his own guest role remains');
    assert.deepEqual(await granted('gina', 'grp/app'), [], 'no role left at all');
    await expectError(await api(url, 'GET', '/projects/grp', { auth: auth('gina') }), 404, 'NOT_FOUND');
    // Removing the user member leaves the group's role.
    await expectStatus(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', role: 'maintainer' } }), 201);
    assert.equal((await api(url, 'DELETE', '/projects/grp/members/gus', { auth: admin })).status, 204);
    assert.deepEqual(await granted('gus', 'grp/app'), ['pull', 'push']);
  });

  test('group members: list both kinds, change and remove by id, 409 twice, 404 for groups that are not members; every change audited', async () => {
    const all = await members('grp');
    assert.deepEqual(all.map((m) => [m.kind, m.name, m.role]), [['user', 'admin', 'projectAdmin'], ['user', 'dora', 'developer'], ['group', 'ci-pushers', 'maintainer']]);
    const dora = all.find((m) => m.name === 'dora')!;
    assert.equal(dora.username, 'dora', 'users keep "username"');
    assert.equal(dora.group, undefined);
    const pushers = all.find((m) => m.kind === 'group')!;
    assert.deepEqual(pushers.group, { id: groups.pushers!.id, source: 'oidc', externalId: 'ci-pushers' });
    assert.equal(pushers.username, undefined);

    await expectError(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', role: 'guest' } }), 409, 'CONFLICT');
    const id = groups.pushers!.id;
    const changed = await expectStatus<MemberView>(await api(url, 'PUT', `/projects/grp/member-groups/${id}`, { auth: admin, body: { role: 'guest' } }), 200);
    assert.equal(changed.role, 'guest');
    assert.deepEqual(await granted('gina', 'grp/app'), ['pull']);
    assert.equal((await api(url, 'DELETE', `/projects/grp/member-groups/${id}`, { auth: admin })).status, 204);
    await expectError(await api(url, 'DELETE', `/projects/grp/member-groups/${id}`, { auth: admin }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'PUT', `/projects/grp/member-groups/${id}`, { auth: admin, body: { role: 'guest' } }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'PUT', `/projects/grp/member-groups/${groups.platformA!.id}`, { auth: admin, body: { role: 'guest' } }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'DELETE', '/projects/grp/member-groups/2147483000', { auth: admin }), 404, 'NOT_FOUND');
    await expectInvalid(await api(url, 'DELETE', '/projects/grp/member-groups/abc', { auth: admin }), 'id');
    await expectInvalid(await api(url, 'DELETE', '/projects/grp/member-groups/0', { auth: admin }), 'id');
    // A group member of one project is not reachable through another project's path.
    await expectStatus(await api(url, 'POST', '/projects/other/members', { auth: admin, body: { group: 'ci-pushers', role: 'guest' } }), 201);
    await expectError(await api(url, 'PUT', `/projects/grp/member-groups/${id}`, { auth: admin, body: { role: 'developer' } }), 404, 'NOT_FOUND');

    const resource = 'group:ci-pushers';
    const adds = (await auditOf('member.add', resource)).filter((e) => e.project === 'grp');
    assert.ok(adds.length >= 2, JSON.stringify(adds));
    assert.deepEqual(adds[0]!.detail, { kind: 'group', groupId: id, source: 'oidc', externalId: 'ci-pushers', role: 'maintainer', previous: null });
    assert.equal(adds[0]!.actor, 'admin');
    const [update] = await auditOf('member.update', resource);
    assert.deepEqual(update!.detail, { kind: 'group', groupId: id, source: 'oidc', externalId: 'ci-pushers', role: 'guest', previous: 'maintainer' });
    const removes = (await auditOf('member.remove', resource)).filter((e) => e.project === 'grp');
    assert.equal(removes.length, 2, JSON.stringify(removes));
    assert.deepEqual(removes[0]!.detail, { kind: 'group', groupId: id, source: 'oidc', externalId: 'ci-pushers', role: null, previous: 'guest' });
  });

  test('an ambiguous name is refused with the choices; "source" or the DN picks one', async () => {
    const env = await expectError(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'Platform', role: 'guest' } }), 409, 'CONFLICT');
    const error = env.errors[0]!;
    assert.match(error.message, /several groups are named "Platform"/);
    assert.ok(error.message.includes('cn=Platform,ou=berlin,dc=example,dc=org') && error.message.includes('cn=Platform,ou=paris,dc=example,dc=org'), error.message);
    const choices = (error.detail as { choices: { source: string; externalId: string; id: number }[] }).choices;
    assert.deepEqual(choices.map((c) => c.id).sort((a, b) => a - b), [groups.platformA!.id, groups.platformB!.id, groups.platformOidc!.id].sort((a, b) => a - b));
    await expectError(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'Platform', source: 'ldap', role: 'guest' } }), 409, 'CONFLICT');

    const oidc = await expectStatus<MemberView>(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'Platform', source: 'oidc', role: 'guest' } }), 201);
    assert.equal(oidc.group!.id, groups.platformOidc!.id);
    const byDN = await expectStatus<MemberView>(
      await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'cn=Platform,ou=paris,dc=example,dc=org', role: 'developer' } }),
      201,
    );
    assert.deepEqual(byDN.group, { id: groups.platformB!.id, source: 'ldap', externalId: 'cn=Platform,ou=paris,dc=example,dc=org' });
    assert.equal(byDN.name, 'Platform');
    const platform = (await members('grp')).filter((m) => m.name === 'Platform');
    assert.deepEqual(platform.map((m) => m.group!.id).sort((a, b) => a - b), [groups.platformB!.id, groups.platformOidc!.id].sort((a, b) => a - b));
    // gus is in the Berlin group, not the Paris one: no role through either Platform member.
    assert.deepEqual(await granted('gus', 'grp/app'), []);
  });

  test('with auth.mode local an unknown group is a 404 that says where groups come from', async () => {
    const env = await expectError(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'nobody-has-this', role: 'guest' } }), 404, 'NOT_FOUND');
    assert.match(env.errors[0]!.message, /groups come from LDAP or OIDC; auth\.mode is local/);
  });

  test('attackers: developers cannot add groups, non-members see nothing, hostile names are refused without being echoed', async () => {
    await expectError(await api(url, 'POST', '/projects/grp/members', { auth: auth('dora'), body: { group: 'ci-pushers', role: 'projectAdmin' } }), 403, 'DENIED');
    const platform = (await members('grp')).find((m) => m.kind === 'group')!;
    await expectError(await api(url, 'PUT', `/projects/grp/member-groups/${platform.group!.id}`, { auth: auth('dora'), body: { role: 'projectAdmin' } }), 403, 'DENIED');
    await expectError(await api(url, 'DELETE', `/projects/grp/member-groups/${platform.group!.id}`, { auth: auth('dora') }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/projects/grp/members', { auth: auth('olaf') }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', '/projects/grp/members', { auth: auth('olaf'), body: { group: 'ci-pushers', role: 'guest' } }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'DELETE', `/projects/grp/member-groups/${platform.group!.id}`, { auth: auth('olaf') }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/projects/grp/members'), 401, 'UNAUTHORIZED');
    await expectError(await api(url, 'GET', '/groups', { auth: auth('dora') }), 403, 'DENIED');
    await expectError(await api(url, 'GET', `/groups/${platform.group!.id}`, { auth: auth('dora') }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/groups'), 401, 'UNAUTHORIZED');

    const hostile = ['x'.repeat(5000), 'evil\u001b[31mred\u0007', 'line\nbreak', '../../etc/passwd', 'a/../b', ' padded ', '', 'zero\u0000byte', 'bidi\u2028sep'];
    for (const name of hostile) {
      const res = await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: name, role: 'guest' } });
      const text = await res.clone().text();
      await expectInvalid(res, 'group');
      if (name.length > 3) assert.ok(!text.includes(name) && !text.includes(JSON.stringify(name).slice(1, -1)), `the name is not echoed: ${text.slice(0, 300)}`);
    }
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 42, role: 'guest' } }), 'group');
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', username: 'dora', role: 'guest' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { role: 'guest' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { username: 'dora', source: 'ldap', role: 'guest' } }), 'source');
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', source: 'kerberos', role: 'guest' } }), 'source');
    await expectInvalid(await api(url, 'POST', '/projects/grp/members', { auth: admin, body: { group: 'ci-pushers', role: 'owner' } }), 'role');
    await expectInvalid(await api(url, 'GET', '/groups/abc', { auth: admin }), 'id');
    await expectInvalid(await api(url, 'GET', '/groups?source=local', { auth: admin }), 'source');
  });

  test('GET /groups: pages with member counts, filtered by source and name; GET /groups/{id}: members and projects', async () => {
    const all = await expectStatus<ListPage<{ id: number; name: string; source: string; externalId: string; members: number }>>(await api(url, 'GET', '/groups', { auth: admin }), 200);
    assert.equal(all.total, 4);
    // By name (as the database orders text), then id.
    assert.deepEqual(all.items.map((g) => [g.name, g.source, g.members]), [['Platform', 'ldap', 1], ['Platform', 'ldap', 0], ['Platform', 'oidc', 0], ['ci-pushers', 'oidc', 2]]);
    const ldap = await expectStatus<ListPage<{ externalId: string }>>(await api(url, 'GET', '/groups?source=ldap', { auth: admin }), 200);
    assert.deepEqual(ldap.items.map((g) => g.externalId), ['cn=Platform,ou=berlin,dc=example,dc=org', 'cn=Platform,ou=paris,dc=example,dc=org']);
    const found = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/groups?q=pusher', { auth: admin }), 200);
    assert.deepEqual(found.items.map((g) => g.name), ['ci-pushers']);
    // Names keep their case; the search ignores it (as the project and repository searches do).
    const anyCase = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/groups?q=platform&source=oidc', { auth: admin }), 200);
    assert.deepEqual(anyCase.items.map((g) => g.name), ['Platform']);
    const paged = await api(url, 'GET', '/groups?pageSize=1', { auth: admin });
    assert.match(paged.headers.get('link') ?? '', /page=2/);
    assert.equal((await expectStatus<ListPage<unknown>>(paged, 200)).items.length, 1);

    const detail = await expectStatus<{ name: string; memberCount: number; members: { username: string; lastLoginAt: string | null }[]; projects: { project: string; role: string }[] }>(
      await api(url, 'GET', `/groups/${groups.pushers!.id}`, { auth: admin }),
      200,
    );
    assert.equal(detail.memberCount, 2);
    assert.deepEqual(detail.members.map((m) => [m.username, m.lastLoginAt]), [['gina', null], ['gus', null]]);
    assert.deepEqual(detail.projects.map((p) => [p.project, p.role]), [['other', 'guest']]);
    await expectError(await api(url, 'GET', '/groups/2147483000', { auth: admin }), 404, 'NOT_FOUND');
  });

  test('users of LDAP and OIDC: registered without a password, shown with source and groups, never given a Berth password', async () => {
    const created = await expectStatus<Record<string, unknown>>(await api(url, 'POST', '/users', { auth: admin, body: { username: 'Alice.Smith@example.com', source: 'oidc' } }), 201);
    assert.deepEqual(created, { username: 'Alice.Smith@example.com', admin: false, createdAt: created.createdAt, source: 'oidc', email: null, lastLoginAt: null });
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'bob', source: 'ldap', password: 'a-password-of-bob' } }), 'password');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'Alice.Smith@example.com' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'a/b', source: 'ldap' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'me', source: 'ldap' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/users', { auth: admin, body: { username: 'carl', source: 'kerberos' } }), 'source');
    await expectError(await api(url, 'POST', '/users', { auth: admin, body: { username: 'gina', source: 'ldap' } }), 409, 'CONFLICT');
    await expectError(await api(url, 'POST', '/users', { auth: auth('dora'), body: { username: 'eve', source: 'ldap' } }), 403, 'DENIED');

    // As the directory's sign-in creates them.
    const lars = await meta.users.createExternal({ username: 'lars', source: 'ldap', externalId: 'uid=lars,ou=people,dc=example,dc=org', email: 'lars@example.org', isAdmin: false });
    await meta.groups.setUserGroups(lars.id, [groups.platformA!.id, groups.pushers!.id]);
    const shown = await expectStatus<Record<string, unknown>>(await api(url, 'GET', '/users/lars', { auth: admin }), 200);
    assert.deepEqual(shown, { username: 'lars', admin: false, createdAt: shown.createdAt, source: 'ldap', email: 'lars@example.org', lastLoginAt: null, groups: ['Platform', 'ci-pushers'] });
    const local = await expectStatus<Record<string, unknown>>(await api(url, 'GET', '/users/dora', { auth: admin }), 200);
    assert.equal(local.source, 'local');
    assert.deepEqual(local.groups, []);
    const list = await expectStatus<ListPage<{ username: string; source: string }>>(await api(url, 'GET', '/users?source=ldap', { auth: admin }), 200);
    assert.deepEqual(list.items.map((u) => u.username), ['lars']);

    const ldapRefusal = await expectError(await api(url, 'PATCH', '/users/lars', { auth: admin, body: { password: 'a-new-password-1' } }), 409, 'CONFLICT');
    assert.equal(ldapRefusal.errors[0]!.message, 'lars signs in through LDAP: change the password in the directory');
    const oidcRefusal = await expectError(await api(url, 'PATCH', `/users/${encodeURIComponent('Alice.Smith@example.com')}`, { auth: admin, body: { password: 'a-new-password-1' } }), 409, 'CONFLICT');
    assert.match(oidcRefusal.errors[0]!.message, /signs in through OpenID Connect: change the password at the OpenID provider/);
    // Nothing matches the stored placeholder, the literal included.
    for (const secret of ['!external', '']) assert.equal((await api(url, 'GET', '/auth/whoami', { auth: `Basic ${Buffer.from(`lars:${secret}`).toString('base64')}` })).status, 401);

    assert.equal((await api(url, 'DELETE', '/users/lars', { auth: admin })).status, 204);
    assert.equal((await api(url, 'DELETE', `/users/${encodeURIComponent('Alice.Smith@example.com')}`, { auth: admin })).status, 204);
    const [audited] = (await auditOf('user.create', 'Alice.Smith@example.com')).filter((e) => e.resource === 'Alice.Smith@example.com');
    assert.deepEqual(audited!.detail, { admin: false, source: 'oidc' });
  });

  describe('how an unknown group is learnt from its source', () => {
    /** The members operations over the server's database, as a server with `auth` would run them. */
    function operationsWith(authConfig: Record<string, unknown>, directoryGroups?: (nameOrDN: string) => Promise<ExternalGroup[]>) {
      const config = configSchema.parse({ dataDir: server.dataDir, auth: authConfig });
      const services = { meta, config, authorizer: new ProjectAuthorizer(meta, false), ...(directoryGroups ? { directoryGroups } : {}) } as unknown as ApiServices;
      const ops = memberOperations(services);
      const ctx = { origin: { client: '127.0.0.1' }, log: pino({ level: 'silent' }), query: new URLSearchParams(), path: '/api/v1/projects/grp/members' } as unknown as Context;
      return async (body: unknown) => {
        const op = ops.find((o) => o.id === 'addMember')!;
        const result = await op.run({ ctx, identity: { kind: 'user', name: 'admin', isAdmin: true }, params: { project: 'grp' }, query: undefined, body: validate(op.body!, body, 'body') });
        return result.body as MemberView;
      };
    }
    const ldapConfig = { mode: 'ldap', ldap: { url: 'ldap://127.0.0.1:1', baseDN: 'dc=example,dc=org', groupBaseDN: 'ou=groups,dc=example,dc=org' } };
    const directory: ExternalGroup[] = [
      { externalId: 'cn=Ops,ou=groups,dc=example,dc=org', name: 'Ops' },
      { externalId: 'cn=qa,ou=a,ou=groups,dc=example,dc=org', name: 'qa' },
      { externalId: 'cn=qa,ou=b,ou=groups,dc=example,dc=org', name: 'qa' },
    ];
    const asked: string[] = [];
    const findGroups = async (nameOrDN: string) => {
      asked.push(nameOrDN);
      return directory.filter((g) => g.name === nameOrDN || g.externalId.toLowerCase() === nameOrDN.toLowerCase());
    };

    test('auth.mode oidc: a group no member has brought yet is created (its name is its id)', async () => {
      const add = operationsWith({ mode: 'oidc', oidc: { issuer: 'https://id.example.com', clientId: 'berth' } });
      const added = await add({ group: 'release-managers', role: 'maintainer' });
      assert.equal(added.group!.source, 'oidc');
      assert.equal(added.group!.externalId, 'release-managers');
      assert.equal((await meta.groups.byName('release-managers')).length, 1);
      await assert.rejects(add({ group: 'x'.repeat(300), role: 'guest' }), (err: Error) => /255/.test(err.message));
      await assert.rejects(add({ group: 'ldap-only', source: 'ldap', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'NOT_FOUND' && /auth\.mode is oidc/.test(err.message));
    });

    test('auth.mode ldap: the directory is asked, by name or DN; none is a 404, several a 409 listing the DNs, an unreachable directory a 503', async () => {
      const add = operationsWith(ldapConfig, findGroups);
      const ops = await add({ group: 'Ops', role: 'developer' });
      assert.deepEqual(ops.group, { id: ops.group!.id, source: 'ldap', externalId: 'cn=Ops,ou=groups,dc=example,dc=org' });
      assert.deepEqual(asked, ['Ops']);
      const qa = await add({ group: 'cn=qa,ou=b,ou=groups,dc=example,dc=org', role: 'guest' });
      assert.equal(qa.group!.externalId, 'cn=qa,ou=b,ou=groups,dc=example,dc=org');
      // Known now: the directory is not asked again.
      asked.length = 0;
      await assert.rejects(add({ group: 'cn=qa,ou=b,ou=groups,dc=example,dc=org', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'CONFLICT' && /already a member/.test(err.message));
      assert.deepEqual(asked, []);
      await assert.rejects(add({ group: 'nobody', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'NOT_FOUND' && err.message === 'no group "nobody" in the directory');
      // One qa group is known (by its DN), so "qa" means it unless the directory is consulted: Berth takes the one it knows.
      await meta.db.deleteFrom('project_group_members').where('group_id', '=', qa.group!.id).execute();
      const knownQa = await add({ group: 'qa', role: 'guest' });
      assert.equal(knownQa.group!.id, qa.group!.id);
      directory.push({ externalId: 'cn=dev,ou=a,dc=example,dc=org', name: 'dev' }, { externalId: 'cn=dev,ou=b,dc=example,dc=org', name: 'dev' });
      await assert.rejects(add({ group: 'dev', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'CONFLICT' && err.message.includes('cn=dev,ou=a,dc=example,dc=org') && err.message.includes('cn=dev,ou=b,dc=example,dc=org'));
      assert.equal((await meta.groups.byName('dev')).length, 0, 'an ambiguous answer remembers nothing');

      const down = operationsWith(ldapConfig, async () => {
        throw new IdentitySourceUnavailableError('the LDAP directory at ldap://127.0.0.1:1 did not answer: connect ECONNREFUSED');
      });
      await assert.rejects(down({ group: 'brand-new', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'UNAVAILABLE' && /did not answer/.test(err.message));
      const unwired = operationsWith(ldapConfig);
      await assert.rejects(unwired({ group: 'brand-new', role: 'guest' }), (err: Error & { code?: string }) => err.code === 'UNAVAILABLE');
      // Groups already known still work while the directory is down.
      assert.equal((await down({ group: 'Ops', source: 'ldap', role: 'guest' }).catch((err: Error) => err.message)).toString().includes('already a member'), true);
    });
  });
});
