// Rendering and signing without a server: Harbor's fields and CloudEvents' required attributes for
// each event type, the tag.deleted mapping, and signatures checked by the independent Standard
// Webhooks implementation of the test (receiver.ts) — including a known vector, so both sides
// cannot agree on a wrong scheme.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { OutboxEvent } from '../../src/metadata/events.ts';
import { HARBOR_TYPES, renderPayload, webhookEventOf, WEBHOOK_EVENTS } from '../../src/webhooks/payload.ts';
import { generateSecret, secretProblem, signatureHeaders } from '../../src/webhooks/sign.ts';
import { webhookURLProblem } from '../../src/webhooks/deliver.ts';
import { deliveryBackoff } from '../../src/jobs/kinds/webhook.ts';
import { verifyStandardWebhook } from './receiver.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const pushed: OutboxEvent = { id: 42, time: 1_700_000_000_123, type: 'artifact.pushed', repository: 'team/tools/app', project: 'team', digest: DIGEST, tag: 'v1', actor: 'alice', detail: { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500 } };

describe('webhook payloads', () => {
  test('Harbor: type, occur_at in seconds, operator, resources and repository', () => {
    const body = JSON.parse(renderPayload(pushed, { format: 'harbor', messageId: 'msg_42_1', externalURL: 'https://registry.example.com:8443', projectPublic: true })!) as Record<string, any>;
    assert.equal(body.type, 'PUSH_ARTIFACT');
    assert.equal(body.occur_at, 1_700_000_000);
    assert.equal(body.operator, 'alice');
    assert.deepEqual(body.event_data.resources, [{ digest: DIGEST, tag: 'v1', resource_url: 'registry.example.com:8443/team/tools/app:v1' }]);
    assert.deepEqual(body.event_data.repository, { name: 'tools/app', namespace: 'team', repo_full_name: 'team/tools/app', repo_type: 'public' });
    const untagged = JSON.parse(renderPayload({ ...pushed, tag: null }, { format: 'harbor', messageId: 'm', projectPublic: false })!) as Record<string, any>;
    assert.equal(untagged.event_data.resources[0].resource_url, `localhost/team/tools/app@${DIGEST}`);
    assert.equal(untagged.event_data.repository.repo_type, 'private');
  });

  test('every webhook event type renders in both formats; tag.deleted is delivered as artifact.deleted', () => {
    const outbox: OutboxEvent['type'][] = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'tag.deleted', 'retention.finished', 'replication.finished', 'quota.warning', 'quota.exceeded'];
    const seen = new Set<string>();
    for (const type of outbox) {
      const event: OutboxEvent = { ...pushed, type, detail: type.startsWith('quota') ? { quotaBytes: 1000, usageBytes: 900 } : { job: 7 } };
      const as = webhookEventOf(type)!;
      seen.add(as);
      const harbor = JSON.parse(renderPayload(event, { format: 'harbor', messageId: 'm1', projectPublic: false })!) as Record<string, any>;
      assert.equal(harbor.type, HARBOR_TYPES[as]);
      const ce = JSON.parse(renderPayload(event, { format: 'cloudevents', messageId: 'm1', externalURL: 'https://r.example', projectPublic: false })!) as Record<string, any>;
      assert.equal(ce.specversion, '1.0');
      assert.equal(ce.type, `io.berth.${as}`);
      assert.equal(ce.id, 'm1');
      assert.equal(ce.time, '2023-11-14T22:13:20.123Z');
      assert.equal(ce.datacontenttype, 'application/json');
      assert.equal(ce.source, 'https://r.example/api/v1/projects/team');
      assert.equal(ce.data.repository, 'team/tools/app');
    }
    assert.equal(webhookEventOf('tag.deleted'), 'artifact.deleted');
    assert.deepEqual([...seen].sort(), [...WEBHOOK_EVENTS].sort());
    const quota = JSON.parse(renderPayload({ ...pushed, type: 'quota.warning', detail: { quotaBytes: 1000, usageBytes: 900 } }, { format: 'harbor', messageId: 'm', projectPublic: false })!) as Record<string, any>;
    assert.equal(quota.type, 'QUOTA_WARNING');
    assert.equal(quota.event_data.custom_attributes.quotaBytes, '1000');
    assert.match(quota.event_data.custom_attributes.Details, /900 of its 1000 bytes/);
  });

  test('the same inputs render the same bytes (retries send what was queued)', () => {
    const ctx = { format: 'cloudevents' as const, messageId: 'msg_1_2', projectPublic: false };
    assert.equal(renderPayload(pushed, ctx), renderPayload(pushed, ctx));
  });
});

