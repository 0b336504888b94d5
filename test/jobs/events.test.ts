// The event outbox on both databases: each change's event is written in the change's own
// transaction (a change that fails or rolls back leaves none); consumers read after their own
// cursor, at least once, in id order; on PostgreSQL a reader waits at a gap in the ids (a
// transaction still open) and passes it only after the grace period (a rollback).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { EventStore, type OutboxEvent } from '../../src/metadata/events.ts';
import type { ManifestRecord } from '../../src/metadata/manifests.ts';
import { putManifest } from '../support/metadata.ts';
import { DIALECTS, openTestMetadata, type TestMetadata } from './stores.ts';

const hex = (n: number) => randomBytes(n).toString('hex');
const digest = () => `sha256:${hex(32)}`;
const MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';

for (const dialect of DIALECTS) {
  describe(`event outbox on ${dialect}`, { timeout: 60_000 }, () => {
    let db: TestMetadata;
    /**
     * Events after every one seen so far (a consumer of the test's own). Its reader passes gaps in
     * the ids at once (no grace): the rollbacks here are deliberate; the gap rule is tested below.
     */
    let consumer = '';
    let reader: EventStore;
    const newEvents = async (): Promise<OutboxEvent[]> => {
      await reader.read(consumer, 1000); // notes the gaps, which the second read then passes
      const events = await reader.read(consumer, 1000);
      if (events.length > 0) await reader.ack(consumer, events.at(-1)!.id);
      return events;
    };

    before(async () => {
      db = await openTestMetadata(dialect);
      consumer = `test-${hex(4)}`;
      reader = new EventStore(db.meta.db, { dialect, gapGraceMs: 0 });
    });
    after(async () => {
      await db?.close();
    });

    test('a change that commits has its event; one that rolls back or is refused has none', async () => {
      const { meta } = db;
      await assert.rejects(
        meta.db.transaction().execute(async (tx) => {
          await meta.events.append(tx, { type: 'tag.deleted', repository: 'team/rolled-back', tag: 'v1' });
          throw new Error('the change fails after its event was appended');
        }),
        /the change fails/,
      );
      assert.deepEqual(await newEvents(), [], 'the rolled-back event is not there');

      const repositoryId = await meta.repositories.ensure('team/app');
      const manifest: ManifestRecord = { repositoryId, digest: digest(), mediaType: MEDIA_TYPE, size: 321, references: [], tag: 'v1', pushedBy: 'alice' };
      await putManifest(meta, manifest);
      const [pushed, ...more] = await newEvents();
      assert.deepEqual(more, []);
      assert.equal(pushed?.type, 'artifact.pushed');
      assert.deepEqual(
        { repository: pushed.repository, project: pushed.project, digest: pushed.digest, tag: pushed.tag, actor: pushed.actor, detail: pushed.detail },
        { repository: 'team/app', project: 'team', digest: manifest.digest, tag: 'v1', actor: 'alice', detail: { mediaType: MEDIA_TYPE, size: 321 } },
      );

      // Refused inside the transaction: a referenced blob is not in the repository.
      await assert.rejects(putManifest(meta, { ...manifest, digest: digest(), references: [{ digest: digest(), kind: 'blob' }] }), /MANIFEST_BLOB_UNKNOWN|removed from the repository/);
      // Refused inside the transaction: the project's quota.
      await meta.projects.update('team', { quotaBytes: 400 });
      await assert.rejects(putManifest(meta, { ...manifest, digest: digest(), size: 200, tag: 'v2' }), /quota exceeded/);
      await meta.projects.update('team', { quotaBytes: null });
      assert.deepEqual(await newEvents(), [], 'refused pushes wrote no event');

      // The same tag moved to another manifest: the event says where it points now.
      const moved = { ...manifest, digest: digest(), pushedBy: 'robot$team+ci' };
      await putManifest(meta, moved);
      const [retagged] = await newEvents();
      assert.equal(retagged?.type, 'artifact.pushed');
      assert.equal(retagged.digest, moved.digest);
      assert.equal(retagged.tag, 'v1');
      assert.equal(retagged.actor, 'robot$team+ci');

      assert.equal(await meta.manifests.deleteTag(repositoryId, 'v1', 'bob'), true);
      assert.equal(await meta.manifests.deleteTag(repositoryId, 'v1', 'bob'), false, 'no such tag any more');
      const tagEvents = await newEvents();
      assert.deepEqual(
        tagEvents.map((e) => [e.type, e.repository, e.tag, e.digest, e.actor]),
        [['tag.deleted', 'team/app', 'v1', moved.digest, 'bob']],
        'one event, for the deletion that happened',
      );

      await putManifest(meta, { ...manifest, tag: 'stable' });
      await newEvents();
      assert.equal(await meta.manifests.delete(repositoryId, manifest.digest, 'carol'), true);
      const deleted = await newEvents();
      assert.deepEqual(
        deleted.map((e) => [e.type, e.repository, e.project, e.digest, e.actor, e.detail]),
        [['artifact.deleted', 'team/app', 'team', manifest.digest, 'carol', { tags: ['stable'] }]],
      );
    });

    test('consumers read after their own cursor, at least once, in id order; the cursor never moves back', async () => {
      const { meta } = db;
      const a = `a-${hex(4)}`;
      const b = `b-${hex(4)}`;
      await meta.events.ack(a, await latestId(meta));
      await meta.events.ack(b, await latestId(meta));
      for (let i = 0; i < 5; i++) await meta.events.record({ type: 'quota.exceeded', repository: 'team/app', digest: digest(), detail: { i } });
      const first = await meta.events.read(a, 3);
      assert.deepEqual(first.map((e) => e.detail?.i), [0, 1, 2]);
      assert.deepEqual((await meta.events.read(a, 3)).map((e) => e.id), first.map((e) => e.id), 'not acknowledged: handed out again');
      await meta.events.ack(a, first.at(-1)!.id);
      assert.deepEqual((await meta.events.read(a, 10)).map((e) => e.detail?.i), [3, 4]);
      await meta.events.ack(a, first[0]!.id);
      assert.deepEqual((await meta.events.read(a, 10)).map((e) => e.detail?.i), [3, 4], 'an older ack does not move the cursor back');
      assert.deepEqual((await meta.events.read(b, 10)).map((e) => e.detail?.i), [0, 1, 2, 3, 4], 'another consumer has its own cursor');
    });

    test('pruning removes old events but never the newest, so ids never start over', async () => {
      const { meta } = db;
      const newest = await latestId(meta);
      assert.ok((await meta.events.prune(Date.now() + 60_000)) > 0);
      const left = await meta.db.selectFrom('events').select('id').execute();
      assert.deepEqual(left.map((r) => Number(r.id)), [newest], 'only the newest is kept');
      await meta.events.record({ type: 'quota.exceeded', repository: 'team/app' });
      assert.equal(await latestId(meta), newest + 1, 'the next id follows the pruned ones');
    });

    if (dialect === 'postgres') {
      test('a reader stops before a transaction still open, and passes a rolled-back gap only after the grace period', async () => {
        const { meta } = db;
        const reader = new EventStore(meta.db, { dialect: 'postgres', gapGraceMs: 400 });
        const name = `gap-${hex(4)}`;
        await reader.ack(name, await latestId(meta));
        const read = async () => (await reader.read(name, 100)).map((e) => e.detail?.step);

        // A commits after B although A drew the lower id.
        const held = holdOpen(meta.db, (tx) => meta.events.append(tx, { type: 'quota.exceeded', detail: { step: 'A' } }));
        await held.appended;
        await meta.events.record({ type: 'quota.exceeded', detail: { step: 'B' } });
        assert.deepEqual(await read(), [], 'B is held back while A may still commit');
        held.finish(true);
        await held.done;
        assert.deepEqual(await read(), ['A', 'B'], 'both, in id order, once A committed');
        await reader.ack(name, await latestId(meta));

        // C rolls back: its id stays a gap for good.
        const rolledBack = holdOpen(meta.db, (tx) => meta.events.append(tx, { type: 'quota.exceeded', detail: { step: 'C' } }));
        await rolledBack.appended;
        await meta.events.record({ type: 'quota.exceeded', detail: { step: 'D' } });
        rolledBack.finish(false);
        await rolledBack.done.catch(() => undefined);
        assert.deepEqual(await read(), [], 'the gap is waited for');
        await new Promise((resolve) => setTimeout(resolve, 450));
        assert.deepEqual(await read(), ['D'], 'passed after the grace period');
        assert.deepEqual(await meta.events.read(name, 100), [], 'another reader, seeing the gap for the first time, waits for it too');
      });
    }
  });
}

/** The highest event id committed so far (0 when none). */
async function latestId(meta: TestMetadata['meta']): Promise<number> {
  const row = await meta.db.selectFrom('events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
  return Number(row?.id ?? 0);
}

/** Runs `work` in a transaction that stays open until `finish(commit)`. */
function holdOpen(db: TestMetadata['meta']['db'], work: (tx: TestMetadata['meta']['db']) => Promise<void>) {
  let appended!: () => void;
  let finish!: (commit: boolean) => void;
  const appendedPromise = new Promise<void>((resolve) => (appended = resolve));
  const decided = new Promise<boolean>((resolve) => (finish = resolve));
  const done = db.transaction().execute(async (tx) => {
    await work(tx);
    appended();
    if (!(await decided)) throw new Error('rolled back on purpose');
  });
  return { appended: appendedPromise, finish, done };
}
