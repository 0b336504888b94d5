// Group commit and relaxed commits of the metadata database: what is acknowledged is on disk first.
// (SQLite's own machinery, except the audit rows at close, checked on PostgreSQL too.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { digestOf } from '../../src/domain/digest.ts';
import { GroupCommit } from '../../src/metadata/group-commit.ts';
import { openMetadata } from '../../src/metadata/index.ts';
import { createRegistry } from '../../src/registry/index.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { startBerth } from '../support/berth.ts';
import { DIALECTS, metadataPlace } from '../support/metadata.ts';

/** What a power cut right after a flush would leave: the database and its log as they were when the flush began. */
interface Snapshot {
  db: Buffer;
  wal: Buffer;
  /** The flush completed (only then could anything rely on it). */
  done: boolean;
}

/** Index of the last snapshot whose flush has completed, or -1. */
function lastCompleted(snapshots: readonly Snapshot[]): number {
  for (let i = snapshots.length - 1; i >= 0; i--) if (snapshots[i]!.done) return i;
  return -1;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'berth-durability-'));
}

/** Opens a snapshot as SQLite would after the power came back (its own copy, recovered from the log). */
function restore(snapshot: Snapshot): Database.Database {
  const dir = tempDir();
  writeFileSync(join(dir, 'berth.db'), snapshot.db);
  writeFileSync(join(dir, 'berth.db-wal'), snapshot.wal);
  const db = new Database(join(dir, 'berth.db'));
  db.pragma('journal_mode = WAL');
  return Object.assign(db, { dir });
}

test('commits arriving while a flush runs share the next one: 24 commits, exactly 2 flushes', async () => {
  let release!: () => void;
  const held: Promise<void>[] = [];
  let calls = 0;
  const group = new GroupCommit(async () => {
    calls++;
    // Each flush waits until the test lets it finish: the disk is as slow as the test says.
    await new Promise<void>((resolve) => (release = resolve));
  });
  held.push(group.durableThrough(group.committed()));
  assert.equal(calls, 1, 'the first commit starts a flush');
  // 23 more commits reach the log while that flush is in flight; none may settle for it.
  for (let i = 0; i < 23; i++) held.push(group.durableThrough(group.committed()));
  assert.equal(calls, 1, 'they wait for the flush in flight instead of starting their own');
  let settled = 0;
  for (const wait of held) void wait.then(() => settled++);
  release();
  await held[0];
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, 1, 'the first flush covers only the commit made before it began');
  assert.equal(calls, 2, 'one flush for all 23 others');
  release();
  await Promise.all(held);
  assert.equal(group.flushes, 2);
  assert.ok(group.isDurable(24));
});

