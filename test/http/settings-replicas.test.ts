// Run-time settings across two replicas, A and B, on one PostgreSQL database: a change made through
// A takes effect on B within a change notification's trip (the feed's `settings` topic) — B's pull
// path answers auditPulls from memory, so only the notification can make it see the change soon.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminBasic, api, basic, expectStatus, type ListPage } from '../support/api.ts';
import { pushImage } from '../support/oci.ts';
import { startServerPair, type ServerPair, type TestServer } from '../support/server.ts';

const PASSWORD = 'replica-settings-password';

describe('run-time settings across replicas sharing one database', () => {
  let pair: ServerPair;
  let a: TestServer;
  let b: TestServer;
  const admin = adminBasic();

  before(async () => {
    pair = await startServerPair('settings');
    ({ a, b } = pair);
    await expectStatus(await api(a.url, 'POST', '/users', { auth: admin, body: { username: 'alice', password: PASSWORD } }), 201);
  });
  after(async () => {
    await pair?.close();
  });

  /** Polls until `check` holds (every 10 ms, up to 3 s — far below the snapshot's 60 s lifetime). */
  async function within(check: () => Promise<boolean>): Promise<void> {
    const started = performance.now();
    while (performance.now() - started < 3_000) {
      if (await check()) return;
      await sleep(10);
    }
    assert.fail('not seen within 3 s');
  }

  test('auditPulls and projectCreation set through A apply on B without a restart', async () => {
    await expectStatus(await api(a.url, 'POST', '/projects', { auth: admin, body: { name: 'shared' } }), 201);
    const image = await pushImage(b.url, 'shared/app', 'v1', { auth: admin });
    const pullThroughB = async () => {
      const res = await fetch(`${b.url}/v2/shared/app/manifests/v1`, { headers: { Authorization: admin, Accept: image.mediaType } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    };
    const audited = async () => (await expectStatus<ListPage<unknown>>(await api(a.url, 'GET', '/audit?action=pull&project=shared', { auth: admin }), 200)).total;
    await pullThroughB();
    await sleep(100);
    assert.equal(await audited(), 0, 'pulls are not audited by configuration');

    await expectStatus(await api(a.url, 'PATCH', '/system/settings', { auth: admin, body: { auditPulls: true, projectCreation: 'everyone', announcement: 'from A' } }), 200);
    await within(async () => {
      await pullThroughB();
      await sleep(20);
      return (await audited()) > 0;
    });
    const alice = basic('alice', PASSWORD);
    await within(async () => (await api(b.url, 'POST', '/projects', { auth: alice, body: { name: 'alice-on-b' } })).status === 201);
    const info = await expectStatus(await api(b.url, 'GET', '/system/info', { auth: alice }), 200);
    assert.equal(info.announcement, 'from A');
    const settings = await expectStatus<{ auditPulls: { source: string; updatedBy: string } }>(await api(b.url, 'GET', '/system/settings', { auth: admin }), 200);
    assert.deepEqual([settings.auditPulls.source, settings.auditPulls.updatedBy], ['runtime', 'admin']);
  });
});
