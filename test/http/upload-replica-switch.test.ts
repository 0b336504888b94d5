// An upload continues on any replica: two UploadServices ("replicas") over two connections to one
// PostgreSQL database and one blob store. The running SHA-256 travels in the session row (never
// rebuilt by reading the bytes back on a switch, unless the saved state does not fit them), and a
// session is written by one request at a time across replicas, with a lease that lapses when its
// holder dies. Then the same through HTTP: two servers on that database and one S3 bucket.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../../src/config/schema.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import { QuotaService } from '../../src/registry/quota.ts';
import { UploadIds } from '../../src/registry/upload-ids.ts';
import { UploadService, type UploadServiceOptions } from '../../src/registry/uploads.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { expectError, withDigest } from '../support/oci.ts';
import { sharedPostgres, type PostgresServer } from '../support/postgres.ts';
import { sharedS3, uniqueBucket } from '../support/s3.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';

const REPO = 'switch/app';
const KEY = randomBytes(32);

let postgres: PostgresServer;
let database: string;
let dir: string;
let store: FilesystemBlobStore;
let spy: SpiedStore;
let metaA: Metadata;
let metaB: Metadata;

/** The blob store as both replicas see it, counting the calls the test asserts on. */
interface SpiedStore {
  store: BlobStore;
  calls: { readUpload: number; appendUpload: number };
}

function spied(inner: BlobStore): SpiedStore {
  const calls = { readUpload: 0, appendUpload: 0 };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (prop === 'readUpload' || prop === 'appendUpload') calls[prop]++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}

before(async () => {
  postgres = await sharedPostgres();
  database = `upload_switch_${randomBytes(4).toString('hex')}`;
  await postgres.createDatabase(database);
  dir = mkdtempSync(join(tmpdir(), 'berth-switch-'));
  const config = configSchema.parse({ dataDir: dir, database: { url: postgres.url(database), poolSize: 4 } });
  metaA = await openMetadataFor(config);
  metaB = await openMetadataFor(config);
  store = new FilesystemBlobStore(join(dir, 'storage'));
  await store.init();
  spy = spied(store);
});