test('an upload is on disk — as a power cut would leave it — before it is reported complete', async () => {
  const dir = tempDir();
  const snapshots: Snapshot[] = [];
  const meta = await openMetadata(dir, {
    wrapLogSync: (sync) => async () => {
      // Everything SQLite wrote before the fsync starts is what the fsync makes durable.
      const snapshot: Snapshot = { db: readFileSync(join(dir, 'berth.db')), wal: readFileSync(join(dir, 'berth.db-wal')), done: false };
      snapshots.push(snapshot);
      await sleep(15); // a slow disk: commits arrive while this flush is in flight
      await sync();
      snapshot.done = true;
    },
  });
  const store = new FilesystemBlobStore(join(dir, 'storage'));
  await store.init();
  const registry = createRegistry(store, meta, randomBytes(32));
  const acknowledged: { digest: string; session: string; covered: number }[] = [];
  try {
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        await sleep((i * 7) % 40);
        const blob = randomBytes(2000 + i);
        const session = await registry.uploads.start('team/app', 'admin');
        const done = await registry.uploads.complete('team/app', session.id, digestOf(blob), Readable.from([blob]), {});
        // Here the server answers 201: the last completed flush must already hold the blob.
        acknowledged.push({ digest: done.digest, session: session.id, covered: lastCompleted(snapshots) });
      }),
    );
  } finally {
    await meta.close();
  }
  assert.equal(acknowledged.length, 24);
  const restored = new Map<number, Database.Database>();
  try {
    for (const ack of acknowledged) {
      assert.ok(ack.covered >= 0, 'a flush completed before the upload was acknowledged');
      let db = restored.get(ack.covered);
      if (!db) restored.set(ack.covered, (db = restore(snapshots[ack.covered]!)));
      const link = db.prepare('SELECT size FROM repository_blobs WHERE digest = ?').get(ack.digest);
      assert.ok(link, `blob ${ack.digest} acknowledged, but missing after a power cut at flush ${ack.covered}`);
      assert.ok(db.prepare('SELECT 1 FROM project_blobs WHERE digest = ?').get(ack.digest), 'the project was charged in the same commit');
      assert.equal(db.prepare('SELECT 1 FROM upload_sessions WHERE id = ?').get(ack.session), undefined, 'the session ended in the same commit');
    }
  } finally {
    for (const db of restored.values()) {
      db.close();
      rmSync((db as Database.Database & { dir: string }).dir, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reads wait for durable writes they could see; relaxed writes do not wait for the disk', async () => {
  const dir = tempDir();
  let blocked: { promise: Promise<void>; resolve: () => void } | undefined;
  let flushStarted = false;
  const meta = await openMetadata(dir, {
    wrapLogSync: (sync) => async () => {
      flushStarted = true;
      await blocked?.promise;
      await sync();
    },
  });
  try {
    let release = () => undefined as void;
    blocked = { promise: new Promise<void>((resolve) => (release = resolve)), resolve: () => release() };
    flushStarted = false;
    let written = false;
    const write = meta.users.create('alice', 'hash', false).then(() => (written = true));
    while (!flushStarted) await sleep(1);
    // The insert is committed (in the log, not yet on disk): a read must not show it yet.
    let read = false;
    const found = meta.users.find('alice').then((row) => ((read = true), row));
    // Session bookkeeping is relaxed: it completes while the disk is still busy.
    const relaxed = await Promise.race([meta.uploads.create('session-1', 'team/app', null, null).then(() => 'done'), sleep(2000).then(() => 'waited')]);
    assert.equal(relaxed, 'done', 'a relaxed commit does not wait for the flush');
    void meta.audit.record({ actor: 'alice', action: 'login', resourceType: 'user', resource: 'alice', success: true });
    const audit = await Promise.race([meta.audit.flush().then(() => 'done'), sleep(2000).then(() => 'waited')]);
    assert.equal(audit, 'done', 'nor does a transaction of relaxed writes (an audit batch)');
    await sleep(50);
    assert.equal(written, false, 'the durable write waits for its flush');
    assert.equal(read, false, 'a read that could see it waits too');
    blocked.resolve();
    await write;
    assert.equal((await found)?.username, 'alice');
    assert.ok(await meta.uploads.find('session-1'));
  } finally {
    blocked?.resolve();
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('once a flush fails, no write is acknowledged any more', async () => {
  const dir = tempDir();
  let fail = false;
  const meta = await openMetadata(dir, {
    wrapLogSync: (sync) => async () => {
      if (fail) throw new Error('EIO: simulated disk error');
      await sync();
    },
  });
  try {
    await meta.users.create('before', 'hash', false);
    fail = true;
    await assert.rejects(meta.users.create('bob', 'hash', false), /could not be flushed to disk.*EIO/);
    fail = false;
    await assert.rejects(meta.users.create('carol', 'hash', false), /could not be flushed to disk/, 'a later fsync may lie: the failure sticks');
  } finally {
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const dialect of DIALECTS) {
  test(`${dialect}: queued audit rows are written when the metadata closes`, async () => {
    const place = await metadataPlace(dialect);
    try {
      const meta = await place.open();
      for (let i = 0; i < 3; i++) await meta.audit.record({ actor: 'alice', action: 'login', resourceType: 'user', resource: 'alice', client: '127.0.0.1', success: true, detail: { n: i } });
      await meta.close();
      const rows = await place.query<{ detail: string }>("SELECT detail FROM audit_log WHERE action = 'login' ORDER BY id");
      assert.deepEqual(rows.map((r) => JSON.parse(r.detail) as unknown), [{ n: 0 }, { n: 1 }, { n: 2 }]);
    } finally {
      await place.remove();
    }
  });
}

test('a real Berth: blobs and a tag acknowledged before a SIGKILL are there after the restart; a graceful stop keeps audit rows and the whole access log', async () => {
  const server = await startBerth();
  const auth = { Authorization: `Basic ${Buffer.from(`admin:${server.adminPassword}`).toString('base64')}` };
  try {
    const repo = `${server.url}/v2/team/killed`;
    const blobs = Array.from({ length: 16 }, (_, i) => randomBytes(4096 + i));
    await Promise.all(
      blobs.map(async (blob) => {
        const post = await fetch(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
        assert.equal(post.status, 202);
        const put = await fetch(`${server.url}${post.headers.get('location')}?digest=${digestOf(blob)}`, { method: 'PUT', headers: auth, body: blob });
        assert.equal(put.status, 201, await put.text());
      }),
    );
    const config = Buffer.from('{}');
    const configPost = await fetch(`${repo}/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', headers: auth, body: config });
    assert.equal(configPost.status, 201);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: blobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(b), size: b.length })),
    }));
    const put = await fetch(`${repo}/manifests/v1`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
    assert.equal(put.status, 201);

    const killed = server.process!;
    process.kill(killed.pid, 'SIGKILL');
    assert.equal((await killed.exited).signal, 'SIGKILL');
    await server.start();
    for (const blob of blobs) assert.equal((await fetch(`${repo}/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: auth })).status, 200);
    const got = await fetch(`${repo}/manifests/v1`, { headers: { ...auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('docker-content-digest'), digestOf(manifest));

    // Logins are audited in batches; a graceful stop writes the batch and the log's last lines.
    const token = await fetch(`${server.url}/service/token?service=berth&scope=repository:team/killed:pull`, { headers: auth });
    assert.equal(token.status, 200);
    await server.process!.stop();
    const log = readFileSync(server.logFile, 'utf8').trimEnd().split('\n');
    assert.match(log.at(-1)!, /"msg":"berth stopped"/, 'the last line made it out');
    assert.ok(log.some((line) => line.includes('/service/token')), 'the token request is in the access log');
    const copyDir = tempDir();
    copyFileSync(join(server.dataDir, 'berth.db'), join(copyDir, 'berth.db'));
    const db = new Database(join(copyDir, 'berth.db'), { readonly: true });
    try {
      const logins = db.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'login' AND actor = 'admin'").get() as { n: number };
      assert.equal(logins.n, 1, 'the login row was written before the database closed');
    } finally {
      db.close();
      rmSync(copyDir, { recursive: true, force: true });
    }
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});
