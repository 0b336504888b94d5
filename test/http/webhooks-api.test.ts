// Webhook policies through the API and the CLI on one real server, with a receiver the test runs:
// CRUD by a project administrator; secrets and auth headers in no answer, log line or audit row
// (the shared leak scanner checks both when the server stops); test events, the delivery log with
// the request body and a response excerpt of at most 1 KiB, redelivery with the same message id;
// artifact.pulled only once a webhook subscribes; quota.warning once per crossing and
// quota.exceeded; and attackers — non-members, developers, anonymous callers, another project's
// webhook or delivery id, hostile settings.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { adminBasic, api, basic, expectInvalid, expectStatus } from '../support/api.ts';
import { berthCli, tableRows, type Cli } from '../support/cli.ts';
import { expectError, pushImage } from '../support/oci.ts';
import { rememberSecret } from '../support/secrets.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { Receiver, verifyStandardWebhook } from '../webhooks/receiver.ts';

const PASSWORD = 'webhooks-test-password';
const AUTH_HEADER = 'Bearer hook-token-7f3a9c1e5b2d4f60';
rememberSecret(AUTH_HEADER);
rememberSecret(AUTH_HEADER.slice(7));

interface Webhook {
  name: string;
  url: string;
  events: string[];
  format: string;
  enabled: boolean;
  hasSecret: boolean;
  hasAuthHeader: boolean;
  secret?: string;
}
interface Delivery {
  id: number;
  state: string;
  attempts: number;
  statusCode: number | null;
  messageId: string;
  eventType: string;
  request?: string;
  response?: string | null;
}

