import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { StorageError, type BlobStore, type StoredBlob } from '../../src/storage/blob-store.ts';
import type { RawAccess, StoreFixture } from './contract.ts';

/** Where listing and batch deletion must agree across drivers; part of `blobStoreContract`. */
export function listingContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const sha512 = (data: Buffer) => `sha512:${createHash('sha512').update(data).digest('hex')}`;
  /** 64 hex digits starting with `start`. */
  const hexFrom = (start: string) => start + randomBytes(32).toString('hex').slice(start.length);
  const uploadId = () => randomBytes(16).toString('base64url');
  /** Listing order of upload ids (see `BlobStore.listUploads`). */
  const byFolder = (a: string, b: string) => (`${a}/` < `${b}/` ? -1 : 1);

  const withStore = (title: string, body: (store: BlobStore, raw: RawAccess) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const { store, raw, cleanup } = await makeStore();
      try {
        await body(store, raw);
      } finally {
        await cleanup();
      }
    });

  /** Every page from `after` on, `limit` at a time: what a caller paging through sees. */
  async function pages<T>(list: (after: string | undefined) => Promise<T[]>, key: (item: T) => string, limit: number): Promise<T[]> {
    const all: T[] = [];
    let after: string | undefined;
    for (let i = 0; i < 1000; i++) {
      const page = await list(after);
      assert.ok(page.length <= limit, `a page holds at most ${limit}`);
      all.push(...page);
      if (page.length < limit) return all;
      after = key(page.at(-1)!);
    }
    throw new Error('paging did not end');
  }

  const assertRecent = (at: number, since: number, what: string) =>
    // S3 servers keep whole seconds; a filesystem's clock ticks coarsely too.
    assert.ok(Number.isFinite(at) && at >= since - 2000 && at <= Date.now() + 1000, `${what}: modified at ${at}, written since ${since}`);

  withStore('listBlobs: every blob in digest order with size and time, in pages from any point; strays skipped', async (store, raw) => {
    assert.deepEqual(await store.listBlobs(undefined, 10), [], 'a fresh store lists no blob');
    assert.deepEqual(await store.listUploads(undefined, 10), [], 'nor any upload');
    const since = Date.now();
    const stored: { digest: string; size: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(10 + i);
      stored.push({ digest: sha256(data), size: data.length });
      await store.putSmall(sha256(data), data);
    }
    const long = randomBytes(40);
    stored.push({ digest: sha512(long), size: long.length });
    await store.putSmall(sha512(long), long);
    const strays = [
      `blobs/sha256/ab/${'z'.repeat(64)}`, // not hex
      `blobs/sha256/00/${hexFrom('11')}`, // in another digest's shard
      `blobs/sha256/ab/${hexFrom('ab')}.tmp`, // a temporary file
      `blobs/sha256/ab/${hexFrom('ab').slice(0, 40)}`, // too short
      `blobs/sha256/0g/0g${hexFrom('').slice(2)}`, // no shard of hex digits
      `blobs/md5/ab/${hexFrom('ab')}`, // an algorithm Berth does not store
      `blobs/sha256/cd/${hexFrom('cd')}/inner`, // something where a blob would be, holding more
      'blobs/sha256/stray',
      'blobs/stray',
    ];
    for (const path of strays) await raw.put(path, Buffer.from('not a blob'));

    const expected = [...stored].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    const digests = expected.map((e) => e.digest);
    const all = await store.listBlobs(undefined, 100);
    assert.deepEqual(all.map(({ digest, size }) => ({ digest, size })), expected, 'each blob once, in order, with its size; no stray');
    for (const b of all) assertRecent(b.modifiedAt, since, b.digest);

    for (const limit of [1, 2, 3, 7]) {
      const paged = await pages((after) => store.listBlobs(after, limit), (b: StoredBlob) => b.digest, limit);
      assert.deepEqual(paged.map((b) => b.digest), digests, `pages of ${limit}`);
    }
    const afters = [
      '', 'a', 'sha256', 'sha256:', 'sha256:0', 'sha256:g', 'sha3', 'sha384:', 'sha512', 'sha512:', 'sha512:0',
      `sha512:${'f'.repeat(128)}`, `sha256:${'f'.repeat(65)}`, 'zzz', 'sha256:../../etc',
      ...digests.flatMap((d) => [d, d.slice(0, -1), `${d}0`, d.slice(0, 8), d.slice(0, 10)]),
    ];
    for (const after of afters) {
      assert.deepEqual((await store.listBlobs(after, 100)).map((b) => b.digest), digests.filter((d) => d > after), `after ${JSON.stringify(after)}`);
    }
    assert.deepEqual((await store.listBlobs(digests[1], 2)).map((b) => b.digest), digests.slice(2, 4), 'a page from between keys');
    assert.deepEqual(await store.listBlobs(digests.at(-1), 10), [], 'nothing past the end');
    assert.deepEqual(await store.listBlobs(undefined, 0), []);
  });

  withStore('deleteBlobs removes thousands in batches, missing ones mixed in; a malformed digest deletes nothing', async (store) => {
    const tag = randomBytes(8).toString('hex');
    const doomed = Array.from({ length: 2100 }, (_, i) => Buffer.from(`doomed ${tag} ${i}`));
    const kept = Array.from({ length: 3 }, (_, i) => Buffer.from(`kept ${tag} ${i}`));
    const all = [...doomed, ...kept];
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < all.length) {
        const data = all[next++]!;
        await store.putSmall(sha256(data), data);
      }
    }));
    assert.equal((await store.listBlobs(undefined, 5000)).length, all.length);

    await assert.rejects(store.deleteBlobs([sha256(doomed[0]!), 'sha256:../../../etc/passwd']), (err: unknown) => err instanceof StorageError && err.kind === 'invalid');
    assert.equal(await store.stat(sha256(doomed[0]!)), doomed[0]!.length, 'nothing deleted before every digest was checked');

    const targets: string[] = [];
    for (const [i, data] of doomed.entries()) {
      targets.push(sha256(data));
      if (i % 50 === 0) targets.push(`sha256:${hexFrom('')}`); // never stored
    }
    await store.deleteBlobs(targets);
    const left = (await store.listBlobs(undefined, 5000)).map((b) => b.digest);
    assert.deepEqual(left, kept.map(sha256).sort(), 'exactly the blobs not named are left');
    for (const data of kept) assert.deepEqual(await store.readAll(sha256(data)), data);
    assert.equal(await store.stat(sha256(doomed[2099]!)), undefined);
    await store.deleteBlobs(targets);
    await store.deleteBlobs([]);
  });

  withStore('listUploads: uploads in listing order with their last write, in pages; an upload gone once deleted; strays skipped', async (store, raw) => {
    const since = Date.now();
    // Ids that are each other's beginnings: the order of `id + "/"` differs from plain order here.
    const base = randomBytes(12).toString('base64url');
    const ids = [base, `${base}-a`, `${base}0`, `${base}_z`, uploadId(), uploadId()];
    for (const id of ids) await store.createUpload(id);
    await store.appendUpload(ids[1]!, 0, Readable.from([randomBytes(3000)]));
    await store.appendUpload(ids[4]!, 0, Readable.from([randomBytes(10)]));
    await raw.put('uploads/short', Buffer.from('x'));
    await raw.put(`uploads/not.an.id.${base}/state`, Buffer.from('{}'));

    const ordered = [...ids].sort(byFolder);
    const listed = await store.listUploads(undefined, 100);
    assert.deepEqual(listed.map((u) => u.id), ordered, 'every upload once, in order; no stray');
    for (const u of listed) assertRecent(u.modifiedAt, since, u.id);
    for (const limit of [1, 2, 5]) {
      const paged = await pages((after) => store.listUploads(after, limit), (u) => u.id, limit);
      assert.deepEqual(paged.map((u) => u.id), ordered, `pages of ${limit}`);
    }
    for (const after of ['', 'zzzz', '~', base.slice(0, 5), `${base}-`, `${base}.`, `${base}/`, ...ids]) {
      assert.deepEqual((await store.listUploads(after, 100)).map((u) => u.id), ordered.filter((id) => `${id}/` > `${after}/`), `after ${JSON.stringify(after)}`);
    }

    await store.deleteUpload(ids[1]!);
    await store.deleteUpload(ids[4]!, { sweep: false });
    assert.deepEqual((await store.listUploads(undefined, 100)).map((u) => u.id), ordered.filter((id) => id !== ids[1] && id !== ids[4]), 'deleted uploads are not listed');

    if (raw.startMultipart) {
      // Only a multipart upload on the upload's data key, as a replica that died after starting it leaves.
      const lone = uploadId();
      await raw.startMultipart(`uploads/${lone}/data`);
      // One on another key is nothing deleteUpload would remove, so not an upload.
      await raw.startMultipart(`uploads/${uploadId()}/elsewhere`);
      const seen = await store.listUploads(undefined, 100);
      assert.deepEqual(seen.map((u) => u.id), [...ordered.filter((id) => id !== ids[1] && id !== ids[4]), lone].sort(byFolder));
      // Its time is when S3 says it was initiated (moto says 2010): only its form is checked.
      assert.ok(Number.isFinite(seen.find((u) => u.id === lone)!.modifiedAt));
      await store.deleteUpload(lone);
      assert.ok(!(await store.listUploads(undefined, 100)).some((u) => u.id === lone), 'gone once deleted');
    }
  });
}
