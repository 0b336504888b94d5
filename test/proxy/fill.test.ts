// The blob-fill engine of proxy-cache projects (src/proxy/fill.ts) against real parts: a node HTTP
// server as the upstream (slow, gated, corrupt, cut short, with a wrong Content-Length), the real
// blob stores and databases — SQLite + filesystem, and PostgreSQL + S3 (moto) where two BlobFills
// over two connections and two store clients stand for two replicas.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, get, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { openMetadata, type Metadata } from '../../src/metadata/index.ts';
import { BlobFills, type BlobFill } from '../../src/proxy/fill.ts';
import { RemoteError, type RemoteBlob } from '../../src/remote/types.ts';
import type { BlobStore, BlobStream } from '../../src/storage/blob-store.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { createS3Client } from '../../src/storage/s3/client.ts';
import { S3BlobStore } from '../../src/storage/s3/s3-store.ts';
import { metadataPlace, type MetadataPlace } from '../support/metadata.ts';
import { sharedS3, uniqueBucket } from '../support/s3.ts';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The upstream: a real HTTP peer serving blobs the way each test asks.

interface Serving {
  body: Buffer;
  /** Content-Length sent: the body's length by default; 'none' for chunked transfer. */
  length?: number | 'none';
  /** Sends this many bytes, then waits for `gate` before the rest. */
  gateAt?: number;
  gate?: Promise<void>;
  /** Sends this many bytes, then destroys the connection. */
  cutAt?: number;
  status?: number;
}

interface Upstream {
  /** GETs received per path. */
  gets: Map<string, number>;
  /** Bytes sent per path so far. */
  sent: Map<string, number>;
  serve(path: string, serving: Serving): () => Promise<RemoteBlob>;
  close(): Promise<void>;
}

function writeSome(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) return reject(new Error('client gone'));
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

