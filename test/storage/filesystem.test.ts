import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { FilesystemBlobStore, type FilesystemStoreOptions } from '../../src/storage/filesystem/filesystem-store.ts';
import { blobStoreContract } from './contract.ts';
import { openFilesUnder } from '../support/system.ts';

blobStoreContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  const store = new FilesystemBlobStore(dir);
  await store.init();
  return {
    store,
    raw: {
      async put(path, data) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), data);
      },
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

async function withStore(options: FilesystemStoreOptions, body: (store: FilesystemBlobStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  const store = new FilesystemBlobStore(dir, options);
  await store.init();
  try {
    await body(store, dir);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const uploadId = () => randomBytes(16).toString('base64url');

test('filesystem: an upload file stays open between appends and is closed by commit and delete', async () => {
  await withStore({}, async (store, dir) => {
    const kept = uploadId();
    const dropped = uploadId();
    await store.createUpload(kept);
    await store.createUpload(dropped);
    const data = randomBytes(3000);
    await store.appendUpload(kept, 0, Readable.from([data.subarray(0, 1000)]));
    await store.appendUpload(kept, 1000, Readable.from([data.subarray(1000)]));
    await store.appendUpload(dropped, 0, Readable.from([randomBytes(10)]));
    assert.equal(openFilesUnder(join(dir, 'uploads')).length, 2, 'both uploads are held open');
    await store.commitUpload(kept, `sha256:${createHash('sha256').update(data).digest('hex')}`);
    await store.deleteUpload(dropped);
    assert.deepEqual(openFilesUnder(join(dir, 'uploads')), [], 'commit and delete closed them');
  });
});

test('filesystem: committing keeps one handle per blob directory for its fsync, reused by later commits and closed by close()', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  try {
    const store = new FilesystemBlobStore(dir);
    await store.init();
    const blobs = Array.from({ length: 40 }, () => randomBytes(100));
    for (const [i, blob] of blobs.entries()) {
      const id = uploadId();
      await store.createUpload(id);
      await store.appendUpload(id, 0, Readable.from([blob]));
      await store.commitUpload(id, `sha256:${createHash('sha256').update(blob).digest('hex')}`);
      if (i === 0) assert.ok(openFilesUnder(join(dir, 'blobs'), 'files and directories').length > 0, 'the first commit opened its directory for fsync');
    }
    const open = openFilesUnder(dir, 'files and directories');
    assert.equal(new Set(open).size, open.length, `each directory is open once: ${open.join(', ')}`);
    assert.ok(open.every((p) => !p.includes('/uploads/')), 'no upload file stays open after its commit');
    const prefixes = new Set(blobs.map((b) => createHash('sha256').update(b).digest('hex').slice(0, 2)));
    assert.ok(open.length <= prefixes.size + 2, `at most one handle per blob directory and its parents (${open.length} for ${prefixes.size} prefixes)`);
    for (const blob of blobs) assert.deepEqual(await store.readAll(`sha256:${createHash('sha256').update(blob).digest('hex')}`), blob);
    await store.close();
    assert.deepEqual(openFilesUnder(dir, 'files and directories'), [], 'close() closed every directory handle');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filesystem: idle upload files are closed; the next append reads the size from the file', async () => {
  await withStore({ idleCloseMs: 40 }, async (store, dir) => {
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([randomBytes(5000)]));
    assert.equal(openFilesUnder(dir).length, 1);
    await sleep(200);
    assert.deepEqual(openFilesUnder(dir), [], 'closed after being idle');
    assert.equal(await store.uploadSize(id), 5000);
    assert.equal(await store.appendUpload(id, 5000, Readable.from([randomBytes(7)])), 5007);
  });
});

test('filesystem: at most maxOpenUploads files stay open, least recently used closed first', async () => {
  await withStore({ maxOpenUploads: 3 }, async (store, dir) => {
    const ids = Array.from({ length: 6 }, uploadId);
    for (const id of ids) await store.createUpload(id);
    assert.equal(openFilesUnder(dir).length, 3);
    for (const id of ids) assert.equal(await store.appendUpload(id, 0, Readable.from([Buffer.from('abc')])), 3, 'evicted uploads reopen');
    assert.equal(openFilesUnder(dir).length, 3);
  });
});

test('filesystem: a failed append closes the file; an append while one runs does not disturb it', async () => {
  await withStore({}, async (store, dir) => {
    const id = uploadId();
    await store.createUpload(id);
    const source = new PassThrough();
    const append = store.appendUpload(id, 0, source);
    source.write(randomBytes(4096));
    await sleep(20);
    await assert.rejects(store.appendUpload(id, 0, Readable.from([randomBytes(1)])));
    source.destroy(new Error('gone'));
    await assert.rejects(append, /gone/);
    assert.deepEqual(openFilesUnder(dir), [], 'no handle outlives a failed append');
    assert.equal(await store.uploadSize(id), 4096);
  });
});

test('filesystem: a second store on the same directory (a restart) sees the bytes of an open upload', async () => {
  await withStore({}, async (store, dir) => {
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([randomBytes(70_000)]));
    const restarted = new FilesystemBlobStore(dir);
    try {
      assert.equal(await restarted.uploadSize(id), 70_000);
      assert.equal(await restarted.appendUpload(id, 70_000, Readable.from([randomBytes(30_000)])), 100_000);
    } finally {
      await restarted.close();
    }
  });
});

test('filesystem: a blob file is closed after it was sent, read, or abandoned by its receiver', async () => {
  await withStore({}, async (store, dir) => {
    const data = randomBytes(3 << 20);
    const d = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await store.putSmall(d, data);
    const sink = new PassThrough();
    sink.resume();
    await (await store.read(d)).sendTo(sink);
    const chunks: Buffer[] = [];
    for await (const c of await store.read(d, { start: 5, end: 10 })) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data.subarray(5, 11));
    const gone = new PassThrough();
    gone.destroy();
    await assert.rejects((await store.read(d)).sendTo(gone));
    await sleep(20);
    assert.deepEqual(openFilesUnder(dir), [], 'no blob file left open');
  });
});

