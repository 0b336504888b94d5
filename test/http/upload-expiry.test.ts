// Idle upload sessions are removed after uploads.ttl (checked hourly), with their bytes; a session
// in use does not expire. On a clock the test moves (node:test's mocked Date and setInterval).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { expectError, randomBlob, startUpload, uniqueName } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';

const HOUR = 3_600_000;

test('an idle upload session is removed after uploads.ttl, by the hourly check, bytes and all; one in use is kept', async (t) => {
  // Mocked before the server starts, so its hourly expiry timer runs on the test's clock.
  t.mock.timers.enable({ apis: ['Date', 'setInterval'], now: Date.now() });
  const server = await startTestServer({ uploads: { ttl: '2h' } });
  try {
    const auth = { Authorization: adminBasic() };
    const name = uniqueName('expiry/app');
    const idle = await startUpload(server.url, name);
    const busy = await startUpload(server.url, name);
    const patch = async (location: string) => {
      const res = await fetch(location, { method: 'PATCH', headers: auth, body: randomBlob(4096) });
      assert.equal(res.status, 202, await res.text());
    };
    await patch(idle);
    await patch(busy);
    const uploadFiles = () => readdirSync(join(server.dataDir, 'storage', 'uploads')).length;
    assert.equal(uploadFiles(), 2);

    // Hourly checks at 1 h and 2 h: neither session has been idle for more than 2 h yet.
    t.mock.timers.tick(HOUR);
    await patch(busy);
    t.mock.timers.tick(HOUR);
    await settle();
    const status = (location: string) => fetch(location, { headers: auth }).then(async (r) => (await r.arrayBuffer(), r.status));
    assert.equal(await status(idle), 204, 'idle for exactly 2 h: not more than uploads.ttl yet');

    // The check at 3 h: the idle one (untouched for 3 h) goes, the busy one (touched at 1 h) stays.
    t.mock.timers.tick(HOUR);
    await waitFor(async () => (await status(idle)) === 404);
    await expectError(await fetch(idle, { method: 'PATCH', headers: auth, body: randomBlob(10) }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await status(busy), 204, 'touched 2 h ago: kept');
    assert.equal(uploadFiles(), 1, "the expired session's bytes are gone from storage");
  } finally {
    t.mock.timers.reset();
    await server.close();
  }
});

/** Lets the work a timer started run (its database and file I/O). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits (bounded) until `done` holds: the expiry runs asynchronously after its timer fired. */
async function waitFor(done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await done()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail('the condition did not hold after 200 turns of the event loop');
}
