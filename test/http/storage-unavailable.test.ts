// An S3 that keeps throttling or failing after every retry: clients get 503 UNAVAILABLE with a
// Retry-After (never a 500), nothing stored is harmed, and everything works again once S3 recovers.
// The fault proxy sits between Berth and a real S3-protocol server (moto).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminBasic } from '../support/api.ts';
import { expectError, pushBlob, randomBlob, startUpload, uniqueName } from '../support/oci.ts';
import { sharedS3, uniqueBucket } from '../support/s3.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startFaultProxy, type FaultProxy } from '../storage/s3-fault-proxy.ts';

describe('object storage unavailable', () => {
  let server: TestServer;
  let proxy: FaultProxy;
  before(async () => {
    const s3 = await sharedS3();
    const bucket = uniqueBucket();
    await s3.createBucket(bucket);
    proxy = await startFaultProxy(s3.endpoint);
    server = await startTestServer({
      database: {},
      storage: { s3: { endpoint: proxy.endpoint, region: s3.region, bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, maxAttempts: 2 } },
    });
  });
  after(async () => {
    await server?.close();
    await proxy?.close();
  });

  test('reads and uploads get 503 UNAVAILABLE with Retry-After while S3 throttles; all works again after', async () => {
    const name = uniqueName('down');
    const bytes = randomBlob(50_000);
    const digest = await pushBlob(server.url, name, bytes);
    const uploadURL = await startUpload(server.url, name);

    proxy.decide = () => 'slowdown';
    const read = await fetch(`${server.url}/v2/${name}/blobs/${digest}`, { headers: { Authorization: adminBasic() } });
    const envelope = await expectError(read, 503, 'UNAVAILABLE');
    assert.equal(read.headers.get('retry-after'), '10');
    assert.doesNotMatch(JSON.stringify(envelope), /SlowDown|amazonaws|127\.0\.0\.1/, 'no storage internals in the answer');
    const patch = await fetch(uploadURL, { method: 'PATCH', headers: { Authorization: adminBasic(), 'Content-Type': 'application/octet-stream' }, body: randomBlob(1000) });
    await expectError(patch, 503, 'UNAVAILABLE');
    proxy.decide = () => 'internal';
    await expectError(await fetch(`${server.url}/v2/${name}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, { method: 'POST', headers: { Authorization: adminBasic() }, body: bytes }), 503, 'UNAVAILABLE');

    proxy.decide = () => 'pass';
    const again = await fetch(`${server.url}/v2/${name}/blobs/${digest}`, { headers: { Authorization: adminBasic() } });
    assert.equal(again.status, 200);
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), bytes);
    const status = await fetch(uploadURL, { headers: { Authorization: adminBasic() } });
    assert.equal(status.status, 204, 'the upload session survived');
    assert.equal(status.headers.get('range'), '0-0', 'and holds nothing from the refused PATCH (0-999 if it had kept it)');
  });
});