after(async () => {
  await metaA?.close();
  await metaB?.close();
  await store?.close();
  await postgres?.dropDatabase(database).catch(() => undefined);
  await postgres?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The two replicas, resumable hashes on (as main.ts configures them on PostgreSQL). */
function replicas(lease?: UploadServiceOptions['lease']): [UploadService, UploadService] {
  const options: UploadServiceOptions = { resumableHash: true, ...(lease ? { lease } : {}) };
  return [metaA, metaB].map((meta) => new UploadService(spy.store, meta, new UploadIds(KEY), new QuotaService(meta), options)) as [UploadService, UploadService];
}

const sha256 = (...parts: Buffer[]) => `sha256:${createHash('sha256').update(Buffer.concat(parts)).digest('hex')}`;

/** Appends `chunk` with the Content-Range a client would send. */
function patch(replica: UploadService, id: string, offset: number, chunk: Buffer) {
  return replica.append(REPO, id, Readable.from([chunk]), { contentRange: `${offset}-${offset + chunk.length - 1}`, contentLength: chunk.length });
}

async function savedOffset(id: string): Promise<number | null> {
  const row = await metaA.uploads.find(id);
  return row?.hash_offset ?? null;
}

test('PATCHes alternate between replicas and the PUT lands on the other: the hash travels with the session, no byte is read back', async () => {
  const [a, b] = replicas();
  // Sizes that leave partial SHA-256 blocks in the saved state.
  const chunks = [randomBytes(1000), randomBytes(70_001), randomBytes(63), randomBytes(2 * 1024 * 1024 + 5)];
  const session = await a.start(REPO, 'admin');
  const reads = spy.calls.readUpload;
  let offset = 0;
  for (const [i, chunk] of chunks.entries()) {
    const status = await patch(i % 2 === 0 ? a : b, session.id, offset, chunk);
    offset += chunk.length;
    assert.equal(status.size, offset);
    assert.equal(await savedOffset(session.id), offset, 'the state saved with the session covers every byte stored');
  }
  const digest = sha256(...chunks);
  const done = await b.complete(REPO, session.id, digest, undefined, {});
  assert.deepEqual(done, { digest, size: offset });
  assert.equal(spy.calls.readUpload, reads, 'no replica read the upload back');
  assert.equal(await store.stat(digest), offset);
  assert.equal(await metaA.uploads.find(session.id), undefined, 'the session ended');
});

test('a final chunk sent with the PUT to the other replica continues the saved hash', async () => {
  const [a, b] = replicas();
  const first = randomBytes(5000);
  const last = randomBytes(777);
  const session = await a.start(REPO, 'admin');
  const reads = spy.calls.readUpload;
  await patch(a, session.id, 0, first);
  const digest = sha256(first, last);
  assert.deepEqual(await b.complete(REPO, session.id, digest, Readable.from([last]), { contentRange: `5000-5776` }), { digest, size: 5777 });
  assert.equal(spy.calls.readUpload, reads);
});

test('a whole blob in one request (monolithic) is hashed and committed on a resumable replica', async () => {
  const [a] = replicas();
  const blob = randomBytes(40_000);
  assert.deepEqual(await a.monolithic(REPO, sha256(blob), Readable.from([blob]), 'admin', blob.length), { digest: sha256(blob), size: blob.length });
});

test('a saved state that does not fit the stored bytes is not used: the hash is rebuilt from them, the digest stays right', async (t) => {
  const [a, b] = replicas();

  await t.test('bytes stored after the state was saved (a replica died between the write and the row update)', async () => {
    const session = await a.start(REPO, 'admin');
    const one = randomBytes(3000);
    const two = randomBytes(4000);
    await patch(a, session.id, 0, one);
    // The second chunk reaches storage, but its replica dies before it saves the hash.
    await store.appendUpload(session.id, one.length, Readable.from([two]));
    assert.equal(await savedOffset(session.id), one.length);
    const reads = spy.calls.readUpload;
    const three = randomBytes(100);
    await patch(b, session.id, one.length + two.length, three);
    assert.equal(spy.calls.readUpload, reads + 1, 'rebuilt by reading the bytes once');
    const digest = sha256(one, two, three);
    assert.equal((await a.complete(REPO, session.id, digest, undefined, {})).digest, digest);
  });

  await t.test('a state that does not load', async () => {
    const session = await a.start(REPO, 'admin');
    const one = randomBytes(3000);
    await patch(a, session.id, 0, one);
    await metaA.db.updateTable('upload_sessions').set({ hash_state: Buffer.from('not a hash state').toString('base64') }).where('id', '=', session.id).execute();
    const reads = spy.calls.readUpload;
    const digest = sha256(one);
    assert.equal((await b.complete(REPO, session.id, digest, undefined, {})).digest, digest);
    assert.equal(spy.calls.readUpload, reads + 1);
  });

  await t.test('a state of another offset saved under the current one', async () => {
    const session = await a.start(REPO, 'admin');
    const one = randomBytes(3000);
    const two = randomBytes(1000);
    await patch(a, session.id, 0, one);
    const early = (await metaA.uploads.find(session.id))!.hash_state;
    await patch(b, session.id, one.length, two);
    await metaA.db.updateTable('upload_sessions').set({ hash_state: early }).where('id', '=', session.id).execute();
    const reads = spy.calls.readUpload;
    const digest = sha256(one, two);
    assert.equal((await a.complete(REPO, session.id, digest, undefined, {})).digest, digest);
    assert.equal(spy.calls.readUpload, reads + 1);
  });
});

test('concurrent PATCHes to one session on two replicas: one is written, the other refused cleanly, the bytes intact', async () => {
  const [a, b] = replicas({ waitMs: 300 });
  const session = await a.start(REPO, 'admin');
  const slow = new PassThrough();
  const first = randomBytes(64 * 1024);
  const second = randomBytes(32 * 1024);
  const appendsBefore = spy.calls.appendUpload;
  const writing = a.append(REPO, session.id, slow, {});
  slow.write(first);
  await sleep(50);
  // While A's chunk is still arriving, a PATCH on B waits briefly, then is refused: never interleaved.
  await assert.rejects(patch(b, session.id, 0, randomBytes(1024)), (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.code, 'BLOB_UPLOAD_INVALID');
    assert.match(err.message, /another request is writing this upload/);
    assert.equal((err.detail as { diagnosis?: string }).diagnosis, 'upload-session-busy');
    return true;
  });
  assert.equal(spy.calls.appendUpload, appendsBefore + 1, 'the refused request never reached storage');
  slow.end(second);
  assert.equal((await writing).size, first.length + second.length);
  // Released: B may go on now.
  const third = randomBytes(10);
  await patch(b, session.id, first.length + second.length, third);
  const digest = sha256(first, second, third);
  assert.equal((await a.complete(REPO, session.id, digest, undefined, {})).digest, digest);
});

test("a replica that dies holding a session lets go when its lease lapses; a live one's long chunk keeps it", async (t) => {
  const [a, b] = replicas({ ttlMs: 400, waitMs: 150 });

  await t.test('dead holder', async () => {
    const session = await a.start(REPO, 'admin');
    const now = Date.now();
    // What a replica killed mid-append leaves: a lease nobody renews.
    assert.ok(await metaA.uploads.acquire(session.id, REPO, { owner: 'killed-replica', until: now + 400 }, now));
    await assert.rejects(patch(b, session.id, 0, randomBytes(10)), /another request is writing this upload/);
    await sleep(450);
    assert.equal((await patch(b, session.id, 0, randomBytes(10))).size, 10);
  });

  await t.test('live holder renewing through a chunk longer than the lease', async () => {
    const session = await a.start(REPO, 'admin');
    const slow = new PassThrough();
    const writing = a.append(REPO, session.id, slow, {});
    slow.write(randomBytes(1000));
    await sleep(700);
    await assert.rejects(patch(b, session.id, 0, randomBytes(10)), /another request is writing this upload/);
    slow.end(randomBytes(1000));
    assert.equal((await writing).size, 2000);
  });
});

test('a session of another repository, or none, is unknown on every replica', async () => {
  const [a, b] = replicas();
  const session = await a.start(REPO, 'admin');
  await assert.rejects(b.append('switch/other', session.id, Readable.from([randomBytes(5)]), {}), (err: unknown) => err instanceof RegistryError && err.code === 'BLOB_UPLOAD_UNKNOWN');
  await b.cancel(REPO, session.id);
  await assert.rejects(a.append(REPO, session.id, Readable.from([randomBytes(5)]), {}), (err: unknown) => err instanceof RegistryError && err.code === 'BLOB_UPLOAD_UNKNOWN');
});

describe('through HTTP: two servers on one database and one bucket', () => {
  let a: TestServer;
  let b: TestServer;
  let httpDatabase: string;
  let httpDir: string;
  const auth = adminBasic();

  before(async () => {
    httpDatabase = `upload_switch_http_${randomBytes(4).toString('hex')}`;
    await postgres.createDatabase(httpDatabase);
    const s3 = await sharedS3();
    const bucket = uniqueBucket('switch');
    await s3.createBucket(bucket);
    const overrides = {
      database: { url: postgres.url(httpDatabase), poolSize: 4 },
      storage: { s3: { endpoint: s3.endpoint, region: s3.region, bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true } },
    };
    // One data directory: the signing key and upload id secret are the same on both, as replicas have them.
    httpDir = mkdtempSync(join(tmpdir(), 'berth-switch-http-'));
    a = await startTestServer(overrides, httpDir);
    b = await startTestServer(overrides, httpDir);
  });

  after(async () => {
    await a?.close(true);
    await b?.close(true);
    await postgres?.dropDatabase(httpDatabase).catch(() => undefined);
    if (httpDir) rmSync(httpDir, { recursive: true, force: true });
  });

  /** The upload URL of `location` on `server`: the same session, reached through another replica. */
  const on = (server: TestServer, location: string) => {
    const url = new URL(location, server.url);
    return `${server.url}${url.pathname}${url.search}`;
  };

  async function post(server: TestServer, repo: string): Promise<string> {
    const res = await fetch(`${server.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: auth } });
    assert.equal(res.status, 202, await res.text());
    return res.headers.get('location')!;
  }

  test('chunks alternate between the servers and the PUT lands on the other: the digest is right, the hash saved after each', async () => {
    const repo = 'switch/http';
    // Sizes S3 must buffer or combine (below its 5 MiB part minimum) and one above it.
    const chunks = [randomBytes(100_000), randomBytes(6 * 1024 * 1024 + 1), randomBytes(3)];
    let location = await post(a, repo);
    let offset = 0;
    for (const [i, chunk] of chunks.entries()) {
      const server = i % 2 === 0 ? b : a;
      const res = await fetch(on(server, location), {
        method: 'PATCH',
        headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
      });
      assert.equal(res.status, 202, await res.text());
      offset += chunk.length;
      assert.equal(res.headers.get('range'), `0-${offset - 1}`);
      location = res.headers.get('location')!;
      const id = new URL(location, a.url).pathname.split('/').pop()!;
      assert.equal(await savedOffsetIn(httpDatabase, id), offset, 'the hash state saved with the session covers every byte');
    }
    const digest = sha256(...chunks);
    const put = await fetch(withDigest(on(a, location), digest), { method: 'PUT', headers: { Authorization: auth } });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('docker-content-digest'), digest);
    const head = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: auth } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(offset));
  });

  test('a PATCH on one server while the other still receives a chunk of the session: a clean 400, the bytes intact', async () => {
    const repo = 'switch/busy';
    const location = await post(a, repo);
    const first = randomBytes(256 * 1024);
    // A chunk to A whose body keeps arriving until the test ends it.
    const slow = request(on(a, location), { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } });
    const answered = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      slow.on('error', reject);
    });
    slow.write(first.subarray(0, 128 * 1024));
    await sleep(300);
    const refused = await fetch(on(b, location), { method: 'PATCH', headers: { Authorization: auth, 'Content-Type': 'application/octet-stream', 'Content-Range': '0-9' }, body: randomBytes(10) });
    const envelope = await expectError(refused, 400, 'BLOB_UPLOAD_INVALID');
    assert.match(envelope.errors[0]!.message, /another request is writing this upload/);
    slow.end(first.subarray(128 * 1024));
    assert.equal(await answered, 202);
    const digest = sha256(first);
    const put = await fetch(withDigest(on(b, location), digest), { method: 'PUT', headers: { Authorization: auth } });
    assert.equal(put.status, 201, await put.text());
  });
});

/** hash_offset of session `id` in `databaseName`, read on a connection of the test's own. */
async function savedOffsetIn(databaseName: string, id: string): Promise<number | null> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: postgres.url(databaseName) });
  await client.connect();
  try {
    const { rows } = await client.query<{ hash_offset: string | null }>('select hash_offset from upload_sessions where id = $1', [id]);
    return rows[0]?.hash_offset == null ? null : Number(rows[0].hash_offset);
  } finally {
    await client.end();
  }
}
