// The change feed (src/metadata/changes.ts) on a real PostgreSQL: what one replica publishes every
// other hears; a replica whose listening connection is cut stops trusting its caches until it has
// listened again, and is told that anything may have changed meanwhile; the in-process feed of the
// embedded database delivers at once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CHANGES_CHANNEL, listenForChanges, localChanges, type ChangeFeed } from '../../src/metadata/changes.ts';
import { configSchema } from '../../src/config/schema.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import { sharedPostgres, type PostgresServer } from '../support/postgres.ts';

let postgres: PostgresServer;
let database: string;
let dir: string;
let meta: Metadata;
const feeds: ChangeFeed[] = [];

before(async () => {
  postgres = await sharedPostgres();
  database = `change_feed_${randomBytes(4).toString('hex')}`;
  await postgres.createDatabase(database);
  dir = mkdtempSync(join(tmpdir(), 'berth-feed-'));
  meta = await openMetadataFor(configSchema.parse({ dataDir: dir, database: { url: postgres.url(database), poolSize: 2 } }));
});

after(async () => {
  for (const feed of feeds) await feed.close();
  await meta?.close();
  await postgres?.dropDatabase(database).catch(() => undefined);
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function feed(): Promise<ChangeFeed> {
  const opened = await listenForChanges(meta.db, meta.postgres!, { minRetryMs: 20, maxRetryMs: 100, pingMs: 200, pingTimeoutMs: 200 });
  feeds.push(opened);
  return opened;
}

/** Waits (bounded, 5 s) until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await sleep(10);
  assert.ok(done(), 'not within 5 s');
}

/** Runs SQL on a connection of its own (as an administrator or another client would). */
async function outside(text: string, values: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: postgres.url(database) });
  await client.connect();
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

test('what one replica publishes, every other hears; its own listeners hear it before publish returns', async () => {
  const [a, b] = [await feed(), await feed()];
  assert.ok(a.live && b.live && a.shared && b.shared);
  const heardA: (string | undefined)[] = [];
  const heardB: (string | undefined)[] = [];
  a.subscribe('principal', (key) => heardA.push(key));
  b.subscribe('principal', (key) => heardB.push(key));
  const before = b.version('principal');
  const published = a.publish('principal', 'alice');
  assert.deepEqual(heardA, ['alice'], 'delivered here synchronously');
  await published;
  await until(() => heardB.length > 0);
  assert.deepEqual(heardB, ['alice']);
  assert.deepEqual(heardA, ['alice'], 'not a second time from its own notification');
  assert.equal(b.unchangedSince('principal', before), false, 'a change heard moves the version');
  assert.equal(b.unchangedSince('project', b.version('project')), true);
});

test('malformed and foreign notifications are ignored', async () => {
  const b = await feed();
  const heard: (string | undefined)[] = [];
  b.subscribe('project', (key) => heard.push(key));
  await outside(`select pg_notify($1, $2)`, [CHANGES_CHANNEL, 'not json']);
  await outside(`select pg_notify($1, $2)`, [CHANGES_CHANNEL, JSON.stringify({ s: 'x', t: 'unknown-topic', k: 'k' })]);
  await outside(`select pg_notify($1, $2)`, [CHANGES_CHANNEL, JSON.stringify({ s: 'x', t: 'project', k: 42 })]);
  await outside(`select pg_notify($1, $2)`, [CHANGES_CHANNEL, JSON.stringify({ s: 'x', t: 'project', k: 'fine' })]);
  await until(() => heard.length > 0);
  assert.deepEqual(heard, ['fine']);
  assert.ok(b.live);
});

test('a cut listening connection: not live (caches bypass), everything dropped, then listening again and told again', async () => {
  const a = await feed();
  const b = await feed();
  const heard: (string | undefined)[] = [];
  b.subscribe('repository', (key) => heard.push(key));
  const errors: string[] = [];
  b.onError = (_err, context) => errors.push(context);
  const version = b.version('repository');
  // Every listening connection of this database is cut, as a failover or a network cut would.
  await outside(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query ilike 'listen%'`, [database]);
  await until(() => !b.live);
  assert.equal(heard[0], undefined, 'told that anything may have changed');
  assert.equal(b.unchangedSince('repository', version), false);
  await until(() => b.live && a.live);
  assert.ok(heard.length >= 2, 'told again once listening: notifications sent meanwhile are lost');
  assert.ok(errors.includes('listen'));
  heard.length = 0;
  await a.publish('repository', 'team/app');
  await until(() => heard.length > 0);
  assert.deepEqual(heard, ['team/app']);
});

test('the in-process feed of the embedded database: always live, delivered at once, versions move', async () => {
  const feed = localChanges();
  assert.ok(feed.live && !feed.shared);
  const heard: (string | undefined)[] = [];
  feed.subscribe('project', (key) => heard.push(key));
  const version = feed.version('project');
  assert.ok(feed.unchangedSince('project', version));
  await feed.publish('project', 'library');
  assert.deepEqual(heard, ['library']);
  assert.equal(feed.unchangedSince('project', version), false);
  await feed.close();
});
