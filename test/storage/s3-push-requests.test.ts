// How many S3 requests one small blob push costs, per protocol shape, through a real Berth server on
// moto behind the fault proxy (which names each request's S3 operation). On a real S3 each request
// is billed and rate-limited per prefix, and on moto the request rate is what bounds small pushes,
// so these counts are what the small-push figure of the benchmark measures. Upper bounds: a change
// that adds a request per push fails here.
//
// Counts for a 16 KiB blob (before the request-count work of issue 13 → now):
//   monolithic   POST ?digest= with the body                  11 → 1   PutObject
//   post-put     POST, then PUT ?digest= with the body        11 → 4   PutObject (state) | GetObject (state), PutObject (blob), DeleteObjects
//   chunked      POST, PATCH with the body, PUT ?digest=      12 → 7   PutObject (state) | GetObject, PutObject (tail), PutObject (state) | GetObject, CopyObject, DeleteObjects
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startFaultProxy, type FaultProxy, type S3Operation } from './s3-fault-proxy.ts';
import { startS3, uniqueBucket, type S3Server } from '../support/s3.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { createS3Client } from '../../src/storage/s3/client.ts';
import { Bucket } from '../../src/storage/s3/bucket.ts';

/** The three ways clients push a blob. */
export type PushShape = 'monolithic' | 'post-put' | 'chunked';

/**
 * Pushes `data` to `repository` of the Berth at `url` in `shape`; resolves to its digest once the
 * registry has answered 201. Throws on any other answer.
 */
export async function pushBlob(url: string, repository: string, data: Buffer, shape: PushShape): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const auth = { Authorization: adminBasic() };
  const send = { ...auth, 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) };
  const expect = async (res: Response, status: number, what: string) => {
    if (res.status !== status) throw new Error(`${what}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    return res;
  };
  const uploads = `${url}/v2/${repository}/blobs/uploads/`;
  const bytes = new Uint8Array(data);
  if (shape === 'monolithic') {
    await expect(await fetch(`${uploads}?digest=${digest}`, { method: 'POST', headers: send, body: bytes }), 201, 'POST ?digest=');
  } else {
    const started = await expect(await fetch(uploads, { method: 'POST', headers: auth }), 202, 'POST');
    let location = new URL(started.headers.get('location')!, url);
    if (shape === 'chunked') {
      const patched = await expect(await fetch(location, { method: 'PATCH', headers: { ...send, 'Content-Range': `0-${data.length - 1}` }, body: bytes }), 202, 'PATCH');
      location = new URL(patched.headers.get('location')!, url);
    }
    location.searchParams.set('digest', digest);
    const body = shape === 'post-put' ? bytes : undefined;
    await expect(await fetch(location, { method: 'PUT', headers: body ? send : { ...auth, 'Content-Length': '0' }, body }), 201, 'PUT ?digest=');
  }
  return digest;
}

/** At most this many S3 requests per 16 KiB push, by shape (see the counts at the top). */
const BOUNDS: Record<PushShape, number> = { monolithic: 1, 'post-put': 4, chunked: 7 };

let s3: S3Server;
let proxy: FaultProxy;
let server: TestServer;
let raw: Bucket;
const PREFIX = 'counted/';

before(async () => {
  s3 = await startS3();
  const bucket = uniqueBucket();
  await s3.createBucket(bucket);
  proxy = await startFaultProxy(s3.endpoint);
  raw = new Bucket(createS3Client({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, maxAttempts: 3 }), bucket);
  const s3Settings = { endpoint: proxy.endpoint, region: s3.region, bucket, prefix: PREFIX, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true };
  // Background jobs off: only the pushes' own requests reach S3 while they are counted.
  server = await startTestServer({ storage: { s3: s3Settings }, jobs: { concurrency: 0 } });
});
after(async () => {
  await server?.close();
  raw?.client.destroy();
  await proxy?.close();
  await s3?.stop();
});

for (const shape of ['monolithic', 'post-put', 'chunked'] as const) {
  test(`a 16 KiB blob pushed ${shape} costs at most ${BOUNDS[shape]} S3 requests, and leaves no upload behind`, async (t) => {
    // A warm-up push of the same shape first: the first request of a fresh server may look at more.
    await pushBlob(server.url, 'counted/warm', randomBytes(16 * 1024), shape);
    const mark = proxy.seen.length;
    const data = randomBytes(16 * 1024);
    const digest = await pushBlob(server.url, `counted/${shape}`, data, shape);
    const ops: S3Operation[] = proxy.seen.slice(mark).map((r) => r.op);
    t.diagnostic(`${ops.length} S3 requests: ${ops.join(', ')}`);
    assert.ok(ops.length <= BOUNDS[shape], `${ops.length} S3 requests: ${ops.join(', ')}`);
    const pulled = await fetch(`${server.url}/v2/counted/${shape}/blobs/${digest}`, { headers: { Authorization: adminBasic() } });
    assert.equal(pulled.status, 200);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(data), 'the blob reads back');
    assert.deepEqual(await raw.list(`${PREFIX}uploads/`), [], 'no object of an upload is left');
    assert.deepEqual(await raw.listMultipart(`${PREFIX}uploads/`), [], 'no multipart upload is left');
  });
}
