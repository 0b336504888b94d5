// Run-time system settings (/api/v1/system/settings): who may read and change them, how bad input
// is refused, and that a change takes effect at once without a restart — project creation by users,
// pulls in the audit log, the announcement signed-in users read from /system/info.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';
import { expectError, pushImage } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'settings-test-password';

interface Setting<T> {
  value: T;
  source: 'config' | 'runtime';
  configValue: T;
  updatedBy: string | null;
  updatedAt: string | null;
}
interface Settings {
  projectCreation: Setting<'admins' | 'everyone'>;
  auditPulls: Setting<boolean>;
  announcement: Setting<string | null>;
}

describe('run-time system settings', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const alice = basic('alice', PASSWORD);

  before(async () => {
    server = await startTestServer();
    url = server.url;
    await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username: 'alice', password: PASSWORD } }), 201);
  });
  after(() => server?.close());

  const patch = (body: unknown, auth = admin) => api(url, 'PATCH', '/system/settings', { auth, body });

  test('GET answers each value and where it comes from; only administrators read or change them', async () => {
    const settings = await expectStatus<Settings>(await api(url, 'GET', '/system/settings', { auth: admin }), 200);
    assert.deepEqual(settings, {
      projectCreation: { value: 'admins', source: 'config', configValue: 'admins', updatedBy: null, updatedAt: null },
      auditPulls: { value: false, source: 'config', configValue: false, updatedBy: null, updatedAt: null },
      announcement: { value: null, source: 'config', configValue: null, updatedBy: null, updatedAt: null },
    });
    await expectError(await api(url, 'GET', '/system/settings', { auth: alice }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/system/settings'), 401, 'UNAUTHORIZED');
    await expectError(await patch({ auditPulls: true }, alice), 403, 'DENIED');
    await expectError(await api(url, 'PATCH', '/system/settings', { body: { auditPulls: true } }), 401, 'UNAUTHORIZED');
    const after = await expectStatus<Settings>(await api(url, 'GET', '/system/settings', { auth: admin }), 200);
    assert.equal(after.auditPulls.source, 'config', 'refused changes changed nothing');
  });

  test('bad values and unknown keys are refused naming the field, and never echoed', async () => {
    await expectInvalid(await patch({ projectCreation: 'nobody' }), 'projectCreation');
    await expectInvalid(await patch({ auditPulls: 'yes' }), 'auditPulls');
    await expectInvalid(await patch({ announcement: 'x'.repeat(501) }), 'announcement');
    await expectInvalid(await patch({ announcement: 42 }), 'announcement');
    const env = await expectInvalid(await patch({ announcement: 'hello\u0007<bell>' }), 'announcement');
    assert.ok(!JSON.stringify(env).includes('<bell>'), 'the value is not echoed');
    await expectInvalid(await patch({ anonymousPull: true }), 'anonymousPull');
    await expectInvalid(await patch({ projectCreation: 'everyone', 'x<script>': 1 }), 'x<script>');
    const settings = await expectStatus<Settings>(await api(url, 'GET', '/system/settings', { auth: admin }), 200);
    assert.equal(settings.projectCreation.value, 'admins', 'a refused request changes nothing, not even its valid keys');
  });

  test('projectCreation everyone lets a user create a project at once; null goes back to the configuration', async () => {
    await expectError(await api(url, 'POST', '/projects', { auth: alice, body: { name: 'alice-before' } }), 403, 'DENIED');
    const changed = await expectStatus<Settings>(await patch({ projectCreation: 'everyone' }), 200);
    assert.equal(changed.projectCreation.value, 'everyone');
    assert.equal(changed.projectCreation.source, 'runtime');
    assert.equal(changed.projectCreation.updatedBy, 'admin');
    assert.ok(changed.projectCreation.updatedAt);
    assert.equal(changed.auditPulls.source, 'config', 'keys left out are unchanged');
    await expectStatus(await api(url, 'POST', '/projects', { auth: alice, body: { name: 'alice-own' } }), 201);
    const info = await expectStatus(await api(url, 'GET', '/system/info', { auth: alice }), 200);
    assert.equal(info.projectCreation, 'everyone');

    const audit = await expectStatus<ListPage<{ actor: string; detail: { keys: string[] } }>>(await api(url, 'GET', '/audit?action=settings.update', { auth: admin }), 200);
    assert.deepEqual(audit.items[0]?.detail, { keys: ['projectCreation'] });
    assert.equal(audit.items[0]?.actor, 'admin');

    const reset = await expectStatus<Settings>(await patch({ projectCreation: null }), 200);
    assert.deepEqual(reset.projectCreation, { value: 'admins', source: 'config', configValue: 'admins', updatedBy: null, updatedAt: null });
    await expectError(await api(url, 'POST', '/projects', { auth: alice, body: { name: 'alice-after' } }), 403, 'DENIED');
  });

  test('auditPulls true writes pull records from the next pull on; false stops them', async () => {
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'pulled' } }), 201);
    const image = await pushImage(url, 'pulled/app', 'v1', { auth: admin });
    const pull = async () => {
      const res = await fetch(`${url}/v2/pulled/app/manifests/v1`, { headers: { Authorization: admin, Accept: image.mediaType } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    };
    const pulls = async () => (await expectStatus<ListPage<unknown>>(await api(url, 'GET', '/audit?action=pull&project=pulled', { auth: admin }), 200)).total;
    await pull();
    await sleep(100);
    assert.equal(await pulls(), 0, 'audit.pulls is off in the configuration');

    await expectStatus(await patch({ auditPulls: true }), 200);
    await pull();
    let seen = 0;
    for (let i = 0; i < 50 && seen === 0; i++) {
      seen = await pulls();
      if (seen === 0) await sleep(20);
    }
    assert.equal(seen, 1, 'the pull after the change is audited');
    assert.equal((await expectStatus(await api(url, 'GET', '/system/info', { auth: admin }), 200)).auditPulls, true);

    await expectStatus(await patch({ auditPulls: false }), 200);
    await pull();
    await sleep(100);
    assert.equal(await pulls(), 1, 'false (set at run time) stops them');
  });

  test('the announcement: plain text for signed-in users in /system/info, null for anonymous callers; empty clears it', async () => {
    const text = 'Maintenance on Friday 18:00 UTC.\n<b>Not</b> HTML & never rendered as such.';
    const set = await expectStatus<Settings>(await patch({ announcement: text }), 200);
    assert.equal(set.announcement.value, text);
    assert.equal((await expectStatus(await api(url, 'GET', '/system/info', { auth: alice }), 200)).announcement, text);
    assert.equal((await expectStatus(await api(url, 'GET', '/system/info'), 200)).announcement, null);
    await expectStatus(await patch({ announcement: 'x'.repeat(500) }), 200);
    const cleared = await expectStatus<Settings>(await patch({ announcement: '   ' }), 200);
    assert.deepEqual(cleared.announcement, { value: null, source: 'config', configValue: null, updatedBy: null, updatedAt: null });
    assert.equal((await expectStatus(await api(url, 'GET', '/system/info', { auth: alice }), 200)).announcement, null);
  });
});
