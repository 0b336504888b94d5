// The management API (/api/v1), part 2: projects (with quota, usage and the caller's permissions),
// pagination with Link, members and robot accounts — with their audit records.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { expectError, pushImage } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, nextLink, type ListPage } from '../support/api.ts';

const PASSWORD = 'projects-test-password';

interface Project {
  name: string;
  public: boolean;
  quotaBytes: number | null;
  usageBytes: number;
  repositoryCount: number;
  createdAt: string;
  createdBy: string | null;
  permissions?: string[];
}
interface Robot {
  name: string;
  level: string;
  project: string | null;
  disabled: boolean;
  expiresAt: string | null;
  permissions: { project: string; actions: string[] }[];
  secret?: string;
}
interface AuditItem {
  action: string;
  actor: string;
  resource: string;
  project: string | null;
  client: string | null;
  detail: Record<string, unknown> | null;
}

describe('management API: projects, members, robots', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const owner = basic('owner', PASSWORD);
  const dev = basic('dev', PASSWORD);
  const outsider = basic('outsider', PASSWORD);

  const auditOf = async (query: string) => (await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', `/audit?${query}`, { auth: admin }), 200)).items;

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const username of ['owner', 'dev', 'outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'team', quotaBytes: 10_000_000 } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/team/members', { auth: admin, body: { username: 'owner', role: 'projectAdmin' } }), 201);
  });
  after(() => server.close());

  test('create: administrators only (projects.userCreation off); the creator becomes projectAdmin; 409 when taken', async () => {
    const created = await expectStatus<Project>(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'alpha', public: true, quotaBytes: 1024 } }), 201);
    assert.equal(created.name, 'alpha');
    assert.equal(created.public, true);
    assert.equal(created.quotaBytes, 1024);
    assert.equal(created.usageBytes, 0);
    assert.equal(created.repositoryCount, 0);
    assert.equal(created.createdBy, 'admin');
    const members = await expectStatus<ListPage<{ username: string; role: string }>>(await api(url, 'GET', '/projects/alpha/members', { auth: admin }), 200);
    assert.deepEqual(members.items.map((m) => [m.username, m.role]), [['admin', 'projectAdmin']]);
    await expectError(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'alpha' } }), 409, 'CONFLICT');
    await expectError(await api(url, 'POST', '/projects', { auth: dev, body: { name: 'devs-own' } }), 403, 'DENIED');
    await expectError(await api(url, 'POST', '/projects', { body: { name: 'anon' } }), 401, 'UNAUTHORIZED');
    await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'team/sub' } }), 'name');
    const [event] = await auditOf('action=project.create&project=alpha');
    assert.equal(event!.actor, 'admin');
    assert.equal(event!.client, '127.0.0.1');
    assert.deepEqual(event!.detail, { public: true, quotaBytes: 1024 });
  });

  test('with projects.userCreation any user creates projects and administers them', async () => {
    const open = await startTestServer({ projects: { userCreation: true } });
    try {
      await expectStatus(await api(open.url, 'POST', '/users', { auth: admin, body: { username: 'maker', password: PASSWORD } }), 201);
      const maker = basic('maker', PASSWORD);
      const info = await expectStatus(await api(open.url, 'GET', '/system/info', { auth: maker }), 200);
      assert.equal(info.projectCreation, 'everyone');
      const created = await expectStatus<Project>(await api(open.url, 'POST', '/projects', { auth: maker, body: { name: 'makers' } }), 201);
      assert.ok(created.permissions!.includes('member.manage'), 'the creator is projectAdmin');
      await expectStatus(await api(open.url, 'POST', '/projects/makers/members', { auth: maker, body: { username: 'admin', role: 'guest' } }), 201);
    } finally {
      await open.close();
    }
  });

  test('show: quota, usage, repository count and the caller\'s permissions; 404 for a private project the caller cannot see', async () => {
    await expectStatus(await api(url, 'POST', '/projects/team/members', { auth: owner, body: { username: 'dev', role: 'developer' } }), 201);
    await pushImage(url, 'team/app', 'v1');
    const shown = await expectStatus<Project>(await api(url, 'GET', '/projects/team', { auth: dev }), 200);
    assert.equal(shown.repositoryCount, 1);
    assert.ok(shown.usageBytes > 0, 'usage counts the pushed image');
    assert.equal(shown.quotaBytes, 10_000_000);
    assert.deepEqual(shown.permissions, ['project.read', 'member.list', 'log.list', 'repository.list', 'repository.pull', 'repository.push']);
    // Not a member, private project: the same answer as for a project that does not exist.
    const hidden = await expectError(await api(url, 'GET', '/projects/team', { auth: outsider }), 404, 'NOT_FOUND');
    const missing = await expectError(await api(url, 'GET', '/projects/no-such-project', { auth: outsider }), 404, 'NOT_FOUND');
    assert.equal(hidden.errors[0]!.message.replace('team', 'X'), missing.errors[0]!.message.replace('no-such-project', 'X'));
    await expectError(await api(url, 'GET', '/projects/team'), 401, 'UNAUTHORIZED');
    await expectError(await api(url, 'PATCH', '/projects/team', { auth: outsider, body: { public: true } }), 404, 'NOT_FOUND');
  });

  test('update: visibility and quota (null: unlimited) by project.update; 403 naming the permission otherwise', async () => {
    const updated = await expectStatus<Project>(await api(url, 'PATCH', '/projects/team', { auth: owner, body: { public: true, quotaBytes: null } }), 200);
    assert.equal(updated.public, true);
    assert.equal(updated.quotaBytes, null);
    // Public now: the outsider sees it, and is refused (not hidden from) the update.
    assert.equal((await expectStatus<Project>(await api(url, 'GET', '/projects/team', { auth: outsider }), 200)).public, true);
    const denied = await expectError(await api(url, 'PATCH', '/projects/team', { auth: dev, body: { quotaBytes: 5 } }), 403, 'DENIED');
    assert.equal(denied.errors[0]!.message, 'project.update needed in project "team"');
    await expectInvalid(await api(url, 'PATCH', '/projects/team', { auth: owner, body: { quotaBytes: 1.5 } }), 'quotaBytes');
    await expectInvalid(await api(url, 'PATCH', '/projects/team', { auth: owner, body: { public: 'yes' } }), 'public');
    const events = await auditOf('action=project.update&project=team');
    assert.deepEqual(events[0]!.detail, { public: true, quotaBytes: null });
    assert.equal(events[0]!.actor, 'owner');
    await expectStatus(await api(url, 'PATCH', '/projects/team', { auth: owner, body: { public: false, quotaBytes: 10_000_000 } }), 200);
  });

  test('delete: 409 while the project holds repositories, 204 once empty', async () => {
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'doomed' } }), 201);
    await pushImage(url, 'doomed/app', 'v1');
    const refused = await expectError(await api(url, 'DELETE', '/projects/doomed', { auth: admin }), 409, 'CONFLICT');
    assert.match(refused.errors[0]!.message, /holds 1 repository/);
    await expectError(await api(url, 'DELETE', '/projects/team', { auth: dev }), 403, 'DENIED');
    assert.equal((await api(url, 'DELETE', '/repositories/doomed/app', { auth: admin })).status, 204);
    assert.equal((await api(url, 'DELETE', '/projects/doomed', { auth: admin })).status, 204);
    await expectError(await api(url, 'GET', '/projects/doomed', { auth: admin }), 404, 'NOT_FOUND');
    assert.equal((await auditOf('action=project.delete&project=doomed')).length, 1);
  });

  test('list: only visible projects, filtered by q, paginated with Link rel="next"', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
    for (const name of names) await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name, public: name === 'page-03' } }), 201);
    const seen: string[] = [];
    let path: string | undefined = '/api/v1/projects?q=page-&pageSize=3';
    const pages: number[] = [];
    while (path) {
      const res: Response = await fetch(`${url}${path}`, { headers: { Authorization: admin } });
      const next = nextLink(res);
      const body = await expectStatus<ListPage<Project>>(res, 200);
      assert.equal(body.total, 7);
      assert.equal(body.pageSize, 3);
      pages.push(body.items.length);
      seen.push(...body.items.map((p) => p.name));
      if (next) assert.ok(next.startsWith('/api/v1/projects?') && next.includes(`page=${body.page + 1}`) && next.includes('q=page-'), next);
      path = next;
    }
    assert.deepEqual(pages, [3, 3, 1]);
    assert.deepEqual(seen, names);
    // A non-member sees only the public one; anonymous callers too.
    const forOutsider = await expectStatus<ListPage<Project>>(await api(url, 'GET', '/projects?q=page-', { auth: outsider }), 200);
    assert.deepEqual(forOutsider.items.map((p) => p.name), ['page-03']);
    assert.equal(forOutsider.total, 1);
    const forAnonymous = await expectStatus<ListPage<Project>>(await api(url, 'GET', '/projects?q=page-'), 200);
    assert.deepEqual(forAnonymous.items.map((p) => p.name), ['page-03']);
  });

  test('members: add, change role, remove (member.manage); 409 for an existing member; 404 for unknown users', async () => {
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'crew' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/crew/members', { auth: admin, body: { username: 'owner', role: 'projectAdmin' } }), 201);
    const added = await expectStatus(await api(url, 'POST', '/projects/crew/members', { auth: owner, body: { username: 'dev', role: 'guest' } }), 201);
    assert.equal(added.username, 'dev');
    assert.equal(added.role, 'guest');
    await expectError(await api(url, 'POST', '/projects/crew/members', { auth: owner, body: { username: 'dev', role: 'developer' } }), 409, 'CONFLICT');
    await expectError(await api(url, 'POST', '/projects/crew/members', { auth: owner, body: { username: 'ghost', role: 'guest' } }), 404, 'NOT_FOUND');
    await expectInvalid(await api(url, 'POST', '/projects/crew/members', { auth: owner, body: { username: 'outsider', role: 'owner' } }), 'role');
    // A guest lists members but may not manage them.
    const listed = await expectStatus<ListPage<{ username: string; role: string; createdAt: string }>>(await api(url, 'GET', '/projects/crew/members', { auth: dev }), 200);
    assert.deepEqual(listed.items.map((m) => `${m.username}:${m.role}`), ['admin:projectAdmin', 'dev:guest', 'owner:projectAdmin']);
    assert.ok(!Number.isNaN(Date.parse(listed.items[0]!.createdAt)));
    await expectError(await api(url, 'POST', '/projects/crew/members', { auth: dev, body: { username: 'outsider', role: 'guest' } }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/projects/crew/members', { auth: outsider }), 404, 'NOT_FOUND');

    assert.equal((await expectStatus(await api(url, 'PUT', '/projects/crew/members/dev', { auth: owner, body: { role: 'maintainer' } }), 200)).role, 'maintainer');
    await expectError(await api(url, 'PUT', '/projects/crew/members/outsider', { auth: owner, body: { role: 'guest' } }), 404, 'NOT_FOUND');
    assert.equal((await api(url, 'DELETE', '/projects/crew/members/dev', { auth: owner })).status, 204);
    await expectError(await api(url, 'DELETE', '/projects/crew/members/dev', { auth: owner }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/projects/crew', { auth: dev }), 404, 'NOT_FOUND');
    const events = await auditOf('project=crew&resource=dev');
    assert.deepEqual(events.map((e) => [e.action, e.detail?.role]), [['member.remove', 'maintainer'], ['member.update', 'maintainer'], ['member.add', 'guest']]);
  });

  test('project robots: created by robot.manage with a secret shown once; permissions only in their project', async () => {
    const created = await expectStatus<Robot>(
      await api(url, 'POST', '/robots', { auth: owner, body: { name: 'ci', project: 'team', description: 'builds', expiresInDays: 30, permissions: [{ project: 'team', actions: ['pull', 'push'] }] } }),
      201,
    );
    assert.equal(created.name, 'robot$team+ci');
    assert.equal(created.level, 'project');
    assert.equal(created.project, 'team');
    assert.match(created.secret!, /^[A-Za-z0-9_-]{40,}$/);
    assert.ok(Math.abs(Date.parse(created.expiresAt!) - (Date.now() + 30 * 86_400_000)) < 60_000);
    assert.deepEqual(created.permissions, [{ project: 'team', actions: ['pull', 'push'] }]);
    await expectError(await api(url, 'POST', '/robots', { auth: owner, body: { name: 'ci', project: 'team', permissions: [{ project: 'team', actions: ['pull'] }] } }), 409, 'CONFLICT');
    await expectInvalid(await api(url, 'POST', '/robots', { auth: owner, body: { name: 'wide', project: 'team', permissions: [{ project: 'alpha', actions: ['pull'] }] } }), 'permissions.0.project');
    await expectInvalid(await api(url, 'POST', '/robots', { auth: owner, body: { name: 'odd', project: 'team', permissions: [{ project: 'team', actions: ['fly'] }] } }), 'permissions.0.actions.0');
    await expectInvalid(await api(url, 'POST', '/robots', { auth: owner, body: { name: 'ok', project: 'team', permissions: [] } }), 'permissions');
    await expectError(await api(url, 'POST', '/robots', { auth: dev, body: { name: 'mine', project: 'team', permissions: [{ project: 'team', actions: ['pull'] }] } }), 403, 'DENIED');

    const listed = await expectStatus<ListPage<Robot>>(await api(url, 'GET', '/robots?project=team', { auth: owner }), 200);
    assert.deepEqual(listed.items.map((r) => r.name), ['robot$team+ci']);
    assert.equal((listed.items[0] as Robot).secret, undefined, 'secrets are never listed');
    await expectError(await api(url, 'GET', '/robots?project=team', { auth: dev }), 403, 'DENIED');
    const shown = await expectStatus<Robot>(await api(url, 'GET', `/robots/${encodeURIComponent('robot$team+ci')}`, { auth: owner }), 200);
    assert.equal(shown.name, 'robot$team+ci');
    // The robot$ prefix may be left out of the path.
    assert.equal((await expectStatus<Robot>(await api(url, 'GET', `/robots/${encodeURIComponent('team+ci')}`, { auth: owner }), 200)).name, 'robot$team+ci');
    await expectError(await api(url, 'GET', `/robots/${encodeURIComponent('robot$team+ci')}`, { auth: outsider }), 404, 'NOT_FOUND');

    const path = `/robots/${encodeURIComponent('robot$team+ci')}`;
    const disabled = await expectStatus<Robot>(await api(url, 'PATCH', path, { auth: owner, body: { disabled: true, expiresInDays: -1 } }), 200);
    assert.equal(disabled.disabled, true);
    assert.equal(disabled.expiresAt, null);
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: basic(created.name, created.secret!) }), 401, 'UNAUTHORIZED');
    await expectStatus(await api(url, 'PATCH', path, { auth: owner, body: { disabled: false } }), 200);
    const refreshed = await expectStatus<{ name: string; secret: string }>(await api(url, 'POST', `${path}/refresh`, { auth: owner }), 200);
    assert.notEqual(refreshed.secret, created.secret);
    await expectError(await api(url, 'GET', '/auth/whoami', { auth: basic(created.name, created.secret!) }), 401, 'UNAUTHORIZED');
    assert.equal((await expectStatus(await api(url, 'GET', '/auth/whoami', { auth: basic(created.name, refreshed.secret) }), 200)).kind, 'robot');
    await expectError(await api(url, 'DELETE', path, { auth: dev }), 403, 'DENIED');
    assert.equal((await api(url, 'DELETE', path, { auth: owner })).status, 204);
    await expectError(await api(url, 'GET', path, { auth: owner }), 404, 'NOT_FOUND');

    const events = await auditOf(`resource=${encodeURIComponent('robot$team+ci')}&project=team`);
    assert.deepEqual(events.map((e) => e.action), ['robot.delete', 'robot.refresh', 'robot.update', 'robot.update', 'robot.create']);
    assert.ok(!JSON.stringify(events).includes(refreshed.secret), 'secrets never reach the audit log');
  });

  test('system robots: administrators only, over several projects or "*"', async () => {
    const body = { name: 'mirror', description: 'replication', permissions: [{ project: 'team', actions: ['pull'] }, { project: 'alpha', actions: ['pull', 'list'] }] };
    await expectError(await api(url, 'POST', '/robots', { auth: owner, body }), 403, 'DENIED');
    const created = await expectStatus<Robot>(await api(url, 'POST', '/robots', { auth: admin, body }), 201);
    assert.equal(created.name, 'robot$mirror');
    assert.equal(created.level, 'system');
    assert.equal(created.project, null);
    assert.deepEqual(
      [...created.permissions].sort((a, b) => a.project.localeCompare(b.project)),
      [{ project: 'alpha', actions: ['pull', 'list'] }, { project: 'team', actions: ['pull'] }],
    );
    const everywhere = await expectStatus<Robot>(await api(url, 'POST', '/robots', { auth: admin, body: { name: 'scanner', permissions: [{ project: '*', actions: ['pull'] }] } }), 201);
    assert.deepEqual(everywhere.permissions, [{ project: '*', actions: ['pull'] }]);
    await expectInvalid(await api(url, 'POST', '/robots', { auth: admin, body: { name: 'lost', permissions: [{ project: 'nowhere', actions: ['pull'] }] } }), 'permissions.0.project');
    await expectInvalid(await api(url, 'POST', '/robots', { auth: admin, body: { name: 'twice', permissions: [{ project: 'team', actions: ['pull'] }, { project: 'team', actions: ['push'] }] } }), 'permissions.1.project');

    const listed = await expectStatus<ListPage<Robot>>(await api(url, 'GET', '/robots', { auth: admin }), 200);
    assert.deepEqual(listed.items.map((r) => r.name), ['robot$mirror', 'robot$scanner']);
    await expectError(await api(url, 'GET', '/robots', { auth: owner }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/robots/robot%24mirror', { auth: owner }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/robots/robot%24nobody', { auth: owner }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/robots/robot%24nobody', { auth: admin }), 404, 'NOT_FOUND');
    // The system robot sees both of its projects, and no other private one.
    const mirror = basic(created.name, created.secret!);
    const projects = await expectStatus<ListPage<Project>>(await api(url, 'GET', '/projects?q=a', { auth: mirror }), 200);
    assert.ok(projects.items.some((p) => p.name === 'team') && projects.items.some((p) => p.name === 'alpha'));
    assert.ok(!projects.items.some((p) => p.name === 'crew'));
  });
});
