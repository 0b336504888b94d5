import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { HeadObjectCommand, ListPartsCommand, UploadPartCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { configSchema } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/config/overrides.ts';
import { openBlobStore } from '../../src/storage/index.ts';
import { StorageError } from '../../src/storage/blob-store.ts';
import { createS3Client, type RetryTiming } from '../../src/storage/s3/client.ts';
import { Bucket } from '../../src/storage/s3/bucket.ts';
import { S3BlobStore, type S3StoreOptions } from '../../src/storage/s3/s3-store.ts';
import { blobStoreContract } from './contract.ts';
import { startFaultProxy, type FaultProxy, type SeenRequest } from './s3-fault-proxy.ts';
import { startS3, uniqueBucket, type S3Server } from '../support/s3.ts';
import { freePort } from '../support/system.ts';

/** Parts this small need moto's minimum lowered (S3_UPLOAD_PART_MIN_SIZE), as tests may. */
const PART = 256 * 1024;
const FAST_RETRIES: RetryTiming = { baseMs: 1, throttledMs: 2, maxMs: 20 };
let s3: S3Server;
let bucketName: string;
let raw: Bucket;
let proxy: FaultProxy;

before(async () => {
  s3 = await startS3({ partMinSize: 1024 });
  bucketName = uniqueBucket();
  await s3.createBucket(bucketName);
  raw = new Bucket(client(s3.endpoint, 3), bucketName);
  proxy = await startFaultProxy(s3.endpoint);
});
after(async () => {
  raw?.client.destroy();
  await proxy?.close();
  await s3?.stop();
});

function client(endpoint: string, maxAttempts: number, timing?: RetryTiming): S3Client {
  return createS3Client({ endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, maxAttempts }, timing);
}

interface Made {
  store: S3BlobStore;
  client: S3Client;
  prefix: string;
}

/** A store under a fresh prefix; `via: 'proxy'` sends its requests through the fault proxy. */
function makeStore(options: Partial<S3StoreOptions> & { via?: 'proxy'; maxAttempts?: number; prefix?: string } = {}): Made {
  const { via, maxAttempts = 3, ...rest } = options;
  const prefix = rest.prefix ?? `${randomBytes(4).toString('hex')}/`;
  const c = client(via === 'proxy' ? proxy.endpoint : s3.endpoint, maxAttempts, FAST_RETRIES);
  return { store: new S3BlobStore({ client: c, bucket: bucketName, partSize: PART, ...rest, prefix }), client: c, prefix };
}

blobStoreContract('s3', async () => {
  const { store, prefix } = makeStore();
  return {
    store,
    raw: {
      put: (path, data) => raw.put(`${prefix}${path}`, data),
      startMultipart: async (path) => void (await raw.createMultipart(`${prefix}${path}`)),
    },
    cleanup: () => store.close(),
  };
});

const digest = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const uploadId = () => randomBytes(16).toString('base64url');
const collect = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const blobKey = (prefix: string, d: string) => `${prefix}blobs/sha256/${d.slice(7, 9)}/${d.slice(7)}`;

/** Appends `pieces`, one append each, checking each new size; resolves to everything appended. */
async function appendAll(store: S3BlobStore, id: string, pieces: Buffer[], from = 0): Promise<Buffer> {
  let size = from;
  for (const piece of pieces) {
    size = await store.appendUpload(id, size, Readable.from([piece]));
    assert.equal(await store.uploadSize(id), size);
  }
  return Buffer.concat(pieces);
}

async function assertUploadGone(prefix: string, id: string): Promise<void> {
  assert.deepEqual(await raw.list(`${prefix}uploads/${id}/`), [], 'no object of the upload is left');
  assert.deepEqual(await raw.listMultipart(`${prefix}uploads/${id}/`), [], 'no multipart upload of it is left');
}

test('s3: appends of sizes around the part size (1 byte, part - 1, part + 1, exact parts) keep every byte', async () => {
  const { store, prefix } = makeStore();
  try {
    const id = uploadId();
    await store.createUpload(id);
    const sizes = [1, PART - 1, PART + 1, PART, 1, 2 * PART - 2, 3, PART - 1, 5 * PART + 7];
    const expected = await appendAll(store, id, sizes.map((n) => randomBytes(n)));
    assert.ok((await collect(await store.readUpload(id, PART - 3))).equals(expected.subarray(PART - 3)));
    const d = digest(expected);
    await store.commitUpload(id, d);
    assert.ok((await store.readAll(d)).equals(expected));
    const head = await raw.head(blobKey(prefix, d));
    assert.equal(head?.size, expected.length);
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

test('s3: an upload continues on another replica (a fresh driver, configured with another part size)', async () => {
  const a = makeStore();
  const b = makeStore({ prefix: a.prefix, partSize: 4 * PART });
  try {
    const id = uploadId();
    await a.store.createUpload(id);
    const one = await appendAll(a.store, id, [randomBytes(PART + PART / 2)]);
    assert.equal(await b.store.uploadSize(id), one.length, 'the other replica sees the size');
    const two = await appendAll(b.store, id, [randomBytes(2 * PART + 7), randomBytes(5)], one.length);
    // A part that a replica uploaded but died before recording: ignored, then overwritten.
    const state = JSON.parse((await raw.get(`${a.prefix}uploads/${id}/state`))!.toString('utf8')) as { parts: number; multipart: { uploadId: string } };
    await raw.client.send(new UploadPartCommand({ Bucket: bucketName, Key: `${a.prefix}uploads/${id}/data`, UploadId: state.multipart.uploadId, PartNumber: state.parts + 1, Body: randomBytes(PART) }));
    const three = await appendAll(a.store, id, [randomBytes(3 * PART)], one.length + two.length);
    const expected = Buffer.concat([one, two, three]);
    assert.ok((await collect(await b.store.readUpload(id))).equals(expected));
    await b.store.commitUpload(id, digest(expected));
    assert.ok((await a.store.readAll(digest(expected))).equals(expected));
    await assertUploadGone(a.prefix, id);
  } finally {
    await a.store.close();
    await b.store.close();
  }
});

test('s3: an upload of more than 1,000 parts completes, and is copied in parts beyond the CopyObject limit', async () => {
  const part = 1024;
  const { store, prefix } = makeStore({ partSize: part, partConcurrency: 4, copyObjectLimit: 64 * 1024, copyPartSize: 100 * 1024 });
  try {
    const id = uploadId();
    await store.createUpload(id);
    const data = randomBytes(1100 * part + 5);
    const chunks = [];
    for (let i = 0; i < data.length; i += 64 * 1024) chunks.push(data.subarray(i, i + 64 * 1024));
    assert.equal(await store.appendUpload(id, 0, Readable.from(chunks)), data.length);
    const state = JSON.parse((await raw.get(`${prefix}uploads/${id}/state`))!.toString('utf8')) as { multipart: { uploadId: string } };
    const listed = await raw.client.send(new ListPartsCommand({ Bucket: bucketName, Key: `${prefix}uploads/${id}/data`, UploadId: state.multipart.uploadId }));
    assert.equal(listed.IsTruncated, true, 'S3 lists the parts in more than one page');
    await store.commitUpload(id, digest(data));
    assert.ok((await store.readAll(digest(data))).equals(data));
    const etag = (await raw.client.send(new HeadObjectCommand({ Bucket: bucketName, Key: blobKey(prefix, digest(data)) }))).ETag;
    assert.match(etag ?? '', /-12"$/, 'the blob was assembled from 12 copied parts (100 KiB each)');
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

test('s3: committing a blob that exists drops the upload without writing the blob again', async () => {
  const { store, prefix } = makeStore({ via: 'proxy' });
  try {
    const data = randomBytes(3 * PART + 11);
    const d = digest(data);
    await store.putSmall(d, data);
    const id = uploadId();
    await store.createUpload(id);
    await appendAll(store, id, [data]);
    const mark = proxy.seen.length;
    await store.commitUpload(id, d);
    const writes = proxy.seen.slice(mark).filter((r) => r.path.endsWith(blobKey(prefix, d)) && r.op !== 'HeadObject');
    assert.deepEqual(writes, [], 'the commit only looked at the blob');
    assert.ok((await store.readAll(d)).equals(data));
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

test('s3: deleting an upload removes its parts, tail, state and any multipart upload or segment a dead replica left', async () => {
  const { store, prefix } = makeStore();
  try {
    const id = uploadId();
    await store.createUpload(id);
    await appendAll(store, id, [randomBytes(2 * PART + 3), randomBytes(9)]);
    await raw.client.send(new CreateMultipartUploadCommand({ Bucket: bucketName, Key: `${prefix}uploads/${id}/data` }));
    await raw.put(`${prefix}uploads/${id}/tail/${2 * PART + 12}-deadbeef0000`, randomBytes(5));
    await store.deleteUpload(id);
    assert.equal(await store.uploadSize(id), undefined);
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

/** The operations a store made through the proxy since `mark`, each with the key it named (below `prefix`). */
function opsSince(mark: number, prefix: string): string[] {
  return proxy.seen.slice(mark).map((r) => `${r.op} ${r.path.slice(`/${bucketName}/${prefix}`.length).replace(/^uploads\/[^/]+\//, '')}`);
}

test('s3: the end of an upload deletes exactly what its state names, without listing; superseded segments go as it runs', async () => {
  const { store, prefix } = makeStore({ via: 'proxy' });
  try {
    const id = uploadId();
    await store.createUpload(id);
    const mark = proxy.seen.length;
    // 100 small appends: the tail is merged every 32 segments, then cut into a part; every
    // superseded segment is named in the state, and deleted once 64 of them are.
    const pieces = Array.from({ length: 100 }, () => randomBytes(3000));
    pieces.push(randomBytes(PART + 17));
    const data = await appendAll(store, id, pieces);
    assert.ok(opsSince(mark, prefix).some((o) => o.startsWith('DeleteObjects')), 'superseded segments were deleted during the upload');
    const d = digest(data);
    assert.equal(await store.uploadSize(id), data.length);
    const commit = proxy.seen.length;
    await store.commitUpload(id, d, data.length);
    const ops = opsSince(commit, prefix);
    assert.ok(!ops.some((o) => /^(ListObjectsV2|ListMultipartUploads|GetObject state)/.test(o)), `the commit neither listed nor read the state again: ${ops.join(', ')}`);
    assert.ok((await store.readAll(d)).equals(data));
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

test('s3: an upload whose state does not name everything (an older version wrote it, or an append left a stray) is swept at its end', async () => {
  const { store, prefix } = makeStore({ via: 'proxy' });
  try {
    for (const rewrite of [(state: Record<string, unknown>) => void delete state.dropped, (state: Record<string, unknown>) => void (state.stray = true)]) {
      const id = uploadId();
      await store.createUpload(id);
      const data = await appendAll(store, id, [randomBytes(PART + 5), randomBytes(10)]);
      const key = `${prefix}uploads/${id}/state`;
      const state = JSON.parse((await raw.get(key))!.toString('utf8')) as Record<string, unknown>;
      rewrite(state);
      await raw.put(key, JSON.stringify(state));
      await raw.put(`${prefix}uploads/${id}/tail/0-0123456789ab`, randomBytes(7));
      const mark = proxy.seen.length;
      await store.commitUpload(id, digest(data));
      assert.ok(opsSince(mark, prefix).some((o) => o.startsWith('ListObjectsV2')), 'the commit listed the upload');
      assert.ok((await store.readAll(digest(data))).equals(data));
      await assertUploadGone(prefix, id);
    }
    // Without a sweep, a state that names everything is all that is deleted: no listing.
    const id = uploadId();
    await store.createUpload(id);
    await appendAll(store, id, [randomBytes(100)]);
    const mark = proxy.seen.length;
    await store.deleteUpload(id, { sweep: false });
    assert.deepEqual(opsSince(mark, prefix).map((o) => o.split(' ')[0]), ['DeleteObjects'], 'one request, the state as uploadSize just read it');
    await assertUploadGone(prefix, id);
  } finally {
    await store.close();
  }
});

test('s3: SDK default checksums are on, ranged reads are ranged GETs, and a broken response body is resumed', async () => {
  const { store, client: sdk } = makeStore({ via: 'proxy' });
  try {
    assert.equal(await sdk.config.requestChecksumCalculation(), 'WHEN_SUPPORTED');
    const mark = proxy.seen.length;
    const id = uploadId();
    await store.createUpload(id);
    const data = await appendAll(store, id, [randomBytes(4 * PART + 99)]);
    const d = digest(data);
    await store.commitUpload(id, d);
    const sent = proxy.seen.slice(mark).filter((r) => r.op === 'UploadPart' || r.op === 'PutObject');
    assert.ok(sent.length > 4 && sent.every((r) => typeof r.headers['x-amz-checksum-crc32'] === 'string'), 'every body went with its CRC32');

    const ranged = proxy.seen.length;
    assert.ok((await collect(await store.read(d, { start: PART - 1, end: 2 * PART }))).equals(data.subarray(PART - 1, 2 * PART + 1)));
    assert.deepEqual(proxy.seen.slice(ranged).map((r) => [r.op, r.headers.range]), [['GetObject', `bytes=${PART - 1}-${2 * PART}`]]);

    // The first two GETs of the blob are cut mid-body: the stream resumes where it broke.
    let cuts = 2;
    proxy.decide = (r) => (r.op === 'GetObject' && cuts-- > 0 ? { cutAfter: 200_000 } : 'pass');
    const received: Buffer[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _e, cb) => void (received.push(Buffer.from(chunk)), cb()) });
    await (await store.read(d)).sendTo(sink);
    assert.ok(Buffer.concat(received).equals(data), 'identical bytes after two resumptions');
    assert.equal(proxy.injected.cut >= 2, true);
  } finally {
    proxy.decide = () => 'pass';
    await store.close();
  }
});

test('s3: a throttled S3 (SlowDown, 500) slows appends, commits and reads down but fails none', async () => {
  // Each SDK call fails its first 0-3 attempts: far more throttled retries in all than the SDK's
  // standard retry quota (500 tokens, 5 per throttled retry) would allow.
  const failures = (r: SeenRequest) => createHash('sha256').update(r.invocation).digest()[0]! % 4;
  proxy.decide = (r) => (r.attempt <= failures(r) ? (r.attempt % 2 ? 'slowdown' : 'internal') : 'pass');
  const { store } = makeStore({ via: 'proxy', maxAttempts: 5 });
  const before = proxy.injected.slowdown + proxy.injected.internal;
  try {
    const id = uploadId();
    await store.createUpload(id);
    const big = await appendAll(store, id, [randomBytes(6 * PART + 13)]);
    const small = await appendAll(store, id, Array.from({ length: 40 }, () => randomBytes(100)), big.length);
    const expected = Buffer.concat([big, small]);
    assert.ok((await collect(await store.readUpload(id, 7))).equals(expected.subarray(7)));
    const d = digest(expected);
    await store.commitUpload(id, d);
    assert.ok((await store.readAll(d)).equals(expected));
    assert.ok((await collect(await store.read(d, { start: 10, end: PART }))).equals(expected.subarray(10, PART + 1)));
    const injected = proxy.injected.slowdown + proxy.injected.internal - before;
    assert.ok(injected > 150, `${injected} requests were answered SlowDown or 500`);
  } finally {
    proxy.decide = () => 'pass';
    await store.close();
  }
});

/** The driver's rejection once retries ran out: StorageError('unavailable') over the last S3 error. */
function unavailableFrom(err: Error, name: string): boolean {
  return err instanceof StorageError && err.kind === 'unavailable' && (err.cause as Error | undefined)?.name === name;
}

test('s3: when retries run out the call rejects cleanly; the upload stays as recorded and goes on once S3 recovers', async () => {
  const { store, prefix } = makeStore({ via: 'proxy', maxAttempts: 3 });
  try {
    const id = uploadId();
    await store.createUpload(id);
    const first = await appendAll(store, id, [randomBytes(PART + 5)]);
    proxy.decide = (r) => (r.op === 'UploadPart' ? 'slowdown' : 'pass');
    await assert.rejects(store.appendUpload(id, first.length, Readable.from([randomBytes(3 * PART)])), (err: Error) => unavailableFrom(err, 'SlowDown'));
    assert.equal(await store.uploadSize(id), first.length, 'nothing that failed is counted');
    proxy.decide = () => 'pass';
    const second = await appendAll(store, id, [randomBytes(3 * PART)], first.length);
    const expected = Buffer.concat([first, second]);
    const d = digest(expected);

    proxy.decide = (r) => (r.op === 'CompleteMultipartUpload' ? 'internal' : 'pass');
    await assert.rejects(store.commitUpload(id, d), (err: Error) => unavailableFrom(err, 'InternalError'));
    assert.equal(await store.stat(d), undefined, 'no blob, not even a partial one');
    assert.equal(await raw.head(blobKey(prefix, d)), undefined);
    proxy.decide = () => 'pass';
    await store.commitUpload(id, d);
    assert.ok((await store.readAll(d)).equals(expected));

    proxy.decide = (r) => (r.op === 'GetObject' ? 'internal' : 'pass');
    await assert.rejects(store.read(d), (err: Error) => unavailableFrom(err, 'InternalError'));
    await assert.rejects(store.readAll(d), (err: Error) => unavailableFrom(err, 'InternalError'));
  } finally {
    proxy.decide = () => 'pass';
    await store.close();
  }
});

test('s3: a pre-signed URL serves the blob, whole and by range, to a plain HTTP client', async () => {
  const { store } = makeStore();
  try {
    const data = randomBytes(70_000);
    const d = digest(data);
    await store.putSmall(d, data);
    const url = new URL(await store.signedURL(d, 600));
    assert.equal(url.searchParams.get('X-Amz-Expires'), '600');
    assert.equal(url.searchParams.get('X-Amz-SignedHeaders'), 'host', 'a client sends no header of ours');
    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(data));
    const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200)));
    await assert.rejects(store.signedURL(d, 0), /1 to 604800 seconds/);
    await assert.rejects(store.signedURL('sha256:nope', 60), /invalid digest/);
  } finally {
    await store.close();
  }
});

test('s3: openBlobStore checks the bucket at start and names the setting to fix, never the secret', async () => {
  const secret = 'very-secret-key-that-must-not-leak';
  const config = (s3Settings: Record<string, unknown>) =>
    configSchema.parse({ dataDir: '/nonexistent', storage: { s3: { endpoint: s3.endpoint, region: s3.region, bucket: bucketName, accessKeyId: 'AKIAEXAMPLE', secretAccessKey: secret, forcePathStyle: true, ...s3Settings } } });
  const refused = async (settings: Record<string, unknown>, field: RegExp) => {
    const err = await openBlobStore(config(settings)).then(
      () => assert.fail('expected a ConfigError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, field);
    assert.ok(!err.message.includes(secret), err.message);
  };
  await refused({ bucket: 'no-such-bucket-here' }, /^storage\.s3\.bucket: there is no bucket no-such-bucket-here/);
  await refused({ endpoint: `http://127.0.0.1:${await freePort()}` }, /^storage\.s3\.endpoint: cannot reach .*ECONNREFUSED/);
  proxy.decide = () => 'denied';
  try {
    await refused({ endpoint: proxy.endpoint }, /^storage\.s3\.accessKeyId and storage\.s3\.secretAccessKey: bucket .* refused them \(InvalidAccessKeyId\)/);
  } finally {
    proxy.decide = () => 'pass';
  }
  const store = await openBlobStore(config({ prefix: 'opened/' }));
  try {
    assert.ok(store instanceof S3BlobStore);
    const data = randomBytes(10);
    await store.putSmall(digest(data), data);
    assert.ok((await raw.get(`opened/blobs/sha256/${digest(data).slice(7, 9)}/${digest(data).slice(7)}`))?.equals(data));
  } finally {
    await store.close();
  }
});