describe('Standard Webhooks signatures', () => {
  test('a generated secret signs what the independent check verifies; changed bodies, ids and old timestamps fail', () => {
    const secret = generateSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal(Buffer.from(secret.slice(6), 'base64').length, 24);
    assert.equal(secretProblem(secret), undefined);
    const body = renderPayload(pushed, { format: 'harbor', messageId: 'msg_42_1', projectPublic: false })!;
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders(secret, 'msg_42_1', now, body);
    verifyStandardWebhook(secret, headers, body);
    assert.throws(() => verifyStandardWebhook(secret, headers, body + ' '), /no signature matches/);
    assert.throws(() => verifyStandardWebhook(secret, { ...headers, 'webhook-id': 'msg_other' }, body), /no signature matches/);
    assert.throws(() => verifyStandardWebhook(generateSecret(), headers, body), /no signature matches/);
    assert.throws(() => verifyStandardWebhook(secret, signatureHeaders(secret, 'msg_42_1', now - 3600, body), body), /tolerance/);
  });

  test('a known vector: HMAC-SHA256 keyed with the decoded secret over "id.timestamp.body"', () => {
    const key = Buffer.alloc(24, 7);
    const secret = `whsec_${key.toString('base64')}`;
    const headers = signatureHeaders(secret, 'msg_1', 1_700_000_000, '{"a":1}');
    const expected = createHmac('sha256', key).update('msg_1.1700000000.{"a":1}').digest('base64');
    assert.deepEqual(headers, { 'webhook-id': 'msg_1', 'webhook-timestamp': '1700000000', 'webhook-signature': `v1,${expected}` });
    assert.equal(signatureHeaders(undefined, 'msg_1', 1, 'x')['webhook-signature'], undefined);
  });

  test('secrets of the wrong shape are refused without being repeated', () => {
    for (const bad of ['hunter2-plain-secret', 'whsec_short', `whsec_${'A'.repeat(200)}`, 'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!']) {
      const problem = secretProblem(bad);
      assert.ok(problem, bad);
      assert.ok(!problem.includes(bad));
    }
  });
});

describe('webhook URLs and backoff', () => {
  test('only http(s) URLs without credentials, fragments or control characters', () => {
    assert.equal(webhookURLProblem('https://hooks.example.com/berth?team=1'), undefined);
    assert.equal(webhookURLProblem('http://127.0.0.1:9000/x'), undefined);
    for (const [bad, why] of [
      ['ftp://example.com/', /http/],
      ['file:///etc/passwd', /http/],
      ['javascript:alert(1)', /http/],
      ['https://user:pw@example.com/', /credentials/],
      ['https://example.com/#x', /fragment/],
      ['not a url', /not a URL/],
      [`https://example.com/${'a'.repeat(2100)}`, /2048/],
    ] as const) {
      const problem = webhookURLProblem(bad);
      assert.match(problem ?? '', why, bad);
      assert.ok(!problem!.includes(bad));
    }
  });

  test('backoff doubles from the configured delay and stops at an hour', () => {
    assert.deepEqual([1, 2, 3, 4].map((a) => deliveryBackoff(a, 10_000)), [10_000, 20_000, 40_000, 80_000]);
    assert.equal(deliveryBackoff(30, 10_000), 3_600_000);
  });
});
