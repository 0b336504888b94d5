// The outbox consumer on both databases: one replica at a time reads (the lease), a batch is
// acknowledged only once handled (a failure re-reads it), and a consumer whose replica stopped
// renewing is taken over by another one, which goes on from the acknowledged cursor.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { DIALECTS, withMetadataOn } from '../support/metadata.ts';
import { startConsumer, type RunningConsumer } from '../../src/events/consumer.ts';
import type { OutboxEvent } from '../../src/metadata/events.ts';
import type { Metadata } from '../../src/metadata/index.ts';

const log = pino({ level: 'silent' });

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function push(meta: Metadata, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await meta.events.record({ type: 'artifact.pushed', repository: 'team/app', tag: `t${i}` });
}

describe('outbox consumer', () => {
  for (const dialect of DIALECTS) {
    test(`${dialect}: handled once in order, a failed batch read again, one reader at a time, taken over when its replica stops`, async () => {
      await withMetadataOn(dialect, async (meta) => {
        const seen: { owner: string; tag: string | null; id: number }[] = [];
        let failOnce = true;
        const consumers: RunningConsumer[] = [];
        const start = (owner: string) => {
          const consumer = startConsumer({
            name: 'test',
            events: meta.events,
            leases: meta.leases,
            owner,
            log,
            pollMs: 20,
            leaseMs: 600,
            retryMs: 50,
            handler: {
              async handle(events: readonly OutboxEvent[]) {
                if (owner === 'a' && failOnce && events.some((e) => e.tag === 't3')) {
                  failOnce = false;
                  throw new Error('receiver down');
                }
                for (const e of events) seen.push({ owner, tag: e.tag, id: e.id });
              },
            },
          });
          consumers.push(consumer);
          return consumer;
        };
        try {
          const a = start('a');
          await new Promise((r) => setTimeout(r, 100));
          start('b');
          await push(meta, 5);
          await until('five events', () => new Set(seen.map((s) => s.tag)).size === 5);
          // The failed batch came again; only `a` holds the lease, so `b` read nothing.
          assert.ok(seen.every((s) => s.owner === 'a'), 'one reader at a time');
          const ids = seen.map((s) => s.id);
          assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'in id order');
          assert.equal(await meta.events.cursor('test'), Math.max(...ids), 'acknowledged up to the last handled event');

          // `a` stops (its lease is released): `b` takes over from the cursor, nothing read twice.
          await a.stop();
          const before = seen.length;
          await push(meta, 3, 5);
          await until('events after the takeover', () => seen.length >= before + 3);
          assert.deepEqual(
            seen.slice(before).map((s) => `${s.owner}:${s.tag}`),
            ['b:t5', 'b:t6', 'b:t7'],
          );
        } finally {
          for (const c of consumers) await c.stop();
        }
      });
    });

    test(`${dialect}: a replica that dies without releasing its lease is replaced once the lease lapses`, async () => {
      await withMetadataOn(dialect, async (meta) => {
        // A dead replica's lease: held by "ghost" for 800 ms more, never renewed.
        assert.equal(await meta.leases.acquire('events:test', 'ghost', 800), true);
        const seen: string[] = [];
        const started = Date.now();
        let firstAt = 0;
        const consumer = startConsumer({
          name: 'test',
          events: meta.events,
          leases: meta.leases,
          owner: 'b',
          log,
          pollMs: 20,
          leaseMs: 300,
          handler: {
            async handle(events) {
              firstAt ||= Date.now();
              for (const e of events) seen.push(e.tag!);
            },
          },
        });
        try {
          await push(meta, 2);
          await until('delivery after the lapse', () => seen.length === 2);
          assert.ok(firstAt - started >= 700, `read only after the dead replica's lease lapsed (${firstAt - started} ms)`);
        } finally {
          await consumer.stop();
        }
      });
    });
  }
});
