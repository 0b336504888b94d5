// Webhooks end to end, with a receiver the test runs: a push is delivered, signed (checked by an
// independent Standard Webhooks implementation), in Harbor's format and as CloudEvents; a receiver
// that is down gets the message after it returns (retries with backoff); and — on PostgreSQL — a
// replica killed right after the push was acknowledged does not lose the event: another delivers it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminBasic, api, expectStatus } from '../support/api.ts';
import { pushImage, uniqueName } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { Receiver, verifyStandardWebhook } from '../webhooks/receiver.ts';
import { killedReplicaCase } from './webhooks-replicas.ts';

interface Delivery {
  id: number;
  state: string;
  attempts: number;
  statusCode: number | null;
  error: string | null;
  messageId: string;
}

describe('webhooks end to end', { timeout: 90_000 }, () => {
  let server: TestServer;
  const receiver = new Receiver();
  const admin = adminBasic();

  before(async () => {
    await receiver.start();
    server = await startTestServer({ webhooks: { retryDelay: '300ms', timeout: '3s', maxAttempts: 6 }, events: { pollInterval: '50ms' } });
  });
  after(async () => {
    await server?.close();
    await receiver.stop();
  });

  async function project(): Promise<string> {
    const name = uniqueName('hooks');
    await expectStatus(await api(server.url, 'POST', '/projects', { auth: admin, body: { name } }), 201);
    return name;
  }

  test('a push is delivered in Harbor format, signed with the generated secret', async () => {
    const name = await project();
    const created = await expectStatus<{ secret: string; hasSecret: boolean }>(
      await api(server.url, 'POST', `/projects/${name}/webhooks`, { auth: admin, body: { name: 'ci', url: receiver.url('/harbor'), events: ['artifact.pushed'], generateSecret: true } }),
      201,
    );
    assert.match(created.secret, /^whsec_/);
    assert.equal(created.hasSecret, true);
    const image = await pushImage(server.url, `${name}/app`, 'v1');
    const got = await receiver.waitFor((r) => r.path === '/harbor' && r.body.includes(image.digest));
    verifyStandardWebhook(created.secret, got.headers, got.body);
    assert.throws(() => verifyStandardWebhook(created.secret, got.headers, got.body.replace('v1', 'v2')), /no signature matches/);
    const payload = JSON.parse(got.body) as Record<string, any>;
    assert.equal(payload.type, 'PUSH_ARTIFACT');
    assert.equal(typeof payload.occur_at, 'number');
    assert.ok(Math.abs(payload.occur_at - Date.now() / 1000) < 60, 'occur_at is in seconds');
    assert.equal(payload.operator, 'admin');
    assert.deepEqual(payload.event_data.repository, { name: 'app', namespace: name, repo_full_name: `${name}/app`, repo_type: 'private' });
    assert.equal(payload.event_data.resources[0].digest, image.digest);
    assert.equal(payload.event_data.resources[0].tag, 'v1');
    assert.match(payload.event_data.resources[0].resource_url, new RegExp(`^127\\.0\\.0\\.1:\\d+/${name}/app:v1$`));
    assert.equal(got.headers['content-type'], 'application/json');
    // The delivery log says so.
    const page = await expectStatus<{ items: Delivery[] }>(await api(server.url, 'GET', `/projects/${name}/webhooks/ci/deliveries`, { auth: admin }), 200);
    const delivery = page.items.find((d) => d.messageId === got.headers['webhook-id']);
    assert.ok(delivery, 'the delivery is listed under its message id');
    await waitUntil(async () => (await expectStatus<Delivery>(await api(server.url, 'GET', `/projects/${name}/webhooks/ci/deliveries/${delivery.id}`, { auth: admin }), 200)).state === 'delivered');
  });

  test('CloudEvents 1.0 payloads, signed with a given secret', async () => {
    const name = await project();
    const secret = `whsec_${Buffer.from('0123456789abcdef01234567').toString('base64')}`;
    await expectStatus(
      await api(server.url, 'POST', `/projects/${name}/webhooks`, { auth: admin, body: { name: 'ce', url: receiver.url('/ce'), events: ['artifact.pushed', 'artifact.deleted'], format: 'cloudevents', secret } }),
      201,
    );
    const image = await pushImage(server.url, `${name}/svc`, 'latest');
    const got = await receiver.waitFor((r) => r.path === '/ce' && r.body.includes(image.digest));
    verifyStandardWebhook(secret, got.headers, got.body);
    const event = JSON.parse(got.body) as Record<string, any>;
    assert.equal(event.specversion, '1.0');
    assert.equal(event.type, 'io.berth.artifact.pushed');
    assert.equal(event.id, got.headers['webhook-id']);
    assert.equal(event.datacontenttype, 'application/json');
    assert.ok(typeof event.source === 'string' && event.source.length > 0);
    assert.ok(!Number.isNaN(Date.parse(event.time)) && /T.*Z$/.test(event.time), 'time is RFC 3339');
    assert.equal(event.data.repository, `${name}/svc`);
    assert.equal(event.data.digest, image.digest);
    assert.equal(event.data.tag, 'latest');
  });

  test('a receiver that is down gets the message after it returns', async () => {
    const name = await project();
    const down = new Receiver();
    await down.start();
    await expectStatus(await api(server.url, 'POST', `/projects/${name}/webhooks`, { auth: admin, body: { name: 'flaky', url: down.url('/flaky'), events: ['artifact.pushed'] } }), 201);
    await down.stop();
    const image = await pushImage(server.url, `${name}/app`, 'v1');
    // At least two refused attempts are logged before the receiver comes back.
    const list = async () => (await expectStatus<{ items: Delivery[] }>(await api(server.url, 'GET', `/projects/${name}/webhooks/flaky/deliveries`, { auth: admin }), 200)).items;
    await waitUntil(async () => ((await list())[0]?.attempts ?? 0) >= 2);
    const pending = (await list())[0]!;
    assert.equal(pending.state, 'pending');
    assert.match(pending.error ?? '', /unreachable/);
    await down.start();
    try {
      const got = await down.waitFor((r) => r.body.includes(image.digest), 30_000);
      assert.equal(got.headers['webhook-id'], pending.messageId, 'the retry carries the same message id');
      assert.equal(got.headers['webhook-signature'], undefined, 'no secret: unsigned');
      await waitUntil(async () => (await list())[0]!.state === 'delivered');
      const done = (await list())[0]!;
      assert.ok(done.attempts >= 3, `attempts: ${done.attempts}`);
      assert.equal(done.statusCode, 200);
    } finally {
      await down.stop();
    }
  });

  test('a replica killed right after the push is acknowledged: another replica delivers the event', killedReplicaCase);
});

/** Polls `check` (bounded) until it holds. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