test('filesystem: committing bytes that are already stored swaps them in atomically; a reader of the old file reads it whole', async () => {
  await withStore({}, async (store) => {
    const data = randomBytes(3 << 20);
    const d = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await store.putSmall(d, data);
    const reading = await store.read(d);
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([Buffer.from(data)]));
    await store.commitUpload(id, d);
    const sink = new PassThrough();
    const received: Buffer[] = [];
    sink.on('data', (c: Buffer) => received.push(Buffer.from(c))); // sendTo refills its buffers once the sink is done with them
    await reading.sendTo(sink);
    assert.deepEqual(Buffer.concat(received), data, 'the reader opened before the commit got every byte');
    assert.deepEqual(await store.readAll(d), data);
    assert.equal(await store.uploadSize(id), undefined, 'the upload is gone');
  });
});

test('filesystem: a temporary file putSmall left behind is listed as an upload and deleteUpload removes it; directories are not uploads', async () => {
  await withStore({}, async (store, dir) => {
    const temp = `put-${randomBytes(12).toString('hex')}`;
    await writeFile(join(dir, 'uploads', temp), randomBytes(100));
    const folder = uploadId();
    await mkdir(join(dir, 'uploads', folder));
    const id = uploadId();
    await store.createUpload(id);
    assert.deepEqual((await store.listUploads(undefined, 10)).map((u) => u.id).sort(), [id, temp].sort());
    await store.deleteUpload(temp);
    assert.deepEqual((await store.listUploads(undefined, 10)).map((u) => u.id), [id]);
  });
});

test('filesystem: deleteBlobs leaves the shard directories, so a commit into the same shard right after succeeds', async () => {
  await withStore({}, async (store, dir) => {
    const blob = randomBytes(100);
    const d = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    await store.putSmall(d, blob);
    await store.deleteBlobs([d]);
    assert.equal(await store.stat(d), undefined);
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256', d.slice(7, 9))), [], 'the empty shard directory stays');
    // This store made (and holds a handle on) the directory already: it renames into it without looking.
    const id = uploadId();
    await store.createUpload(id);
    await store.appendUpload(id, 0, Readable.from([blob]));
    await store.commitUpload(id, d);
    assert.deepEqual(await store.readAll(d), blob);
  });
});
