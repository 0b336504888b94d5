// Failed logins are refused per (address, user), user and address, and audited; pulls are audited when asked to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LoginThrottle, type ThrottleOptions } from '../../src/auth/throttle.ts';
import { ADMIN_PASSWORD, adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { pushImage, uniqueName } from '../support/oci.ts';

/** A throttle on a clock the test moves. */
function throttleAt(options: Partial<ThrottleOptions> = {}) {
  let now = 1_000_000;
  const throttle = new LoginThrottle({ now: () => now, ...options });
  return { throttle, tick: (ms: number) => void (now += ms) };
}

/** One attempt through the throttle: 'refused', or the outcome reported. */
async function attempt(throttle: LoginThrottle, client: string, user: string, succeeds: boolean): Promise<'refused' | 'checked'> {
  const ticket = await throttle.admit(client, user);
  if ('retryAfterMs' in ticket) return 'refused';
  ticket.done(succeeds);
  return 'checked';
}

test('the throttle refuses a locked (address, user) pair at once; the lock doubles per failure and ends', async () => {
  const { throttle, tick } = throttleAt({ pairFree: 3, baseLockMs: 1_000, maxLockMs: 4_000, windowMs: 60_000 });
  for (let i = 0; i < 3; i++) assert.equal(await attempt(throttle, '10.0.0.1', 'alice', false), 'checked');
  const locked = await throttle.admit('10.0.0.1', 'alice');
  assert.ok('retryAfterMs' in locked && locked.retryAfterMs === 1_000 && locked.key === 'pair', JSON.stringify(locked));
  tick(999);
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', true), 'refused', 'even the right password waits for the lock (the answer would tell)');
  tick(1);
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', false), 'checked', 'one attempt once the lock ends');
  let next = await throttle.admit('10.0.0.1', 'alice');
  assert.ok('retryAfterMs' in next && next.retryAfterMs === 2_000, 'doubled');
  tick(2_000);
  await attempt(throttle, '10.0.0.1', 'alice', false);
  tick(4_000);
  await attempt(throttle, '10.0.0.1', 'alice', false);
  next = await throttle.admit('10.0.0.1', 'alice');
  assert.ok('retryAfterMs' in next && next.retryAfterMs === 4_000, 'capped');
  assert.equal(await attempt(throttle, '10.0.0.2', 'alice', true), 'checked', 'another address is another pair');
  assert.equal(await attempt(throttle, '10.0.0.1', 'bob', true), 'checked', 'another user from the same address is not refused');
  tick(60_001);
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', true), 'checked', 'failures are forgotten after the window');
});

test('the throttle: a success clears only its own pair; a trusted pair is not refused for failures elsewhere', async () => {
  const { throttle, tick } = throttleAt({ pairFree: 5, userFree: 4, addressFree: 6, baseLockMs: 60_000 });
  // alice logged in from her usual address once.
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', true), 'checked');
  // Someone guesses at alice's password from four other addresses…
  for (const client of ['10.9.0.1', '10.9.0.2', '10.9.0.3', '10.9.0.4']) assert.equal(await attempt(throttle, client, 'alice', false), 'checked');
  const elsewhere = await throttle.admit('10.9.0.5', 'alice');
  assert.ok('retryAfterMs' in elsewhere && elsewhere.key === 'user', 'alice is locked for untrusted addresses');
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', true), 'checked', 'but not from where she logged in before');
  // …and at other names from alice's NAT address.
  for (const user of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']) await attempt(throttle, '10.0.0.1', user, false);
  const sprayed = await throttle.admit('10.0.0.1', 'u7');
  assert.ok('retryAfterMs' in sprayed && sprayed.key === 'address', 'the address is locked for names never seen there');
  assert.equal(await attempt(throttle, '10.0.0.1', 'alice', true), 'checked', 'alice still logs in from it');
  // At another address: a success for alice does not clear dave's failures there.
  const { throttle: fresh } = throttleAt({ pairFree: 3, baseLockMs: 60_000 });
  for (let i = 0; i < 3; i++) assert.equal(await attempt(fresh, '10.0.0.2', 'dave', false), 'checked');
  assert.equal(await attempt(fresh, '10.0.0.2', 'alice', true), 'checked');
  const dave = await fresh.admit('10.0.0.2', 'dave');
  assert.ok('retryAfterMs' in dave && dave.key === 'pair', JSON.stringify(dave));
});


test('the throttle: one attempt of a pair at a time, a bounded queue, bounded attempts per address', async () => {
  const { throttle } = throttleAt({ maxQueuedPerPair: 2, maxActivePerAddress: 2 });
  const first = await throttle.admit('10.0.0.1', 'alice');
  assert.ok(!('retryAfterMs' in first));
  let secondAdmitted = false;
  const second = throttle.admit('10.0.0.1', 'alice').then((t) => ((secondAdmitted = true), t));
  const third = throttle.admit('10.0.0.1', 'alice');
  const fourth = await throttle.admit('10.0.0.1', 'alice');
  assert.ok('retryAfterMs' in fourth && fourth.key === 'busy', 'beyond the queue: refused');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(secondAdmitted, false, 'the second waits for the first');
  first.done(false);
  const admitted = await second;
  assert.ok(!('retryAfterMs' in admitted));
  const other = await throttle.admit('10.0.0.1', 'bob');
  assert.ok(!('retryAfterMs' in other), 'a second untrusted pair from the address');
  const busy = await throttle.admit('10.0.0.1', 'carol');
  assert.ok('retryAfterMs' in busy && busy.key === 'busy', 'a third at once from one address is refused');
  admitted.done(false);
  other.done(undefined);
  const last = await third;
  assert.ok(!('retryAfterMs' in last));
  last.done(true);
});

describe('failed logins and pulls in the audit log', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ audit: { pulls: true }, trustedProxies: ['127.0.0.1'] });
  });
  after(() => server.close());

  async function audit(query: string): Promise<{ actor: string; action: string; resource: string; client: string; success: boolean }[]> {
    const res = await fetch(`${server.url}/api/v1/audit?${query}`, { headers: { Authorization: adminBasic() } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { items: { actor: string; action: string; resource: string; client: string; success: boolean }[] }).items;
  }

  test('repeated failures are audited, then refused with 429 and Retry-After; another user behind the same address is not', async () => {
    const user = uniqueName('guesser');
    const attempt = async (name: string, password: string, client = '198.51.100.7') => {
      const res = await fetch(`${server.url}/service/token?service=berth`, {
        headers: { Authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`, 'X-Forwarded-For': client },
      });
      const body = await res.text();
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body };
    };
    for (let i = 0; i < 5; i++) assert.equal((await attempt(user, 'wrong')).status, 401);
    const refused = await attempt(user, 'wrong');
    assert.equal(refused.status, 429, refused.body);
    assert.match(refused.retryAfter ?? '', /^\d+$/);
    assert.equal((JSON.parse(refused.body) as { errors: { code: string }[] }).errors[0]!.code, 'TOOMANYREQUESTS');
    const failures = await audit(`actor=${user}&action=login.failed`);
    assert.equal(failures.length, 5, 'refused attempts were never checked');
    assert.equal(failures[0]!.client, '198.51.100.7', 'the address a trusted proxy reported');
    assert.equal(failures[0]!.success, false);
    assert.equal((await attempt('admin', ADMIN_PASSWORD)).status, 200, 'another user from the same address logs in');
    assert.equal((await attempt(user, 'wrong')).status, 429, 'and that success did not clear the guesser');
  });

  test('100 parallel guesses: at most the free attempts are checked, the rest refused', async () => {
    const user = uniqueName('parallel');
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        fetch(`${server.url}/service/token?service=berth`, {
          headers: { Authorization: `Basic ${Buffer.from(`${user}:guess`).toString('base64')}`, 'X-Forwarded-For': '198.51.100.8' },
        }).then(async (res) => (await res.arrayBuffer(), res.status)),
      ),
    );
    assert.equal(results.filter((s) => s === 401).length, 5, JSON.stringify(results));
    assert.equal(results.filter((s) => s === 429).length, 95);
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

  test('a token login is audited once per credential, scope and client in a few minutes; failures always', async () => {
    const user = uniqueName('pusher');
    await fetch(`${server.url}/api/v1/users`, { method: 'POST', headers: { Authorization: adminBasic(), 'Content-Type': 'application/json' }, body: JSON.stringify({ username: user, password: 'pusher-password' }) });
    const token = (scope: string, password = 'pusher-password') =>
      fetch(`${server.url}/service/token?service=berth&scope=${scope}`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } }).then(async (r) => (await r.arrayBuffer(), r.status));
    // What one push asks for: the same scope three times, then another.
    for (let i = 0; i < 3; i++) assert.equal(await token('repository:x/y:pull,push'), 200);
    assert.equal(await token('repository:x/z:pull'), 200);
    assert.equal(await token('repository:x/y:pull,push', 'wrong'), 401);
    assert.equal(await token('repository:x/y:pull,push', 'wrong'), 401);
    const logins = await audit(`actor=${user}&action=login`);
    assert.deepEqual(logins.map((l) => (l as unknown as { detail: { scope: string } }).detail.scope).sort(), ['repository:x/y:pull,push', 'repository:x/z:pull']);
    assert.equal((await audit(`actor=${user}&action=login.failed`)).length, 2);
  });
});
