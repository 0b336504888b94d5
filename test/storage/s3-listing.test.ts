// The S3 driver's listings and batch deletion beyond the shared contract: paging across S3's pages
// (made small here), the requests DeleteObjects is sent as, and what a partial failure reports.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage/s3/client.ts';
import { Bucket } from '../../src/storage/s3/bucket.ts';
import { Layout } from '../../src/storage/s3/layout.ts';
import { listBlobs, listUploads } from '../../src/storage/s3/listing.ts';
import { S3BlobStore } from '../../src/storage/s3/s3-store.ts';
import { startFaultProxy, type FaultProxy } from './s3-fault-proxy.ts';
import { startS3, uniqueBucket, type S3Server } from '../support/s3.ts';

let s3: S3Server;
let bucketName: string;
let proxy: FaultProxy;
const clients: S3Client[] = [];

before(async () => {
  s3 = await startS3({ partMinSize: 1024 });
  bucketName = uniqueBucket();
  await s3.createBucket(bucketName);
  proxy = await startFaultProxy(s3.endpoint);
});
after(async () => {
  for (const c of clients) c.destroy();
  await proxy?.close();
  await s3?.stop();
});

/** A store, and the bucket beneath it, under a fresh prefix; requests go through the proxy. */
function fresh(): { store: S3BlobStore; bucket: Bucket; layout: Layout; prefix: string } {
  const client = createS3Client(
    { endpoint: proxy.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, maxAttempts: 2 },
    { baseMs: 1, throttledMs: 2, maxMs: 20 },
  );
  clients.push(client);
  const prefix = `${randomBytes(4).toString('hex')}/`;
  return { store: new S3BlobStore({ client, bucket: bucketName, prefix, partSize: 256 * 1024 }), bucket: new Bucket(client, bucketName), layout: new Layout(prefix), prefix };
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const randomDigest = () => `sha256:${randomBytes(32).toString('hex')}`;
const byFolder = (a: string, b: string) => (`${a}/` < `${b}/` ? -1 : 1);

test('s3 listings page correctly when their results span many S3 pages', async () => {
  const { store, bucket, layout } = fresh();
  // Uploads of several objects each (a state, tail segments), some with a multipart upload too, and ids with only one.
  const withObjects = Array.from({ length: 5 }, () => randomBytes(16).toString('base64url'));
  for (const [i, id] of withObjects.entries()) {
    await store.createUpload(id);
    let size = 0;
    for (let j = 0; j < i % 3; j++) size = await store.appendUpload(id, size, Readable.from([randomBytes(100)]));
    if (i === 2) await bucket.createMultipart(layout.data(id));
  }
  const onlyMultipart = Array.from({ length: 4 }, () => randomBytes(16).toString('base64url'));
  for (const id of onlyMultipart) await bucket.createMultipart(layout.data(id));
  const ids = [...withObjects, ...onlyMultipart].sort(byFolder);

  const whole = await listUploads(bucket, layout, undefined, 100);
  assert.deepEqual(whole.map((u) => u.id), ids);
  for (const pageSize of [1, 2, 3]) {
    const mark = proxy.seen.length;
    for (const limit of [1, 2, 4, 9, 10]) {
      const got: string[] = [];
      let from: string | undefined;
      for (let round = 0; round < 20; round++) {
        const page = await listUploads(bucket, layout, from, limit, { pageSize });
        got.push(...page.map((u) => u.id));
        if (page.length < limit) break;
        from = page.at(-1)!.id;
      }
      assert.deepEqual(got, ids, `uploads in pages of ${limit}, ${pageSize} keys per S3 page`);
    }
    const listings = proxy.seen.slice(mark).filter((r) => r.op === 'ListObjectsV2');
    assert.ok(listings.some((r) => r.query.includes('continuation-token')), 'S3 pages were followed');
  }
  // The time of an id with objects and a multipart upload is its newest object's, not moto's fixed Initiated.
  const both = whole.find((u) => u.id === withObjects[2])!;
  assert.ok(both.modifiedAt > Date.now() - 60_000, 'the newest of what the id holds');

  const blobs: string[] = [];
  for (let i = 0; i < 11; i++) {
    const data = randomBytes(20);
    await store.putSmall(sha256(data), data);
    blobs.push(sha256(data));
  }
  await bucket.put(`${layout.blobs}sha256/ab/not-a-blob`, 'x');
  blobs.sort();
  for (const pageSize of [1, 2, 5]) {
    for (const limit of [1, 3, 11, 12]) {
      const got: string[] = [];
      let from: string | undefined;
      for (let round = 0; round < 20; round++) {
        const page = await listBlobs(bucket, layout, from, limit, { pageSize });
        got.push(...page.map((b) => b.digest));
        if (page.length < limit) break;
        from = page.at(-1)!.digest;
      }
      assert.deepEqual(got, blobs, `blobs in pages of ${limit}, ${pageSize} keys per S3 page`);
    }
  }
  // Paging starts where it left off: one listing from the key of `after`.
  const mark = proxy.seen.length;
  await store.listBlobs(blobs[5], 3);
  const sent = proxy.seen.slice(mark);
  // A second page only when the stray object fell among the first three keys.
  assert.ok(sent.length <= 2 && sent.every((r) => r.op === 'ListObjectsV2'), sent.map((r) => r.op).join());
  assert.ok(new URLSearchParams(sent[0]!.query).get('start-after')?.endsWith(blobs[5]!.slice(7)), sent[0]!.query);
});

test('s3 deleteBlobs: Quiet DeleteObjects of at most 1,000 keys, up to 4 at once; keys S3 refuses make it reject with their number only', async () => {
  const { store, prefix } = fresh();
  const kept = randomBytes(30);
  await store.putSmall(sha256(kept), kept);
  // Deleting keys that are not there costs S3 the same requests: nothing needs writing first.
  const digests = Array.from({ length: 4500 }, randomDigest);
  const mark = proxy.seen.length;
  await store.deleteBlobs(digests);
  const calls = proxy.seen.slice(mark).filter((r) => r.op === 'DeleteObjects');
  assert.equal(calls.length, 5);
  const counts = calls.map((r) => [...r.body!.matchAll(/<Key>/g)].length).sort((a, b) => b - a);
  assert.deepEqual(counts, [1000, 1000, 1000, 1000, 500]);
  assert.ok(calls.every((r) => r.body!.includes('<Quiet>true</Quiet>') && r.body!.includes(`<Key>${prefix}blobs/sha256/`)));
  const peak = proxy.peak.DeleteObjects ?? 0;
  assert.ok(peak >= 2 && peak <= 4, `requests ran in parallel, at most 4 at once (${peak})`);
  assert.equal(await store.stat(sha256(kept)), kept.length);

  proxy.decide = (r) => (r.op === 'DeleteObjects' ? { deleteErrors: 3 } : 'pass');
  try {
    const err = await store.deleteBlobs([...digests.slice(0, 1500), sha256(kept)]).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    assert.ok(err, 'refused keys make it reject');
    assert.match(err.message, /could not delete 6 of 1501 object\(s\): AccessDenied/);
    assert.ok(!err.message.includes('blobs/') && !err.message.includes('Access Denied for'), `neither keys nor S3's messages: ${err.message}`);
  } finally {
    proxy.decide = () => 'pass';
  }
  assert.equal(await store.stat(sha256(kept)), undefined, 'what S3 did delete is gone');
});
