// The webhook store on SQLite and PostgreSQL: policy names unique per project, a delivery queued
// once per (webhook, event) however often the event is read, claims that hand a delivery to one
// claimer until it is settled or the claim lapses, stale settles ignored after a redelivery, the
// sweep's list of due webhooks (not the disabled ones), and pruning of settled rows only.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, metadataPlace } from '../support/metadata.ts';

for (const dialect of DIALECTS) {
  describe(`webhook store on ${dialect}`, { timeout: 60_000 }, () => {
    test('policies, queue, claim, settle, redeliver, due, prune', async () => {
      const place = await metadataPlace(dialect);
      const meta = await place.open();
      try {
        await meta.projects.create('alpha', { public: false });
        await meta.projects.create('beta', { public: false });
        const alpha = (await meta.projects.find('alpha'))!;
        const beta = (await meta.projects.find('beta'))!;
        const base = { description: null, url: 'http://127.0.0.1:9/x', events: ['artifact.pushed'], format: 'harbor', authHeader: null, secret: null, caFile: null, insecure: false, enabled: true, createdBy: 'admin' };
        const hook = (await meta.webhooks.create({ ...base, projectId: alpha.id, name: 'ci' }))!;
        assert.equal(await meta.webhooks.create({ ...base, projectId: alpha.id, name: 'ci' }), undefined, 'the name is taken in alpha');
        const other = (await meta.webhooks.create({ ...base, projectId: beta.id, name: 'ci' }))!;
        assert.notEqual(other.id, hook.id);
        assert.deepEqual((await meta.webhooks.enabledFor('alpha')).map((w) => w.id), [hook.id]);

        // Queued once per event, however often the event comes.
        const d = (event: number) => ({ webhookId: hook.id, eventId: event, eventType: 'artifact.pushed', messageId: `msg_${event}_${hook.id}`, payload: '{}' });
        const now = 1_000_000;
        assert.equal((await meta.webhooks.queue([d(1), d(2)], now)).length, 2);
        assert.equal((await meta.webhooks.queue([d(1), d(2), d(3)], now)).length, 1);
        assert.equal((await meta.webhooks.deliveries(hook.id, { offset: 0, limit: 10 })).total, 3);

        // A claim hands each due delivery to one claimer until it lapses.
        const claimed = await meta.webhooks.claim(hook.id, 2, 60_000, now);
        assert.deepEqual(claimed.map((c) => [c.event_id, c.attempts]), [[1, 1], [2, 1]]);
        assert.deepEqual((await meta.webhooks.claim(hook.id, 10, 60_000, now)).map((c) => c.event_id), [3]);
        assert.equal((await meta.webhooks.claim(hook.id, 10, 60_000, now + 1000)).length, 0);
        assert.deepEqual(await meta.webhooks.due(now + 1000), []);
        assert.deepEqual(await meta.webhooks.due(now + 61_000), [hook.id], 'a lapsed claim is due again');

        await meta.webhooks.settle(claimed[0]!.id, 1, { outcome: 'delivered', statusCode: 204, response: '', error: null, durationMs: 5 }, now + 10);
        await meta.webhooks.settle(claimed[1]!.id, 1, { outcome: 'retry', nextAt: now + 5000, statusCode: 503, response: 'busy', error: 'the receiver answered 503', durationMs: 7 }, now + 10);
        const retried = (await meta.webhooks.delivery(hook.id, claimed[1]!.id))!;
        assert.deepEqual([retried.state, retried.next_at, retried.status_code, retried.response], ['pending', now + 5000, 503, 'busy']);
        assert.equal(await meta.webhooks.delivery(other.id, claimed[1]!.id), undefined, 'not through another webhook');

        // A redelivery resets the attempts: a late settle of the old attempt changes nothing.
        const again = (await meta.webhooks.redeliver(hook.id, claimed[0]!.id, now + 20))!;
        assert.deepEqual([again.state, again.attempts, again.message_id], ['pending', 0, `msg_1_${hook.id}`]);
        await meta.webhooks.settle(claimed[0]!.id, 1, { outcome: 'failed', statusCode: 500, response: null, error: 'late', durationMs: 1 }, now + 30);
        assert.equal((await meta.webhooks.delivery(hook.id, claimed[0]!.id))!.state, 'pending');
        assert.equal(await meta.webhooks.redeliver(other.id, claimed[0]!.id), undefined);

        const pending = await meta.webhooks.deliveries(hook.id, { offset: 0, limit: 10, state: 'pending' });
        assert.deepEqual(pending.items.map((i) => i.event_id), [3, 2, 1], 'newest first');

        // Disabled webhooks are not swept.
        await meta.webhooks.update(alpha.id, 'ci', { enabled: false });
        assert.deepEqual(await meta.webhooks.due(now + 100_000), []);
        assert.deepEqual(await meta.webhooks.enabledFor('alpha'), []);

        // Prune: only settled rows past the cut.
        await meta.webhooks.update(alpha.id, 'ci', { enabled: true });
        const last = (await meta.webhooks.claim(hook.id, 10, 1000, now + 100_000)).map((c) => c);
        for (const c of last) await meta.webhooks.settle(c.id, c.attempts, { outcome: c.event_id === 3 ? 'failed' : 'delivered', statusCode: 200, response: null, error: null, durationMs: 1 }, now + 100_000);
        assert.equal(await meta.webhooks.prune(now + 50_000), 0);
        assert.equal(await meta.webhooks.prune(now + 200_000), last.length);
        assert.equal(await meta.webhooks.delete(alpha.id, 'ci'), true);
        assert.equal(await meta.webhooks.findById(hook.id), undefined);
      } finally {
        await meta.close();
        await place.remove();
      }
    });
  });
}
