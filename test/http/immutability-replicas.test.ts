// Tag immutability across two replicas, A and B, on one PostgreSQL database: B caches a project's
// rules for its pushes, and a rule added, disabled or deleted through A applies on B within a
// notification's trip (the change feed's `immutability` topic), not after the cache's 5 s.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminBasic, api, expectStatus } from '../support/api.ts';
import { pushImage, putManifest, type PushedImage } from '../support/oci.ts';
import { startServerPair, type ServerPair, type TestServer } from '../support/server.ts';

describe('immutability rules across replicas sharing one database', () => {
  let pair: ServerPair;
  let a: TestServer;
  let b: TestServer;
  const admin = adminBasic();

  before(async () => {
    pair = await startServerPair('immutability');
    ({ a, b } = pair);
  });

  after(async () => {
    await pair?.close();
  });

  /** Polls until `check` holds (every 10 ms, up to 3 s); the time it took. */
  async function within(check: () => Promise<boolean>): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < 3_000) {
      if (await check()) return performance.now() - started;
      await sleep(10);
    }
    assert.fail('not seen within 3 s');
  }

  test('a rule added, disabled and deleted through A governs pushes through B within a notification', async () => {
    await expectStatus(await api(a.url, 'POST', '/projects', { auth: admin, body: { name: 'replicated' } }), 201);
    const repo = 'replicated/app';
    const first = await pushImage(b.url, repo, 'v1');
    // B has looked up the project's rules (none) for that push: its cache is warm.
    let last: PushedImage = first;
    /** Pushes another image (stored by digest through A) to v1 through B; its status. */
    const moveThroughB = async (): Promise<number> => {
      last = await pushImage(a.url, repo, undefined);
      const res = await putManifest(b.url, repo, 'v1', last.bytes, last.mediaType);
      await res.arrayBuffer();
      return res.status;
    };
    assert.equal(await moveThroughB(), 201, 'no rule yet');

    const rule = await expectStatus<{ id: number }>(await api(a.url, 'POST', '/projects/replicated/immutability', { auth: admin, body: { tags: { pattern: 'v*' } } }), 201);
    const added = await within(async () => (await moveThroughB()) === 403);
    assert.ok(added < 1_000, `B applied the new rule after ${added.toFixed(0)} ms`);

    await expectStatus(await api(a.url, 'PATCH', `/projects/replicated/immutability/${rule.id}`, { auth: admin, body: { disabled: true } }), 200);
    const disabled = await within(async () => (await moveThroughB()) === 201);
    assert.ok(disabled < 1_000, `B dropped the disabled rule after ${disabled.toFixed(0)} ms`);

    await expectStatus(await api(a.url, 'PATCH', `/projects/replicated/immutability/${rule.id}`, { auth: admin, body: { disabled: false } }), 200);
    await within(async () => (await moveThroughB()) === 403);
    await expectStatus(await api(a.url, 'DELETE', `/projects/replicated/immutability/${rule.id}`, { auth: admin }), 204);
    const deleted = await within(async () => (await moveThroughB()) === 201);
    assert.ok(deleted < 1_000, `B dropped the deleted rule after ${deleted.toFixed(0)} ms`);
    assert.notEqual(last.digest, first.digest);
  });
});