describe('webhooks API and CLI', { timeout: 120_000 }, () => {
  let server: TestServer;
  let url: string;
  const receiver = new Receiver();
  const admin = adminBasic();
  const owner = basic('owner', PASSWORD);
  const dev = basic('dev', PASSWORD);
  const stranger = basic('stranger', PASSWORD);
  let home: string;
  let cli: Cli;

  const call = async <T = Record<string, unknown>>(method: string, p: string, status: number, body?: unknown, auth: string | undefined = owner): Promise<T> =>
    expectStatus<T>(await api(url, method, p, { auth, ...(body !== undefined ? { body } : {}) }), status, `${method} ${p}`);
  const waitDelivered = async (p: string, id: number): Promise<Delivery> => {
    for (let i = 0; i < 100; i++) {
      const d = await call<Delivery>('GET', `${p}/deliveries/${id}`, 200);
      if (d.state !== 'pending') return d;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`delivery ${id} still pending`);
  };

  before(async () => {
    await receiver.start();
    server = await startTestServer({ webhooks: { retryDelay: '200ms', timeout: '3s' }, events: { pollInterval: '50ms' } });
    url = server.url;
    for (const username of ['owner', 'dev', 'stranger']) await call('POST', '/users', 201, { username, password: PASSWORD }, admin);
    for (const name of ['alpha', 'beta']) {
      await call('POST', '/projects', 201, { name }, admin);
      await call('POST', `/projects/${name}/members`, 201, { username: 'owner', role: 'projectAdmin' }, admin);
    }
    await call('POST', '/projects/alpha/members', 201, { username: 'dev', role: 'developer' }, admin);
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-webhook-cli-'));
    cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'cli.json') }, cwd: home, secrets: () => [ADMIN_PASSWORD, PASSWORD, AUTH_HEADER] });
    await cli(['login', url, '-u', 'owner', '--password-stdin'], { input: `${PASSWORD}\n` });
  });
  after(async () => {
    await server?.close();
    await receiver.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('create, read, change and delete; the secret shown once and the auth header never; audit without them', async () => {
    const created = await call<Webhook>('POST', '/projects/alpha/webhooks', 201, { name: 'ci', url: receiver.url('/ci'), events: ['artifact.pushed', 'artifact.deleted'], generateSecret: true, authHeader: AUTH_HEADER });
    assert.match(created.secret ?? '', /^whsec_/);
    assert.equal(created.hasSecret, true);
    assert.equal(created.hasAuthHeader, true);
    assert.equal(created.format, 'harbor');
    const shown = await call<Webhook>('GET', '/projects/alpha/webhooks/ci', 200);
    assert.equal(shown.secret, undefined);
    assert.ok(!JSON.stringify(shown).includes(AUTH_HEADER.slice(7)));
    const list = await call<{ items: Webhook[]; total: number }>('GET', '/projects/alpha/webhooks', 200);
    assert.deepEqual(list.items.map((w) => w.name), ['ci']);
    const changed = await call<Webhook>('PATCH', '/projects/alpha/webhooks/ci', 200, { format: 'cloudevents', events: ['artifact.pushed'] });
    assert.equal(changed.format, 'cloudevents');
    assert.deepEqual(changed.events, ['artifact.pushed']);
    assert.equal(changed.hasSecret, true, 'an unrelated change keeps the secret');
    await call('POST', '/projects/alpha/webhooks', 409, { name: 'ci', url: receiver.url(), events: ['artifact.pushed'] });
    // The same name in another project is another webhook.
    await call('POST', '/projects/beta/webhooks', 201, { name: 'ci', url: receiver.url('/beta'), events: ['artifact.pushed'] });

    // A test event: delivered with the auth header and a signature the receiver verifies.
    const queued = await call<Delivery>('POST', '/projects/alpha/webhooks/ci/test', 202);
    const got = await receiver.waitFor((r) => r.headers['webhook-id'] === queued.messageId);
    assert.equal(got.headers.authorization, AUTH_HEADER);
    verifyStandardWebhook(created.secret!, got.headers, got.body);
    assert.equal((JSON.parse(got.body) as { type: string }).type, 'io.berth.artifact.pushed');
    const done = await waitDelivered('/projects/alpha/webhooks/ci', queued.id);
    assert.equal(done.state, 'delivered');
    assert.equal(done.request, got.body);

    const audit = await call<{ items: { action: string; detail: unknown }[] }>('GET', '/audit?project=alpha', 200, undefined, admin);
    const actions = audit.items.map((a) => a.action);
    assert.ok(actions.includes('webhook.create') && actions.includes('webhook.update'), actions.join());
    assert.ok(!JSON.stringify(audit).includes('whsec_'), 'no secret in the audit log');

    await call('DELETE', '/projects/beta/webhooks/ci', 204);
    await call('GET', '/projects/beta/webhooks/ci', 404);
  });

  test('the response excerpt is at most 1 KiB; redelivery sends the same message again', async () => {
    await call('POST', '/projects/alpha/webhooks', 201, { name: 'big', url: receiver.url('/big'), events: ['artifact.pushed'] });
    receiver.answer = 'x'.repeat(5000);
    try {
      const queued = await call<Delivery>('POST', '/projects/alpha/webhooks/big/test', 202);
      const done = await waitDelivered('/projects/alpha/webhooks/big', queued.id);
      assert.equal(done.response?.length, 1024);
      const again = await call<Delivery>('POST', `/projects/alpha/webhooks/big/deliveries/${queued.id}/redeliver`, 202);
      assert.equal(again.messageId, queued.messageId);
      assert.equal(again.state, 'pending');
      await waitDelivered('/projects/alpha/webhooks/big', queued.id);
      assert.equal(receiver.received.filter((r) => r.headers['webhook-id'] === queued.messageId).length, 2);
      const page = await call<{ items: Delivery[] }>('GET', '/projects/alpha/webhooks/big/deliveries?state=delivered', 200);
      assert.ok(page.items.every((d) => d.state === 'delivered' && d.request === undefined));
      assert.equal((await call<{ items: Delivery[] }>('GET', '/projects/alpha/webhooks/big/deliveries?state=failed', 200)).items.length, 0);
    } finally {
      receiver.answer = '{"ok":true}';
    }
  });

  test('attackers: non-members, developers, anonymous callers, other projects\' ids, hostile settings', async () => {
    const hook = '/projects/alpha/webhooks/ci';
    await expectError(await api(url, 'GET', '/projects/alpha/webhooks', { auth: stranger }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', hook, { auth: stranger }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', '/projects/alpha/webhooks', { auth: stranger, body: { name: 'x', url: receiver.url(), events: ['artifact.pushed'] } }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/projects/alpha/webhooks', { auth: dev }), 403, 'DENIED');
    await expectError(await api(url, 'POST', `${hook}/test`, { auth: dev }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/projects/alpha/webhooks'), 401);
    // A delivery of alpha's webhook asked for under beta's webhook of the same name: 404.
    await call('POST', '/projects/beta/webhooks', 201, { name: 'ci', url: receiver.url('/beta'), events: ['artifact.pushed'] });
    const alphaDelivery = (await call<{ items: Delivery[] }>('GET', `${hook}/deliveries`, 200)).items[0]!;
    await expectError(await api(url, 'GET', `/projects/beta/webhooks/ci/deliveries/${alphaDelivery.id}`, { auth: owner }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', `/projects/beta/webhooks/ci/deliveries/${alphaDelivery.id}/redeliver`, { auth: owner }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', `${hook}/deliveries/99999999`, { auth: owner }), 404, 'NOT_FOUND');
    for (const bad of ['0', '-1', 'abc', '1e3', '9'.repeat(30)]) await expectError(await api(url, 'GET', `${hook}/deliveries/${bad}`, { auth: owner }), 400);

    const create = (body: Record<string, unknown>) => api(url, 'POST', '/projects/alpha/webhooks', { auth: owner, body: { name: 'bad', events: ['artifact.pushed'], ...body } });
    for (const [target, field] of [
      ['ftp://127.0.0.1/x', 'url'],
      ['file:///etc/passwd', 'url'],
      ['https://user:pass@127.0.0.1/x', 'url'],
      ['http://127.0.0.1/x#frag', 'url'],
      ['not a url', 'url'],
    ] as const) {
      const env = await expectInvalid(await create({ url: target }), field);
      if (target.length > 8) assert.ok(!JSON.stringify(env).includes(target), 'the refusal does not echo the URL');
    }
    await expectError(await create({ url: `http://127.0.0.1/${'a'.repeat(3000)}` }), 400);
    await expectError(await create({ url: receiver.url(), events: ['artifact.exploded'] }), 400);
    await expectError(await create({ url: receiver.url(), events: [] }), 400);
    await expectError(await create({ url: receiver.url(), format: 'xml' }), 400);
    await expectError(await create({ url: receiver.url(), admin: true }), 400);
    await expectInvalid(await create({ url: receiver.url(), secret: 'plain-text-secret' }), 'secret');
    await expectInvalid(await create({ url: receiver.url(), authHeader: 'Bearer x\r\nX-Injected: 1' }), 'authHeader');
    await expectInvalid(await create({ url: receiver.url(), caFile: 'relative/ca.pem' }), 'caFile');
    await expectInvalid(await create({ url: receiver.url(), caFile: '/etc/passwd' }), 'caFile');
    await expectError(await api(url, 'POST', '/projects/alpha/webhooks', { auth: owner, body: { name: '../x', url: receiver.url(), events: ['artifact.pushed'] } }), 400);
    await expectError(await api(url, 'POST', '/projects/alpha/webhooks', { auth: owner, body: '{"name":' }), 400);
    await expectError(await api(url, 'GET', '/projects/alpha/webhooks/..%2F..%2Fusers', { auth: owner }), 400);
    await call('GET', '/projects/alpha/webhooks/bad', 404);
  });

  test('artifact.pulled only while a webhook subscribes; quota.warning once per crossing, then quota.exceeded', async () => {
    await call('POST', '/projects', 201, { name: 'gamma' }, admin);
    const first = await pushImage(url, 'gamma/app', 'v1');
    // No webhook wants pulls yet: a pull records nothing.
    const pull = async () => (await fetch(`${url}/v2/gamma/app/manifests/v1`, { headers: { Authorization: admin, Accept: first.mediaType } })).arrayBuffer();
    await pull();
    await call('POST', '/projects/gamma/webhooks', 201, { name: 'all', url: receiver.url('/gamma'), events: ['artifact.pulled', 'quota.warning', 'quota.exceeded'] }, admin);
    const pulled = await (async () => {
      for (let i = 0; i < 50; i++) {
        await pull();
        const hit = receiver.received.find((r) => r.path === '/gamma' && r.body.includes('PULL_ARTIFACT'));
        if (hit) return hit;
        await new Promise((r) => setTimeout(r, 100));
      }
      return receiver.waitFor((r) => r.path === '/gamma' && r.body.includes('PULL_ARTIFACT'));
    })();
    const body = JSON.parse(pulled.body) as { operator: string; event_data: { resources: { digest: string; tag: string }[] } };
    assert.equal(body.operator, 'admin');
    assert.equal(body.event_data.resources[0]!.digest, first.digest);
    const deliveries = await call<{ items: Delivery[] }>('GET', '/projects/gamma/webhooks/all/deliveries', 200, undefined, admin);
    assert.ok(deliveries.items.every((d) => d.eventType === 'artifact.pulled'), 'the pull before the webhook was not recorded');

    // Quota: past 85 % with the second image, over it with the third.
    const usage = (await call<{ usageBytes: number }>('GET', '/projects/gamma', 200, undefined, admin)).usageBytes;
    await call('PATCH', '/projects/gamma', 200, { quotaBytes: Math.round((2 * usage) / 0.9) }, admin);
    await pushImage(url, 'gamma/app', 'v2');
    const warning = await receiver.waitFor((r) => r.path === '/gamma' && r.body.includes('QUOTA_WARNING'));
    assert.match((JSON.parse(warning.body) as { event_data: { custom_attributes: { Details: string } } }).event_data.custom_attributes.Details, /uses \d+ of its \d+ bytes quota/);
    await pushImage(url, 'gamma/app', 'v3').then(
      () => assert.fail('the third push must exceed the quota'),
      () => undefined,
    );
    await receiver.waitFor((r) => r.path === '/gamma' && r.body.includes('QUOTA_EXCEED'));
    assert.equal(receiver.received.filter((r) => r.path === '/gamma' && r.body.includes('QUOTA_WARNING')).length, 1, 'one warning per crossing');
  });

  test('berth webhook create|list|show|update|test|deliveries|redeliver|delete', async () => {
    const created = await cli(['webhook', 'create', 'alpha', 'cli-hook', '--url', receiver.url('/cli'), '--event', 'artifact.pushed,artifact.deleted', '--format', 'cloudevents', '--generate-secret']);
    const secret = /whsec_[A-Za-z0-9+/=]+/.exec(created.stdout)?.[0];
    assert.ok(secret, created.stdout);
    rememberSecret(secret);
    const rows = tableRows((await cli(['webhook', 'list', 'alpha'])).stdout);
    assert.deepEqual(rows[0], ['NAME', 'URL', 'FORMAT', 'EVENTS', 'SIGNED', 'ENABLED']);
    assert.ok(rows.some((r) => r[0] === 'cli-hook' && r[2] === 'cloudevents' && r[4] === 'yes'));
    const shown = await cli(['webhook', 'show', 'alpha', 'cli-hook']);
    assert.match(shown.stdout, /Signed:\s+yes/);
    assert.ok(!shown.stdout.includes(secret));
    await cli(['webhook', 'update', 'alpha', 'cli-hook', '--auth-header-stdin'], { input: `${AUTH_HEADER}\n` });
    assert.equal((await cli.json<Webhook>(['webhook', 'show', 'alpha', 'cli-hook'])).hasAuthHeader, true);
    const tested = await cli(['webhook', 'test', 'alpha', 'cli-hook', '--wait']);
    assert.match(tested.stdout, /^delivered test delivery \d+ \(HTTP 200, \d+ ms\)$/m);
    const got = await receiver.waitFor((r) => r.path === '/cli');
    verifyStandardWebhook(secret, got.headers, got.body);
    assert.equal(got.headers.authorization, AUTH_HEADER);
    const log = tableRows((await cli(['webhook', 'deliveries', 'alpha', 'cli-hook'])).stdout);
    assert.equal(log[1]![2], 'delivered');
    const id = log[1]![0]!;
    const detail = await cli(['webhook', 'deliveries', 'alpha', 'cli-hook', id]);
    assert.match(detail.stdout, /Request body:\n\{"specversion":"1\.0"/);
    assert.match((await cli(['webhook', 'redeliver', 'alpha', 'cli-hook', id])).stdout, /^queued delivery \d+ again/);
    await cli(['webhook', 'update', 'alpha', 'cli-hook', '--disable', '--no-secret']);
    const after = await cli.json<Webhook>(['webhook', 'show', 'alpha', 'cli-hook']);
    assert.equal(after.enabled, false);
    assert.equal(after.hasSecret, false);
    const refused = await cli(['webhook', 'create', 'alpha', 'x', '--url', 'ftp://nowhere', '--event', 'artifact.pushed'], { fails: true });
    assert.match(refused.stderr, /url/);
    await cli(['webhook', 'create', 'alpha', 'y', '--url', receiver.url(), '--event', 'bogus'], { fails: true });
    await cli(['webhook', 'delete', 'alpha', 'cli-hook']);
    await cli(['webhook', 'show', 'alpha', 'cli-hook'], { fails: true });
  });
});
