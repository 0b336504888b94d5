// Idle upload sessions are removed after uploads.ttl (checked hourly, by the scheduled job
// upload-expiry), with their bytes; a session in use does not expire. On a clock the test moves
// (node:test's mocked Date: the scheduler computes its ticks on it, and wakes every pollInterval).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { storedUploads, uploadSessionIds } from '../support/backend.ts';
import { expectError, randomBlob, startUpload, uniqueName } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';
import { api, expectStatus } from '../support/api.ts';

const HOUR = 3_600_000;

test('an idle upload session is removed after uploads.ttl, by the hourly check, bytes and all; one in use is kept', async (t) => {
  // Mocked before the server starts, so its hourly expiry schedule runs on the test's clock.
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  const server = await startTestServer({ uploads: { ttl: '2h' }, jobs: { pollInterval: '50ms' } });
  try {
    const auth = { Authorization: adminBasic() };
    /** Waits until the hourly check of the `n`th hour has run (its job succeeded). */
    const hourlyChecks = async (n: number) => {
      for (let i = 0; i < 400; i++) {
        const res = await api(server.url, 'GET', '/jobs?kind=upload-expiry&state=succeeded', { auth: adminBasic() });
        if ((await expectStatus<{ total: number }>(res, 200)).total >= n) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.fail(`hourly check ${n} did not run within 10 s`);
    };
    const name = uniqueName('expiry/app');
    const idle = await startUpload(server.url, name);
    const busy = await startUpload(server.url, name);
    const patch = async (location: string) => {
      const res = await fetch(location, { method: 'PATCH', headers: auth, body: randomBlob(4096) });
      assert.equal(res.status, 202, await res.text());
    };
    await patch(idle);
    await patch(busy);
    const idOf = (location: string) => new URL(location).pathname.split('/').pop()!;
    assert.deepEqual(await storedUploads(server.dataDir), [idOf(idle), idOf(busy)].sort());

    // Hourly checks at 1 h and 2 h: neither session has been idle for more than 2 h yet.
    t.mock.timers.tick(HOUR);
    await hourlyChecks(1);
    await patch(busy);
    t.mock.timers.tick(HOUR);
    await hourlyChecks(2);
    const status = (location: string) => fetch(location, { headers: auth }).then(async (r) => (await r.arrayBuffer(), r.status));
    assert.equal(await status(idle), 204, 'idle for exactly 2 h: not more than uploads.ttl yet');

    // The check at 3 h: the idle one (untouched for 3 h) goes, the busy one (touched at 1 h) stays.
    t.mock.timers.tick(HOUR);
    await hourlyChecks(3);
    assert.equal(await status(idle), 404);
    await expectError(await fetch(idle, { method: 'PATCH', headers: auth, body: randomBlob(10) }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await status(busy), 204, 'touched 2 h ago: kept');
    assert.deepEqual(await storedUploads(server.dataDir), [idOf(busy)], "the expired session's bytes are gone from storage");
    assert.deepEqual(await uploadSessionIds(server.dataDir), [idOf(busy)], 'and its record from the database');
  } finally {
    t.mock.timers.reset();
    await server.close();
  }
});
