import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { StorageError, type BlobStore } from '../../src/storage/blob-store.ts';

/** The behaviour every blob-store driver must have. Each driver's test file calls this once. */
export function blobStoreContract(name: string, makeStore: () => Promise<{ store: BlobStore; cleanup: () => Promise<void> }>): void {
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
}
