// storage.redirect: blob GETs answered with a redirect to a pre-signed S3 URL (on a real S3-protocol
// server), HEAD and manifests still answered by Berth, authorization still checked first.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { adminBasic } from '../support/api.ts';
import { expectError, pushBlob, randomBlob, uniqueName } from '../support/oci.ts';
import { sharedS3, uniqueBucket } from '../support/s3.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

describe('storage.redirect on S3', () => {
  let server: TestServer;
  before(async () => {
    const s3 = await sharedS3();
    const bucket = uniqueBucket();
    await s3.createBucket(bucket);
    // Metadata stays embedded: what is tested is the blob route and the store's signing.
    server = await startTestServer({
      database: {},
      storage: { redirect: true, s3: { endpoint: s3.endpoint, region: s3.region, bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true } },
    });
  });
  after(() => server?.close());

  test('GET is a 307 to a pre-signed URL that serves the same bytes, whole and by range; HEAD stays local', async () => {
    const name = uniqueName('redirect');
    const bytes = randomBlob(300_000);
    const digest = await pushBlob(server.url, name, bytes);
    const res = await fetch(`${server.url}/v2/${name}/blobs/${digest}`, { headers: { Authorization: adminBasic() }, redirect: 'manual' });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const location = res.headers.get('location');
    assert.ok(location && /X-Amz-Signature=/.test(location), 'a pre-signed URL');
    assert.ok(!location.includes(server.url), 'the URL names the S3 server, not Berth');
    const followed = Buffer.from(await (await fetch(location)).arrayBuffer());
    assert.equal(`sha256:${createHash('sha256').update(followed).digest('hex')}`, digest);
    const ranged = await fetch(location, { headers: { Range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), bytes.subarray(100, 200));

    const head = await fetch(`${server.url}/v2/${name}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: adminBasic() } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(bytes.length));
  });

  test('no redirect without access, for a blob the repository does not have, or for a malformed digest', async () => {
    const name = uniqueName('redirect');
    const digest = await pushBlob(server.url, name, randomBlob(1000));
    await expectError(await fetch(`${server.url}/v2/${name}/blobs/${digest}`, { redirect: 'manual' }), 401, 'UNAUTHORIZED');
    await expectError(await fetch(`${server.url}/v2/${uniqueName('other')}/blobs/${digest}`, { headers: { Authorization: adminBasic() }, redirect: 'manual' }), 404, 'BLOB_UNKNOWN');
    await expectError(await fetch(`${server.url}/v2/${name}/blobs/sha256:${'0'.repeat(64)}`, { headers: { Authorization: adminBasic() }, redirect: 'manual' }), 404, 'BLOB_UNKNOWN');
    const bad = await fetch(`${server.url}/v2/${name}/blobs/sha256:xyz`, { headers: { Authorization: adminBasic() }, redirect: 'manual' });
    assert.equal(bad.status >= 400 && bad.status < 500, true, `malformed digest: ${bad.status}`);
    assert.equal(bad.headers.get('location'), null);
  });

  test('storage.redirect without storage.s3 is refused at start, naming the field', async () => {
    await assert.rejects(startTestServer({ storage: { redirect: true } }), /storage.*redirect needs storage\.s3/);
  });
});