async function startUpstream(): Promise<Upstream> {
  const routes = new Map<string, Serving>();
  const gets = new Map<string, number>();
  const sent = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    gets.set(path, (gets.get(path) ?? 0) + 1);
    const serving = routes.get(path);
    if (!serving || (serving.status ?? 200) !== 200) {
      res.writeHead(serving?.status ?? 404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
      return;
    }
    const { body } = serving;
    const headers: Record<string, string | number> = { 'Content-Type': 'application/octet-stream' };
    if (serving.length !== 'none') headers['Content-Length'] = serving.length ?? body.length;
    res.writeHead(200, headers);
    void (async () => {
      const stop = Math.min(serving.cutAt ?? body.length, body.length);
      for (let at = 0; at < stop; ) {
        if (serving.gateAt !== undefined && at === serving.gateAt) await serving.gate;
        const next = Math.min(at + 64 * 1024, stop, serving.gateAt !== undefined && at < serving.gateAt ? serving.gateAt : Infinity);
        await writeSome(res, body.subarray(at, next));
        at = next;
        sent.set(path, at);
      }
      if (serving.cutAt !== undefined) res.socket?.destroy();
      else res.end();
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    gets,
    sent,
    serve(path, serving) {
      routes.set(path, serving);
      return source(`${base}${path}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The upstream's whole-blob response as the outbound client gives it (src/remote/types.ts). */
function source(url: string): () => Promise<RemoteBlob> {
  return () =>
    new Promise<RemoteBlob>((resolve, reject) => {
      const req = get(url, { agent: false }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new RemoteError('status', `the upstream answered ${res.statusCode}`, res.statusCode));
        }
        const header = res.headers['content-length'];
        const length = header === undefined ? undefined : Number(header);
        resolve({ status: 200, length, totalSize: length, body: res });
      });
      req.on('error', (err) => reject(new RemoteError('unreachable', 'the upstream is unreachable', undefined, undefined, { cause: err })));
    });
}

// ---------------------------------------------------------------------------------------------
// Reading fills.

interface Reading {
  /** Resolves at the first byte. */
  first: Promise<void>;
  /** Every byte, or the stream's error. */
  all: Promise<Buffer>;
  /** Bytes so far. */
  bytes(): number;
}

/** Reads `stream` through `sendTo` (into a sink that copies: its buffers are reused) or as a Readable. */
function consume(stream: BlobStream, how: 'sendTo' | 'readable'): Reading {
  const chunks: Buffer[] = [];
  let count = 0;
  let onFirst!: () => void;
  const first = new Promise<void>((resolve) => (onFirst = resolve));
  const take = (chunk: Buffer) => {
    chunks.push(Buffer.from(chunk));
    count += chunk.length;
    onFirst();
  };
  let all: Promise<Buffer>;
  if (how === 'sendTo') {
    const sink = new Writable({
      write(chunk: Buffer, _enc, callback) {
        take(chunk);
        callback();
      },
    });
    all = stream.sendTo(sink).then(() => Buffer.concat(chunks));
  } else {
    all = (async () => {
      for await (const chunk of stream) take(chunk as Buffer);
      return Buffer.concat(chunks);
    })();
  }
  all.catch(() => undefined);
  return { first, all, bytes: () => count };
}

/**
 * `stream` piped into an HTTP response (as the blob route sends it), read by a real client: the
 * connection is cut when the stream fails.
 */
function relayed(stream: BlobStream): Reading {
  const server = createServer((_req, res) => {
    res.writeHead(200);
    stream.once('error', () => res.destroy());
    stream.pipe(res);
  });
  const reading = new Promise<Reading>((resolve, reject) => {
    server.listen(0, '127.0.0.1', () => {
      const req = get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { agent: false }, (res) => resolve(consume(res as unknown as BlobStream, 'readable')));
      req.on('error', reject);
    });
  });
  const all = reading.then((r) => r.all).finally(() => server.close());
  all.catch(() => undefined);
  let current: Reading | undefined;
  void reading.then((r) => (current = r), () => undefined);
  return { first: reading.then((r) => r.first), all, bytes: () => current?.bytes() ?? 0 };
}

function digestOf(body: Buffer): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** A gate a test opens. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Spool files this process still holds open (they are unlinked at once: "(deleted)" targets). */
function openSpools(spoolDir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(spoolDir)) out.push(target);
    } catch {
      // closed while we looked
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Backends: one "replica" is a store and metadata of its own over the shared engines.

interface Replica {
  store: BlobStore;
  /** The filesystem store's directory (sqlite-fs only). */
  root?: string;
  meta: Metadata;
  fills: BlobFills;
  spoolDir: string;
}

interface Backend {
  name: string;
  replica(owner: string, leaseMs?: number): Promise<Replica>;
  close(): Promise<void>;
}

let upstream: Upstream;
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function sqliteFs(): Promise<Backend> {
  const dir = tempDir('berth-fill-');
  const store = new FilesystemBlobStore(join(dir, 'storage'));
  await store.init();
  const meta = await openMetadata(join(dir, 'meta'));
  const opened: Replica[] = [];
  return {
    name: 'sqlite-fs',
    async replica(owner, leaseMs) {
      const spoolDir = join(dir, `spool-${owner}`);
      const replica = { store, root: join(dir, 'storage'), meta, spoolDir, fills: new BlobFills({ store, meta, spoolDir, owner, log, leaseMs }) };
      opened.push(replica);
      return replica;
    },
    async close() {
      for (const r of opened) await r.fills.close();
      await meta.close();
    },
  };
}

async function postgresS3(): Promise<Backend> {
  const dir = tempDir('berth-fill-pg-');
  const s3 = await sharedS3();
  const bucket = uniqueBucket('berth-fill');
  await s3.createBucket(bucket);
  const place: MetadataPlace = await metadataPlace('postgres');
  const prefix = `${randomBytes(4).toString('hex')}/`;
  const opened: (Replica & { client: { destroy(): void } })[] = [];
  return {
    name: 'postgres-s3',
    async replica(owner, leaseMs) {
      const client = createS3Client({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, maxAttempts: 3 });
      const store = new S3BlobStore({ client, bucket, prefix, partSize: 5 * MiB });
      const meta = await place.open();
      const spoolDir = join(dir, `spool-${owner}`);
      const replica = { store, meta, spoolDir, client, fills: new BlobFills({ store, meta, spoolDir, owner, log, leaseMs }) };
      opened.push(replica);
      return replica;
    },
    async close() {
      for (const r of opened) {
        await r.fills.close();
        await r.meta.close();
        r.client.destroy();
      }
      await place.remove();
    },
  };
}

before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** What a fill that failed must leave: no blob, no `blobs` row, no upload storage or session, no open spool. */
async function assertNothingLeft(replica: Replica, digest: string): Promise<void> {
  await until(() => replica.fills.current(digest) === undefined, 'the failed fill to leave the map');
  assert.equal(await replica.store.stat(digest), undefined, 'the blob is not in the store');
  assert.deepEqual(await replica.meta.blobs.known([digest]), new Set(), 'no blobs row is left claimed (nothing for GC to find)');
  await until(async () => (await replica.store.listUploads(undefined, 100)).length === 0, 'the upload storage to be removed');
  await until(async () => (await replica.meta.db.selectFrom('upload_sessions').select('id').execute()).length === 0, 'the upload session to be removed');
  await until(() => openSpools(replica.spoolDir).length === 0, 'the spool file to be closed');
}

let serial = 0;
const path = (what: string) => `/v2/up/blobs/${what}-${++serial}`;

for (const make of [sqliteFs, postgresS3]) {
  describe(make === sqliteFs ? 'sqlite-fs' : 'postgres-s3', () => {
    let backend: Backend;
    let replica: Replica;
    before(async () => {
      backend = await make();
      replica = await backend.replica('replica-a');
    });
    after(async () => {
      await backend?.close();
    });

    test('20 concurrent fetches share one upstream GET; bytes stream before it ends; late joiners and ranges follow the growing copy', async () => {
      // Held back far past the spool's memory window (the last 4 MiB written, plus what waits to be
      // written: up to 8 MiB more): late joiners read the start from the file.
      const arrived = 20 * MiB;
      const body = randomBytes(22 * MiB + 321);
      const digest = digestOf(body);
      const held = gate();
      const p = path('shared');
      const src = upstream.serve(p, { body, gateAt: arrived, gate: held.promise });

      const fills: BlobFill[] = [];
      for (let i = 0; i < 20; i++) fills.push(replica.fills.fetch(digest, src));
      assert.ok(fills.every((f) => f === fills[0]), 'one fill for the digest on this replica');
      const fill = fills[0]!;
      assert.equal(replica.fills.current(digest), fill);
      assert.deepEqual(await fill.started, { size: body.length });
      const readings = fills.map((f, i) => consume(f.read(), i % 2 === 0 ? 'sendTo' : 'readable'));
      await Promise.all(readings.map((r) => r.first));
      await until(() => fill.received === arrived, 'the first 20 MiB to arrive');
      // Every reader has bytes while the upstream still holds the rest back.
      assert.equal(upstream.sent.get(p), arrived);
      assert.equal(upstream.gets.get(p), 1);
      await until(() => readings.every((r) => r.bytes() === arrived), 'readers to catch up with the growing copy');

      const early = consume(fill.read(1000, 1999), 'sendTo');
      assert.deepEqual(await early.all, body.subarray(1000, 2000), 'a range the copy has reached is served at once');
      const tail = consume(fill.read(body.length - 100), 'readable');
      const late = [consume(fill.read(), 'sendTo'), consume(fill.read(), 'readable'), relayed(fill.read())];
      await until(() => late.every((r) => r.bytes() === arrived), 'the late joiners to read what has arrived');
      assert.equal(tail.bytes(), 0, 'a range beyond the copy waits for it');

      held.open();
      for (const r of [...readings, ...late]) assert.ok((await r.all).equals(body));
      assert.ok((await tail.all).equals(body.subarray(body.length - 100)));
      assert.equal(await fill.done, body.length);
      assert.equal(upstream.gets.get(p), 1, 'one upstream GET for all of them');

      assert.equal(await replica.store.stat(digest), body.length);
      assert.ok((await replica.store.readAll(digest)).equals(body));
      assert.deepEqual(await replica.meta.blobs.known([digest]), new Set([digest]), 'its blobs row was claimed');
      assert.equal(replica.fills.current(digest), undefined, 'the fill left the map');
      assert.deepEqual(await replica.store.listUploads(undefined, 100), []);
      assert.equal((await replica.meta.db.selectFrom('upload_sessions').select('id').execute()).length, 0);
      assert.deepEqual(openSpools(replica.spoolDir), [], 'the spool is closed once its readers are done');
      assert.deepEqual(readdirSync(replica.spoolDir), []);
      const lease = await replica.meta.db.selectFrom('leases').selectAll().where('key', '=', `blob:${digest}`).execute();
      assert.deepEqual(lease, [], 'the lease was released');

      // Read after the end: from the store. And a fetch of a blob already stored costs no GET.
      assert.ok((await consume(fill.read(5, 9), 'readable').all).equals(body.subarray(5, 10)));
      const again = replica.fills.fetch(digest, src);
      assert.equal(await again.done, body.length);
      assert.ok((await consume(again.read(), 'sendTo').all).equals(body));
      assert.equal(upstream.gets.get(p), 1);
    });

    test('a corrupt, cut short or wrongly sized upstream transfer fails its readers and leaves nothing; the next request tries again', async () => {
      const body = randomBytes(3 * MiB + 17);
      const digest = digestOf(body);
      const corrupt = Buffer.from(body);
      corrupt[corrupt.length - 5]! ^= 0xff;
      // The corrupt ones hold their last byte back until the readers have all the others: the
      // readers must not get it (a complete body), however fast they are.
      const lastByte = [gate(), gate()] as const;
      const cases: [string, Serving, (() => void)?][] = [
        ['corrupt', { body: corrupt, gateAt: body.length - 1, gate: lastByte[0].promise }, lastByte[0].open],
        ['cut-short', { body, cutAt: MiB + 3 }],
        ['wrong-length', { body, length: body.length - 10 }],
        ['chunked-corrupt', { body: corrupt, length: 'none', gateAt: body.length - 1, gate: lastByte[1].promise }, lastByte[1].open],
      ];
      for (const [what, serving, openGate] of cases) {
        const fill = replica.fills.fetch(digest, upstream.serve(path(what), serving));
        const readers = [consume(fill.read(), 'sendTo'), consume(fill.read(), 'readable')];
        if (openGate) {
          await until(() => readers.every((r) => r.bytes() >= body.length - 2), `${what}: readers to have all but the last bytes`);
          openGate();
        }
        await assert.rejects(fill.done, (err: unknown) => err instanceof RemoteError, what);
        for (const r of readers) {
          await assert.rejects(r.all, what);
          assert.ok(r.bytes() < body.length, `${what}: a reader never gets a complete body`);
        }
        await assertNothingLeft(replica, digest);
      }

      const missing = replica.fills.fetch(digest, upstream.serve(path('missing'), { body, status: 404 }));
      await assert.rejects(missing.started, (err: unknown) => err instanceof RemoteError && err.notFound);
      await assert.rejects(consume(missing.read(), 'readable').all);
      await assertNothingLeft(replica, digest);

      // Unknown length (chunked) and correct: stored.
      const good = replica.fills.fetch(digest, upstream.serve(path('good'), { body, length: 'none' }));
      assert.deepEqual(await good.started, { size: undefined });
      assert.ok((await consume(good.read(), 'sendTo').all).equals(body));
      assert.equal(await good.done, body.length);
      assert.equal(await replica.store.stat(digest), body.length);
    });

    test('a fill goes on when its only client goes away: the layer is cached anyway', async () => {
      const body = randomBytes(MiB + 7);
      const digest = digestOf(body);
      const held = gate();
      const fill = replica.fills.fetch(digest, upstream.serve(path('quitter'), { body, gateAt: 64 * 1024, gate: held.promise }));
      const stream = fill.read();
      const reading = consume(stream, 'readable');
      await reading.first;
      stream.destroy();
      await assert.rejects(reading.all);
      held.open();
      assert.equal(await fill.done, body.length);
      assert.ok((await replica.store.readAll(digest)).equals(body));
    });

    test('a lease another replica let lapse is taken over', async () => {
      const short = await backend.replica('replica-short', 300);
      const body = randomBytes(64 * 1024);
      const digest = digestOf(body);
      // A holder that took the lease and died before fetching anything.
      assert.equal(await short.meta.leases.acquire(`blob:${digest}`, 'dead-replica', 300), true);
      const p = path('takeover');
      const fill = short.fills.fetch(digest, upstream.serve(p, { body }));
      await sleep(100);
      assert.equal(upstream.gets.get(p), undefined, 'no fetch while the lease runs');
      assert.ok((await consume(fill.read(), 'readable').all).equals(body));
      assert.equal(await fill.done, body.length);
      assert.equal(upstream.gets.get(p), 1);
    });

    if (make === postgresS3) {
      test('two replicas share one upstream fetch through the lease; the second reads the committed blob', async () => {
        const b = await backend.replica('replica-b');
        const body = randomBytes(5 * MiB + 99);
        const digest = digestOf(body);
        const held = gate();
        const p = path('replicas');
        const src = upstream.serve(p, { body, gateAt: MiB, gate: held.promise });
        const fillA = replica.fills.fetch(digest, src);
        await fillA.started;
        const fillB = b.fills.fetch(digest, src);
        const readA = consume(fillA.read(), 'sendTo');
        const readB = consume(fillB.read(), 'readable');
        await readA.first;
        await sleep(300);
        assert.equal(readB.bytes(), 0, 'replica B waits for the blob');
        held.open();
        assert.ok((await readA.all).equals(body));
        assert.ok((await readB.all).equals(body));
        assert.equal(await fillB.done, body.length);
        assert.equal(upstream.gets.get(p), 1, 'one upstream GET across the replicas');
      });

      test('leases: one winner among racing owners; renew and release only by the holder', async () => {
        const key = `blob:race-${randomBytes(4).toString('hex')}`;
        const b = await backend.replica('replica-c');
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? replica : b).meta.leases.acquire(key, `owner-${i}`, 10_000)));
        assert.equal(results.filter(Boolean).length, 1);
        const winner = `owner-${results.indexOf(true)}`;
        assert.equal(await replica.meta.leases.renew(key, 'someone-else', 10_000), false);
        assert.equal(await b.meta.leases.renew(key, winner, 10_000), true);
        await replica.meta.leases.release(key, 'someone-else');
        assert.equal(await replica.meta.leases.acquire(key, 'someone-else', 10_000), false);
        await b.meta.leases.release(key, winner);
        assert.equal(await replica.meta.leases.acquire(key, 'someone-else', 10_000), true);
      });
    } else {
      test('leases: taken when free, lapsed or already ours; renew and release only by the holder', async () => {
        const { leases } = replica.meta;
        const key = 'blob:sqlite-lease';
        assert.equal(await leases.acquire(key, 'a', 10_000), true);
        assert.equal(await leases.acquire(key, 'b', 10_000), false);
        assert.equal(await leases.acquire(key, 'a', 10_000), true, 'already ours');
        assert.equal(await leases.renew(key, 'b', 10_000), false);
        await leases.release(key, 'b');
        assert.equal(await leases.acquire(key, 'b', 10_000), false, 'a release by another owner is a no-op');
        assert.equal(await leases.acquire(key, 'a', 1), true);
        await sleep(5);
        assert.equal(await leases.acquire(key, 'b', 10_000), true, 'a lapsed lease is taken');
        assert.equal(await leases.renew(key, 'a', 10_000), false, 'the old holder lost it');
        await leases.release(key, 'b');
        assert.equal(await leases.acquire(key, 'a', 10_000), true);
      });

      test('when the store fails the readers still get the bytes, uncached; close() aborts fills in progress', async () => {
        const body = randomBytes(2 * MiB + 1);
        const digest = digestOf(body);
        const store = replica.store as FilesystemBlobStore;
        const uploads = join(replica.root!, 'uploads');
        await rm(uploads, { recursive: true, force: true });
        try {
          const fill = replica.fills.fetch(digest, upstream.serve(path('no-store'), { body }));
          assert.ok((await consume(fill.read(), 'sendTo').all).equals(body));
          await assert.rejects(fill.done);
          assert.equal(await store.stat(digest), undefined);
          assert.deepEqual(await replica.meta.blobs.known([digest]), new Set());
        } finally {
          await store.init();
        }

        const closing = await backend.replica('replica-closing');
        const held = gate();
        const p = path('closing');
        const fill = closing.fills.fetch(digest, upstream.serve(p, { body, gateAt: MiB, gate: held.promise }));
        const reading = consume(fill.read(), 'readable');
        await reading.first;
        await closing.fills.close();
        await assert.rejects(reading.all);
        await assert.rejects(fill.done);
        assert.throws(() => closing.fills.fetch(digest, upstream.serve(p, { body })));
        held.open();
        await assertNothingLeft(closing, digest);
      });
    }
  });
}
