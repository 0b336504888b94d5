// Failed logins are slowed down per client address and audited; pulls are audited when asked to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { pushImage, uniqueName } from '../support/oci.ts';

test('the throttle: free attempts, then one second more per failure, capped; a success clears it', () => {
  const throttle = new LoginThrottle({ free: 3, windowMs: 60_000, maxDelayMs: 2_500 });
  for (let i = 0; i < 3; i++) {
    assert.equal(throttle.delayFor('10.0.0.1'), 0);
    throttle.failed('10.0.0.1');
  }
  assert.equal(throttle.delayFor('10.0.0.1'), 1000);
  throttle.failed('10.0.0.1');
  assert.equal(throttle.delayFor('10.0.0.1'), 2000);
  throttle.failed('10.0.0.1');
  assert.equal(throttle.delayFor('10.0.0.1'), 2500, 'capped');
  assert.equal(throttle.delayFor('10.0.0.2'), 0, 'per address');
  throttle.succeeded('10.0.0.1');
  assert.equal(throttle.delayFor('10.0.0.1'), 0);
});

describe('failed logins and pulls in the audit log', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ audit: { pulls: true } });
  });
  after(() => server.close());

  async function audit(query: string): Promise<{ actor: string; action: string; resource: string; client: string; success: boolean }[]> {
    const res = await fetch(`${server.url}/api/v1/audit?${query}`, { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { items: { actor: string; action: string; resource: string; client: string; success: boolean }[] }).items;
  }

  test('repeated failures from one address are audited and slowed down', async () => {
    const user = uniqueName('guesser');
    const attempt = async () => {
      const started = Date.now();
      const res = await fetch(`${server.url}/service/token?service=berth`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:wrong`).toString('base64')}` } });
      await res.arrayBuffer();
      assert.equal(res.status, 401);
      return Date.now() - started;
    };
    for (let i = 0; i < 5; i++) assert.ok((await attempt()) < 900, 'the first five answer at once');
    assert.ok((await attempt()) >= 950, 'the sixth waits a second');
    const failures = await audit(`actor=${user}&action=login.failed`);
    assert.equal(failures.length, 6);
    assert.equal(failures[0]!.client, '127.0.0.1');
    assert.equal(failures[0]!.success, false);
  });

  test('a successful token login is audited; with audit.pulls, so is each manifest pull', async () => {
    const name = uniqueName('audited/app');
    await pushImage(server.url, name, 'v1');
    const token = await fetch(`${server.url}/service/token?service=berth&scope=repository:${name}:pull`, { headers: { Authorization: adminBasic() } });
    const jwt = ((await token.json()) as { token: string }).token;
    const pulled = await fetch(`${server.url}/v2/${name}/manifests/v1`, { headers: { Authorization: `Bearer ${jwt}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(pulled.status, 200);
    await pulled.arrayBuffer();
    const pulls = await audit(`action=pull&resource=${encodeURIComponent(name)}`);
    assert.equal(pulls.length, 1);
    assert.equal(pulls[0]!.actor, 'admin');
    const logins = await audit('actor=admin&action=login');
    assert.ok(logins.length >= 1);
  });
});
