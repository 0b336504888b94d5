import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError, type BlobStore } from '../../src/storage/blob-store.ts';
import { listingContract } from './contract-listing.ts';

/** Access beneath a store, to plant what its listings must skip or find. */
export interface RawAccess {
  /** Writes `data` at `path` (`/`-separated, below the store's directory or key prefix), bypassing the store. */
  put(path: string, data: Buffer): Promise<void>;
  /** Starts a multipart upload on `path` and leaves it in progress; drivers without multipart uploads leave it out. */
  startMultipart?(path: string): Promise<void>;
}

/** A fresh, empty store of a driver, how to reach beneath it, and how to dispose of it. */
export interface StoreFixture {
  store: BlobStore;
  raw: RawAccess;
  cleanup: () => Promise<void>;
}

/** The behaviour every blob-store driver must have. Each driver's test file calls this once. */
export function blobStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  const digest = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const collect = async (stream: Readable) => {
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const uploadId = () => randomBytes(16).toString('base64url');

  const withStore = (title: string, body: (store: BlobStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await body(store);
      } finally {
        await cleanup();
      }
    });

  withStore('a missing blob has no size and cannot be read', async (store) => {
    const d = digest(Buffer.from('nothing'));
    assert.equal(await store.stat(d), undefined);
    await assert.rejects(store.read(d), (err: unknown) => err instanceof StorageError && err.kind === 'not_found');
    await assert.rejects(store.readAll(d), (err: unknown) => err instanceof StorageError && err.kind === 'not_found');
  });

  withStore('putSmall stores content readable whole and by range; repeating it is a no-op', async (store) => {
    const data = randomBytes(5000);
    const d = digest(data);
    await store.putSmall(d, data);
    await store.putSmall(d, data);
    assert.equal(await store.stat(d), 5000);
    assert.deepEqual(await store.readAll(d), data);
    assert.deepEqual(await collect(await store.read(d, { start: 100, end: 199 })), data.subarray(100, 200));
    assert.deepEqual(await collect(await store.read(d)), data);
  });

  /**
   * A receiver that answers each write late and only looks at the chunk when it answers: a driver
   * that refilled a buffer before being called back would show up as corrupted bytes here.
   */
  class LateSink extends Writable {
    readonly received: Buffer[] = [];
    override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
      setTimeout(() => {
        this.received.push(Buffer.from(chunk));
        callback();
      }, 2);
    }
  }

  withStore('sendTo writes a blob and a range exactly, never touching a buffer the receiver holds', async (store) => {
    const data = randomBytes((3 << 20) + 5);
    const d = digest(data);
    await store.putSmall(d, data);
    const whole = new LateSink();
    await (await store.read(d)).sendTo(whole);
    assert.ok(Buffer.concat(whole.received).equals(data), 'whole blob');
    assert.equal(whole.writableEnded, false, 'the receiver is left open');
    const part = new LateSink();
    await (await store.read(d, { start: 1_000_000, end: 2_500_000 })).sendTo(part);
    assert.ok(Buffer.concat(part.received).equals(data.subarray(1_000_000, 2_500_001)), 'range');
  });

  withStore('sendTo rejects when the receiver goes away', async (store) => {
    const data = randomBytes(4 << 20);
    const d = digest(data);
    await store.putSmall(d, data);
    let writes = 0;
    const gone = new Writable({
      write(_chunk, _encoding, callback) {
        if (++writes === 2) this.destroy(new Error('connection reset'));
        else callback();
      },
    });
    gone.on('error', () => undefined);
    await assert.rejects((await store.read(d)).sendTo(gone));
  });

  withStore('uploads append at the right offset only, then commit atomically', async (store) => {
    const id = uploadId();
    const a = randomBytes(70_000);
    const b = randomBytes(30_000);
    await store.createUpload(id);
    assert.equal(await store.uploadSize(id), 0);
    assert.equal(await store.appendUpload(id, 0, Readable.from([a])), a.length);
    await assert.rejects(store.appendUpload(id, 0, Readable.from([b])), (err: unknown) => err instanceof StorageError && err.kind === 'offset_mismatch');
    assert.equal(await store.uploadSize(id), a.length, 'a refused append changes nothing');
    assert.equal(await store.appendUpload(id, a.length, Readable.from([b])), a.length + b.length);
    assert.deepEqual(await collect(await store.readUpload(id)), Buffer.concat([a, b]));
    assert.deepEqual(await collect(await store.readUpload(id, a.length)), b);
    const d = digest(Buffer.concat([a, b]));
    assert.equal(await store.stat(d), undefined, 'not visible before commit');
    await store.commitUpload(id, d);
    assert.equal(await store.stat(d), a.length + b.length);
    assert.equal(await store.uploadSize(id), undefined, 'the upload is gone after commit');
    assert.deepEqual(await store.readAll(d), Buffer.concat([a, b]));
  });

  withStore('a commit naming another size than the upload holds is refused and changes nothing; a delete without a sweep removes an upload too', async (store) => {
    const id = uploadId();
    const data = randomBytes(5000);
    await store.createUpload(id);
    assert.equal(await store.appendUpload(id, 0, Readable.from([data])), data.length);
    const d = digest(data);
    assert.equal(await store.uploadSize(id), data.length);
    await assert.rejects(store.commitUpload(id, d, data.length - 1), (err: unknown) => err instanceof StorageError && err.kind === 'offset_mismatch');
    assert.equal(await store.stat(d), undefined, 'nothing committed');
    assert.equal(await store.uploadSize(id), data.length, 'the upload is intact');
    await store.commitUpload(id, d, data.length);
    assert.deepEqual(await store.readAll(d), data);
    assert.equal(await store.uploadSize(id), undefined);

    const other = uploadId();
    await store.createUpload(other);
    await store.appendUpload(other, 0, Readable.from([randomBytes(700)]));
    await store.deleteUpload(other, { sweep: false });
    assert.equal(await store.uploadSize(other), undefined);
    await assert.rejects(store.appendUpload(other, 0, Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StorageError && err.kind === 'not_found');
  });

  withStore('committing content that already exists keeps one copy and removes the upload', async (store) => {
    const data = randomBytes(1000);
    const d = digest(data);
    await store.putSmall(d, data);
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([data]));
    await store.commitUpload(id, d);
    assert.equal(await store.uploadSize(id), undefined);
    assert.deepEqual(await store.readAll(d), data);
  });

  withStore('a failing stream leaves only what was written, and the upload usable', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const first = randomBytes(4096);
    const failing = new Readable({
      read() {
        this.push(first);
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(store.appendUpload(id, 0, failing));
    const size = (await store.uploadSize(id))!;
    assert.ok(size <= first.length, `upload holds at most what was sent (${size})`);
    const rest = randomBytes(10);
    assert.equal(await store.appendUpload(id, size, Readable.from([rest])), size + 10);
  });

  /** Chunks of awkward sizes (1 byte, just over and under the usual 64 KiB and 1 MiB boundaries). */
  const oddChunks = () => [1, 65_535, 65_537, 7, (1 << 20) + 3, (2 << 20) - 1, 333_333, (3 << 20) + 11, 2].map((n) => randomBytes(n));

  withStore('onChunk sees every byte in order, exactly the bytes written, across appends of odd sizes', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const seen = createHash('sha256');
    const all: Buffer[] = [];
    let size = 0;
    for (const piece of [oddChunks().slice(0, 4), oddChunks().slice(4)]) {
      size = await store.appendUpload(id, size, Readable.from(piece), { onChunk: (c) => void seen.update(c) });
      all.push(...piece);
    }
    const expected = Buffer.concat(all);
    assert.equal(size, expected.length);
    assert.equal(await store.uploadSize(id), expected.length);
    assert.deepEqual(await collect(await store.readUpload(id)), expected);
    assert.equal(`sha256:${seen.digest('hex')}`, digest(expected), 'what onChunk saw is what was stored');
    await store.commitUpload(id, digest(expected));
    assert.deepEqual(await store.readAll(digest(expected)), expected);
  });

  withStore('a source that fails after many chunks: every chunk that had arrived is written', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const source = new PassThrough();
    let seen = 0;
    const append = store.appendUpload(id, 0, source, { onChunk: (c) => void (seen += c.length) });
    const sent = Buffer.concat(oddChunks());
    for (let i = 0; i < sent.length; i += 100_000) source.write(sent.subarray(i, i + 100_000));
    for (let i = 0; i < 200 && seen < sent.length; i++) await sleep(5);
    assert.equal(seen, sent.length, 'the store took every chunk');
    source.destroy(new Error('client went away'));
    await assert.rejects(append, /client went away/);
    assert.equal(await store.uploadSize(id), sent.length, 'nothing that arrived was dropped');
    assert.deepEqual(await collect(await store.readUpload(id)), sent);
    const more = randomBytes(10);
    assert.equal(await store.appendUpload(id, sent.length, Readable.from([more])), sent.length + 10, 'the upload continues');
  });

  withStore('an aborted append writes what had arrived, then rejects with the reason', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const source = new PassThrough();
    const controller = new AbortController();
    let seen = 0;
    const append = store.appendUpload(id, 0, source, { signal: controller.signal, onChunk: (c) => void (seen += c.length) });
    const sent = randomBytes((5 << 20) + 5);
    source.write(sent);
    for (let i = 0; i < 200 && seen < sent.length; i++) await sleep(5);
    controller.abort(new Error('stop'));
    await assert.rejects(append, /stop/);
    assert.equal(await store.uploadSize(id), sent.length);
    source.write(randomBytes(100));
    await sleep(20);
    assert.equal(await store.uploadSize(id), sent.length, 'nothing is read after the abort');
  });

  withStore('appends to one upload never interleave: a second one while the first runs is refused', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const first = new PassThrough();
    const running = store.appendUpload(id, 0, first);
    first.write(randomBytes(1000));
    await sleep(10);
    for (const offset of [0, 1000]) {
      await assert.rejects(store.appendUpload(id, offset, Readable.from([randomBytes(10)])), (err: unknown) => err instanceof StorageError && err.kind === 'offset_mismatch');
    }
    first.end(randomBytes(24));
    assert.equal(await running, 1024);
    assert.equal(await store.appendUpload(id, 1024, Readable.from([randomBytes(10)])), 1034, 'appends continue once the first is done');
  });

  withStore('a fast source is read with backpressure, never buffered whole', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const total = 96 << 20;
    const block = randomBytes(64 << 10);
    let produced = 0;
    const source = new Readable({
      read() {
        this.push(produced < total ? block : null);
        produced += block.length;
      },
    });
    let arrived = 0;
    let maxAhead = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const written = (await store.uploadSize(id)) ?? 0;
        maxAhead = Math.max(maxAhead, arrived - written);
        await sleep(1);
      }
    })();
    const size = await store.appendUpload(id, 0, source, { onChunk: (c) => void (arrived += c.length) });
    sampling = false;
    await sampler;
    assert.equal(size, total);
    assert.ok(maxAhead <= 32 << 20, `at most 32 MiB waited to be written (${(maxAhead / (1 << 20)).toFixed(1)} MiB did)`);
  });

  withStore('an empty upload commits to an empty blob', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    assert.equal(await store.appendUpload(id, 0, Readable.from([])), 0);
    const d = digest(Buffer.alloc(0));
    await store.commitUpload(id, d);
    assert.equal(await store.stat(d), 0);
    assert.deepEqual(await store.readAll(d), Buffer.alloc(0));
  });

  withStore('many tiny appends keep every byte in order', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const pieces = Array.from({ length: 70 }, (_, i) => randomBytes((i % 3) + 1));
    let size = 0;
    for (const piece of pieces) size = await store.appendUpload(id, size, Readable.from([piece]));
    const expected = Buffer.concat(pieces);
    assert.equal(size, expected.length);
    assert.deepEqual(await collect(await store.readUpload(id, 5)), expected.subarray(5));
    await store.commitUpload(id, digest(expected));
    assert.deepEqual(await store.readAll(digest(expected)), expected);
  });

  withStore('reading an upload back midway disturbs nothing: appends and the commit go on', async (store) => {
    const id = uploadId();
    await store.createUpload(id);
    const first = randomBytes((3 << 20) + 17);
    const second = randomBytes((2 << 20) + 5);
    await store.appendUpload(id, 0, Readable.from([first]));
    assert.deepEqual(await collect(await store.readUpload(id)), first);
    assert.deepEqual(await collect(await store.readUpload(id, first.length - 10)), first.subarray(-10));
    assert.equal(await store.appendUpload(id, first.length, Readable.from([second])), first.length + second.length);
    const expected = Buffer.concat([first, second]);
    assert.deepEqual(await collect(await store.readUpload(id, 1)), expected.subarray(1));
    await store.commitUpload(id, digest(expected));
    assert.ok((await store.readAll(digest(expected))).equals(expected));
  });

  withStore('ranged reads of a committed upload: first byte, last byte, across the middle', async (store) => {
    const data = randomBytes((4 << 20) + 3);
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([data]));
    const d = digest(data);
    await store.commitUpload(id, d);
    for (const [start, end] of [[0, 0], [data.length - 1, data.length - 1], [(1 << 20) - 1, (3 << 20) + 1]] as const) {
      assert.ok((await collect(await store.read(d, { start, end }))).equals(data.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
  });

  withStore('missing uploads: not found on append and commit; delete is a no-op', async (store) => {
    const id = uploadId();
    assert.equal(await store.uploadSize(id), undefined);
    await assert.rejects(store.appendUpload(id, 0, Readable.from([Buffer.from('x')])), (err: unknown) => err instanceof StorageError && err.kind === 'not_found');
    await assert.rejects(store.commitUpload(id, digest(Buffer.from('x'))), (err: unknown) => err instanceof StorageError && err.kind === 'not_found');
    await store.deleteUpload(id);
  });

  withStore('delete removes a blob; deleting again is a no-op', async (store) => {
    const data = randomBytes(10);
    const d = digest(data);
    await store.putSmall(d, data);
    await store.delete(d);
    assert.equal(await store.stat(d), undefined);
    await store.delete(d);
  });

  withStore('malformed digests and upload ids are refused, never turned into paths', async (store) => {
    for (const bad of ['sha256:../../etc/passwd', 'sha256:ABC', '../x', 'sha256:' + 'a'.repeat(63)]) {
      await assert.rejects(store.stat(bad), (err: unknown) => err instanceof StorageError && err.kind === 'invalid');
    }
    for (const bad of ['../../../tmp/x', 'a/b', '']) {
      await assert.rejects(store.createUpload(bad), (err: unknown) => err instanceof StorageError && err.kind === 'invalid');
    }
  });

  listingContract(name, makeStore);
}
