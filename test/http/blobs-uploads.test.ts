// Blob uploads (monolithic, chunked, streamed), upload sessions, blob GET/HEAD/DELETE, ranges,
// repository isolation, cross-repository mounts and deduplication.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { storedUploads, uploadSessionIds } from '../support/backend.ts';
import { startTestServer, adminBasic, adminToken, type TestServer } from '../support/server.ts';
import {
  digestOf,
  expectError,
  pushBlob,
  pushBlobChunked,
  randomBlob,
  rawRequest,
  resolveLocation,
  startUpload,
  uniqueName,
  withDigest,
  RawConnection,
  type Bytes,
} from '../support/oci.ts';

const AUTH = { Authorization: adminBasic() };
const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('blobs and uploads', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  async function head(name: string, digest: string): Promise<Response> {
    const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
    await res.arrayBuffer();
    return res;
  }

  async function getBlob(name: string, digest: string, headers: Record<string, string> = {}): Promise<{ res: Response; body: Buffer }> {
    const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: { ...AUTH, ...headers } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  }

  async function uploadStatus(location: string): Promise<Response> {
    const res = await fetch(location, { headers: AUTH });
    await res.arrayBuffer();
    return res;
  }

  async function patch(location: string, body: Bytes, contentRange?: string): Promise<Response> {
    return fetch(location, {
      method: 'PATCH',
      headers: { ...AUTH, 'Content-Type': 'application/octet-stream', ...(contentRange ? { 'Content-Range': contentRange } : {}) },
      body,
    });
  }

  test('monolithic POST ?digest=: 201 with a relative Location and Docker-Content-Digest; the blob is readable', async () => {
    const name = uniqueName('mono');
    const blob = randomBlob(1000);
    const digest = digestOf(blob);
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { ...AUTH, 'Content-Type': 'application/octet-stream' },
      body: blob,
    });
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), `/v2/${name}/blobs/${digest}`);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const got = await getBlob(name, digest);
    assert.equal(got.res.status, 200);
    assert.deepEqual(got.body, blob);
    // The Location resolves to the blob.
    const viaLocation = await fetch(resolveLocation(url, res.headers.get('location')), { headers: AUTH });
    assert.deepEqual(Buffer.from(await viaLocation.arrayBuffer()), blob);
  });

  test('monolithic POST with a digest that does not match: 400 DIGEST_INVALID and nothing becomes visible', async () => {
    const name = uniqueName('mono-bad');
    const blob = randomBlob(500);
    const claimed = digestOf(randomBlob(500));
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${claimed}`, { method: 'POST', headers: AUTH, body: blob });
    await expectError(res, 400, 'DIGEST_INVALID');
    assert.equal((await head(name, claimed)).status, 404);
    assert.equal((await head(name, digestOf(blob))).status, 404);
  });

  test('malformed digests: 400 DIGEST_INVALID on monolithic push, upload completion and blob GET', async () => {
    const name = uniqueName('malformed');
    const blob = randomBlob(16);
    const hex = digestOf(blob).slice('sha256:'.length);
    const bad = [
      'sha256:xyz',
      `md5:${'a'.repeat(32)}`,
      `sha256:${hex.slice(0, 63)}`,
      `sha256:${hex}0`,
      `sha256:${hex.toUpperCase()}`,
      'sha256:',
      hex,
      `SHA256:${hex}`,
      `sha512:${hex}`,
    ];
    for (const digest of bad) {
      const mono = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, { method: 'POST', headers: AUTH, body: blob });
      await expectError(mono, 400, 'DIGEST_INVALID');
      const location = await startUpload(url, name);
      const put = await fetch(withDigest(location, digest), { method: 'PUT', headers: AUTH, body: blob });
      await expectError(put, 400, 'DIGEST_INVALID');
      const get = await fetch(`${url}/v2/${name}/blobs/${encodeURIComponent(digest)}`, { headers: AUTH });
      await expectError(get, 400, 'DIGEST_INVALID');
    }
    assert.equal((await head(name, digestOf(blob))).status, 404, 'none of the attempts stored the blob');
  });

  test('sha512 digests work for monolithic and chunked uploads', async () => {
    const name = uniqueName('sha512');
    const mono = randomBlob(3000);
    const monoDigest = await pushBlob(url, name, mono, { algorithm: 'sha512' });
    assert.match(monoDigest, /^sha512:[0-9a-f]{128}$/);
    const chunked = randomBlob(3000);
    const chunkedDigest = await pushBlobChunked(url, name, chunked, 1024, { algorithm: 'sha512' });
    for (const [digest, bytes] of [[monoDigest, mono], [chunkedDigest, chunked]] as const) {
      const got = await getBlob(name, digest);
      assert.equal(got.res.status, 200);
      assert.equal(got.res.headers.get('docker-content-digest'), digest);
      assert.deepEqual(got.body, bytes);
    }
    // A sha512 digest that does not match is refused like a sha256 one.
    const wrong = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(randomBlob(10), 'sha512')}`, { method: 'POST', headers: AUTH, body: randomBlob(10) });
    await expectError(wrong, 400, 'DIGEST_INVALID');
  });

  test('POST without digest opens a session: 202, relative Location, Range 0-0, Docker-Upload-UUID', async () => {
    const name = uniqueName('session/start');
    const res = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: 'POST', headers: AUTH });
    assert.equal(res.status, 202);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
    const location = res.headers.get('location') ?? '';
    const m = new RegExp(`^/v2/${name}/blobs/uploads/([A-Za-z0-9_-]+)$`).exec(location);
    assert.ok(m, `relative upload Location: ${location}`);
    assert.equal(res.headers.get('range'), '0-0');
    assert.equal(res.headers.get('docker-upload-uuid'), m[1]);
    // Without the trailing slash too.
    const noSlash = await fetch(`${url}/v2/${name}/blobs/uploads`, { method: 'POST', headers: AUTH });
    assert.equal(noSlash.status, 202);
    assert.notEqual(noSlash.headers.get('docker-upload-uuid'), m[1], 'each POST opens its own session');
  });

  test('chunked upload: PATCH chunks with Content-Range in order, status GET, PUT with the digest', async () => {
    const name = uniqueName('chunked');
    const blob = randomBlob(10_000);
    const location = await startUpload(url, name);
    const first = await patch(location, blob.subarray(0, 4000), '0-3999');
    assert.equal(first.status, 202, await first.text());
    assert.equal(first.headers.get('range'), '0-3999');
    assert.ok(first.headers.get('docker-upload-uuid'));
    const next = resolveLocation(url, first.headers.get('location'));

    const status = await uploadStatus(next);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-3999');
    assert.equal(resolveLocation(url, status.headers.get('location')), next);

    const second = await patch(next, blob.subarray(4000), '4000-9999');
    assert.equal(second.status, 202, await second.text());
    assert.equal(second.headers.get('range'), '0-9999');

    const put = await fetch(withDigest(resolveLocation(url, second.headers.get('location')), digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('location'), `/v2/${name}/blobs/${digestOf(blob)}`);
    assert.equal(put.headers.get('docker-content-digest'), digestOf(blob));
    assert.deepEqual((await getBlob(name, digestOf(blob))).body, blob);
  });

  test('Content-Range in the "bytes a-b/total" forms is accepted', async () => {
    const name = uniqueName('range-forms');
    const blob = randomBlob(30);
    const location = await startUpload(url, name);
    assert.equal((await patch(location, blob.subarray(0, 10), 'bytes 0-9/30')).status, 202);
    assert.equal((await patch(location, blob.subarray(10, 20), '10-19/*')).status, 202);
    assert.equal((await patch(location, blob.subarray(20), 'bytes=20-29')).status, 202);
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201);
  });

  test('out-of-order and overlapping chunks: 416 with Range; the upload is intact and can continue', async () => {
    const name = uniqueName('ooo');
    const blob = randomBlob(3000);
    const location = await startUpload(url, name);
    const ok = await patch(location, blob.subarray(0, 1000), '0-999');
    assert.equal(ok.status, 202);
    await ok.arrayBuffer();

    const cases: [Buffer<ArrayBuffer>, string][] = [
      [blob.subarray(2000, 3000), '2000-2999'], // gap
      [blob.subarray(500, 1500), '500-1499'], // overlap
      [blob.subarray(0, 1000), '0-999'], // replay of the first chunk
      [blob.subarray(1000, 1010), '1009-1000'], // end before start
      [blob.subarray(1000, 1010), 'garbage'], // malformed
    ];
    for (const [body, range] of cases) {
      const res = await patch(location, body, range);
      assert.equal(res.headers.get('range'), '0-999', `Range after refused ${range}`);
      await expectError(res, 416, 'RANGE_INVALID');
    }
    const status = await uploadStatus(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-999', 'refused chunks wrote nothing');

    const rest = await patch(location, blob.subarray(1000), '1000-2999');
    assert.equal(rest.status, 202, await rest.text());
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.deepEqual((await getBlob(name, digestOf(blob))).body, blob);
  });

  test('a chunk whose Content-Length disagrees with its Content-Range: 416, nothing written', async () => {
    const name = uniqueName('cl-mismatch');
    const location = await startUpload(url, name);
    const res = await rawRequest(url, {
      method: 'PATCH',
      path: new URL(location).pathname,
      headers: { ...AUTH, 'Content-Range': '0-9', 'Content-Length': '5', 'Content-Type': 'application/octet-stream' },
      body: randomBlob(5),
    });
    assert.equal(res.status, 416, res.text);
    assert.equal(res.headers['range'], '0-0');
    const status = await uploadStatus(location);
    assert.equal(status.headers.get('range'), '0-0');
    const put = await fetch(withDigest(location, EMPTY_SHA256), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, 'the session still holds zero bytes');
  });

  test('PATCH without Content-Range (streamed chunks) works, including chunked transfer encoding', async () => {
    const name = uniqueName('stream');
    const blob = randomBlob(200_000);
    const location = await startUpload(url, name);
    const a = await patch(location, blob.subarray(0, 50_000));
    assert.equal(a.status, 202, await a.text());
    assert.equal(a.headers.get('range'), '0-49999');
    // A body of unknown length (Transfer-Encoding: chunked), in several pieces.
    const rest = blob.subarray(50_000);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < rest.length; i += 30_000) controller.enqueue(rest.subarray(i, i + 30_000));
        controller.close();
      },
    });
    const b = await fetch(location, { method: 'PATCH', headers: { ...AUTH, 'Content-Type': 'application/octet-stream' }, body: stream, duplex: 'half' } as RequestInit);
    assert.equal(b.status, 202, await b.text());
    assert.equal(b.headers.get('range'), `0-${blob.length - 1}`);
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.deepEqual((await getBlob(name, digestOf(blob))).body, blob);
  });

  test('a multi-megabyte blob in 1 MiB chunks round-trips', async () => {
    const name = uniqueName('big');
    const blob = randomBlob(5 * 1024 * 1024 + 123);
    const digest = await pushBlobChunked(url, name, blob, 1024 * 1024);
    const got = await getBlob(name, digest);
    assert.equal(got.res.headers.get('content-length'), String(blob.length));
    assert.ok(got.body.equals(blob));
  });

  test('a client that disconnects mid-way through a monolithic push leaves no upload behind', async () => {
    const name = uniqueName('abort-mono');
    // No upload behind: no session in the database, no upload bytes in storage (a file, or objects in the bucket).
    const [sessionsBefore, storedBefore] = await Promise.all([uploadSessionIds(server.dataDir), storedUploads(server.dataDir)]);
    const newSince = async () => ({
      sessions: (await uploadSessionIds(server.dataDir)).filter((id) => !sessionsBefore.includes(id)),
      stored: (await storedUploads(server.dataDir)).filter((f) => !storedBefore.includes(f)),
    });
    // Above the 1 MiB up to which a whole blob is read into memory first: it streams through a session.
    const blob = randomBlob(2_000_000);
    const conn = await RawConnection.open(url);
    conn.write(`POST /v2/${name}/blobs/uploads/?digest=${digestOf(blob)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Length: ${blob.length}\r\n\r\n`);
    conn.write(blob.subarray(0, 300_000));
    let during = await newSince();
    for (let i = 0; i < 40 && (during.sessions.length === 0 || during.stored.length === 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
      during = await newSince();
    }
    assert.equal(during.sessions.length, 1, 'the push has a session');
    assert.equal(during.stored.length, 1, 'the push is being written to an upload');
    conn.close();
    let left = during;
    for (let i = 0; i < 80 && (left.sessions.length > 0 || left.stored.length > 0); i++) {
      await new Promise((r) => setTimeout(r, 25));
      left = await newSince();
    }
    assert.deepEqual(left, { sessions: [], stored: [] }, 'the partial upload was removed');
    assert.equal((await head(name, digestOf(blob))).status, 404);
  });

  test('a PATCH cut off mid-body keeps what arrived; the upload resumes from the reported Range', async () => {
    const name = uniqueName('abort-patch');
    const blob = randomBlob(1_000_000);
    const location = await startUpload(url, name);
    const conn = await RawConnection.open(url);
    conn.write(`PATCH ${new URL(location).pathname} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Length: ${blob.length}\r\n\r\n`);
    conn.write(blob.subarray(0, 300_000));
    await new Promise((r) => setTimeout(r, 200));
    conn.close();
    let range = '';
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const status = await uploadStatus(location);
      assert.equal(status.status, 204);
      range = status.headers.get('range') ?? '';
      if (range === '0-299999') break;
    }
    assert.equal(range, '0-299999', 'every byte that arrived was kept');
    const size = Number(range.split('-')[1]) + 1;
    const rest = await patch(location, blob.subarray(size), `${size}-${blob.length - 1}`);
    assert.equal(rest.status, 202, await rest.text());
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.ok((await getBlob(name, digestOf(blob))).body.equals(blob));
  });

  test('PUT carrying the final chunk completes the upload', async () => {
    const name = uniqueName('final-chunk');
    const blob = randomBlob(2048);
    const location = await startUpload(url, name);
    const first = await patch(location, blob.subarray(0, 1024), '0-1023');
    assert.equal(first.status, 202);
    const put = await fetch(withDigest(location, digestOf(blob)), {
      method: 'PUT',
      headers: { ...AUTH, 'Content-Type': 'application/octet-stream', 'Content-Range': '1024-2047' },
      body: blob.subarray(1024),
    });
    assert.equal(put.status, 201, await put.text());
    assert.deepEqual((await getBlob(name, digestOf(blob))).body, blob);
    // POST then a single PUT with the whole body (no PATCH).
    const whole = randomBlob(777);
    const location2 = await startUpload(url, name);
    const put2 = await fetch(withDigest(location2, digestOf(whole)), { method: 'PUT', headers: { ...AUTH, 'Content-Type': 'application/octet-stream' }, body: whole });
    assert.equal(put2.status, 201, await put2.text());
    assert.deepEqual((await getBlob(name, digestOf(whole))).body, whole);
  });

  test('PUT without a digest: 400 DIGEST_INVALID; the session survives and can be completed', async () => {
    const name = uniqueName('no-digest');
    const blob = randomBlob(100);
    const location = await startUpload(url, name);
    assert.equal((await patch(location, blob, '0-99')).status, 202);
    const put = await fetch(location, { method: 'PUT', headers: AUTH });
    await expectError(put, 400, 'DIGEST_INVALID');
    const status = await uploadStatus(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-99');
    const ok = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(ok.status, 201);
  });

  test('completing with the wrong digest: 400 DIGEST_INVALID; no blob under either digest', async () => {
    const name = uniqueName('wrong-final');
    const blob = randomBlob(100);
    const claimed = digestOf(randomBlob(100));
    const location = await startUpload(url, name);
    assert.equal((await patch(location, blob)).status, 202);
    const put = await fetch(withDigest(location, claimed), { method: 'PUT', headers: AUTH });
    await expectError(put, 400, 'DIGEST_INVALID');
    assert.equal((await head(name, claimed)).status, 404);
    assert.equal((await head(name, digestOf(blob))).status, 404);
  });

  test('a completed upload session is gone: 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const name = uniqueName('done');
    const blob = randomBlob(10);
    const location = await startUpload(url, name);
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH, body: blob });
    assert.equal(put.status, 201);
    await expectError(await fetch(location, { headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(location, blob), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('DELETE an upload: 204, then every use of it is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const name = uniqueName('cancel');
    const location = await startUpload(url, name);
    assert.equal((await patch(location, randomBlob(50))).status, 202);
    const del = await fetch(location, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 204);
    await del.arrayBuffer();
    await expectError(await fetch(location, { headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(location, randomBlob(5)), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(withDigest(location, EMPTY_SHA256), { method: 'PUT', headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(location, { method: 'DELETE', headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  test('unknown upload ids: 404 BLOB_UPLOAD_UNKNOWN for every method, never 500', async () => {
    const name = uniqueName('unknown-upload');
    const ids = ['AAAAAAAAAAAAAAAAAAAAAAAA', 'x', 'a'.repeat(300), '..%2F..%2F..%2Fetc%2Fpasswd', 'has.dot', 'sha256:abc'];
    for (const id of ids) {
      const base = `${url}/v2/${name}/blobs/uploads/${id}`;
      await expectError(await fetch(base, { headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await fetch(base, { method: 'PATCH', headers: AUTH, body: 'abc' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await fetch(`${base}?digest=${EMPTY_SHA256}`, { method: 'PUT', headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await fetch(base, { method: 'DELETE', headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    }
    // Ids that decode to dot segments (fetch would normalise these away, so send them raw).
    for (const id of ['%2e%2e', '..%2f..%2fkeys%2ftoken-signing.pem', '%2e']) {
      for (const method of ['GET', 'PATCH', 'DELETE']) {
        const res = await rawRequest(url, { method, path: `/v2/${name}/blobs/uploads/${id}`, headers: AUTH });
        assert.equal(res.status, 404, `${method} ${id}: ${res.text}`);
        assert.equal(JSON.parse(res.text).errors[0].code, 'BLOB_UPLOAD_UNKNOWN');
      }
    }
  });

  test("an upload session of repository A is unknown under repository B", async () => {
    const a = uniqueName('owner-a');
    const b = uniqueName('owner-b');
    const blob = randomBlob(64);
    const location = await startUpload(url, a);
    const id = new URL(location).pathname.split('/').pop()!;
    const foreign = `${url}/v2/${b}/blobs/uploads/${id}`;
    await expectError(await fetch(foreign, { headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await patch(foreign, blob), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(`${foreign}?digest=${digestOf(blob)}`, { method: 'PUT', headers: AUTH, body: blob }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectError(await fetch(foreign, { method: 'DELETE', headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await head(b, digestOf(blob))).status, 404);
    // The session in A is untouched.
    const status = await uploadStatus(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-0');
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH, body: blob });
    assert.equal(put.status, 201);
  });

  test('blob GET and HEAD: status, Content-Length, Content-Type, Docker-Content-Digest, exact bytes', async () => {
    const name = uniqueName('get');
    const blob = randomBlob(4321);
    const digest = await pushBlob(url, name, blob);
    const got = await getBlob(name, digest);
    assert.equal(got.res.status, 200);
    assert.equal(got.res.headers.get('content-length'), '4321');
    assert.equal(got.res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(got.res.headers.get('docker-content-digest'), digest);
    assert.equal(got.res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(got.body, blob);
    const h = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('content-length'), '4321');
    assert.equal(h.headers.get('docker-content-digest'), digest);
    assert.equal((await h.arrayBuffer()).byteLength, 0);
  });

  test('unknown blobs: 404 BLOB_UNKNOWN (GET), 404 with no body (HEAD), also in unknown repositories', async () => {
    const name = uniqueName('missing');
    await pushBlob(url, name, randomBlob(10));
    for (const repo of [name, uniqueName('never-existed')]) {
      const digest = digestOf(randomBlob(10));
      await expectError(await fetch(`${url}/v2/${repo}/blobs/${digest}`, { headers: AUTH }), 404, 'BLOB_UNKNOWN');
      const h = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
      assert.equal(h.status, 404);
      assert.equal((await h.arrayBuffer()).byteLength, 0);
    }
  });

  test('Range requests: 206 with Content-Range and the right slice', async () => {
    const name = uniqueName('ranges');
    const blob = randomBlob(100);
    const digest = await pushBlob(url, name, blob);
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=10-', 10, 99],
      ['bytes=-5', 95, 99],
      ['bytes=50-50', 50, 50],
      ['bytes=90-200', 90, 99],
      ['bytes=-500', 0, 99],
    ];
    for (const [range, start, end] of cases) {
      const got = await getBlob(name, digest, { Range: range });
      assert.equal(got.res.status, 206, range);
      assert.equal(got.res.headers.get('content-range'), `bytes ${start}-${end}/100`, range);
      assert.equal(got.res.headers.get('content-length'), String(end - start + 1), range);
      assert.deepEqual(got.body, blob.subarray(start, end + 1), range);
    }
    const got = await getBlob(name, digest);
    assert.equal(got.res.headers.get('accept-ranges'), 'bytes');
  });

  test('unsatisfiable or malformed ranges: 416 with Content-Range bytes */size', async () => {
    const name = uniqueName('bad-ranges');
    const blob = randomBlob(100);
    const digest = await pushBlob(url, name, blob);
    for (const range of ['bytes=100-', 'bytes=200-300', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=a-b', 'items=0-9', 'bytes=0-1,5-6', 'bytes 0-9']) {
      const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: { ...AUTH, Range: range } });
      assert.equal(res.headers.get('content-range'), 'bytes */100', range);
      await expectError(res, 416, 'RANGE_INVALID');
    }
  });

  test('a blob pushed to repository A is not visible in repository B', async () => {
    const a = uniqueName('iso-a');
    const b = uniqueName('iso-b');
    const blob = randomBlob(256);
    const digest = await pushBlob(url, a, blob);
    await pushBlob(url, b, randomBlob(8)); // B exists, just without this blob
    await expectError(await fetch(`${url}/v2/${b}/blobs/${digest}`, { headers: AUTH }), 404, 'BLOB_UNKNOWN');
    assert.equal((await head(b, digest)).status, 404);
    await expectError(await fetch(`${url}/v2/${b}/blobs/${digest}`, { method: 'DELETE', headers: AUTH }), 404, 'BLOB_UNKNOWN');
    assert.equal((await head(a, digest)).status, 200, 'a refused delete in B leaves A alone');
  });

  test('cross-repository mount: 201 with Location and digest, then the blob is visible in the target', async () => {
    const from = uniqueName('mount-src');
    const to = uniqueName('mount-dst');
    const blob = randomBlob(512);
    const digest = await pushBlob(url, from, blob);
    const res = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: AUTH });
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), `/v2/${to}/blobs/${digest}`);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const got = await getBlob(to, digest);
    assert.equal(got.res.status, 200);
    assert.deepEqual(got.body, blob);
    // Mounting again is idempotent.
    const again = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: AUTH });
    assert.equal(again.status, 201);
  });

  test('mount of a blob the source does not have falls back to an upload session (202)', async () => {
    const from = uniqueName('mount-empty-src');
    const elsewhere = uniqueName('mount-elsewhere');
    const to = uniqueName('mount-fallback');
    await pushBlob(url, from, randomBlob(10));
    const secret = randomBlob(100);
    const secretDigest = await pushBlob(url, elsewhere, secret);
    for (const [digest, source] of [
      [digestOf(randomBlob(10)), from], // unknown everywhere
      [secretDigest, from], // exists, but not in the source repository
      [secretDigest, uniqueName('no-such-repo')], // source repository does not exist
    ] as const) {
      const res = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${source}`, { method: 'POST', headers: AUTH });
      assert.equal(res.status, 202, `${digest} from ${source}: ${await res.text()}`);
      assert.match(res.headers.get('location') ?? '', new RegExp(`^/v2/${to}/blobs/uploads/[A-Za-z0-9_-]+$`));
      assert.equal(res.headers.get('range'), '0-0');
      assert.equal((await head(to, digest)).status, 404, 'nothing was mounted');
    }
    // The fallback session is a real session.
    const res = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digestOf(secret)}&from=${from}`, { method: 'POST', headers: AUTH });
    const location = resolveLocation(url, res.headers.get('location'));
    const put = await fetch(withDigest(location, secretDigest), { method: 'PUT', headers: AUTH, body: secret });
    assert.equal(put.status, 201);
    assert.deepEqual((await getBlob(to, secretDigest)).body, secret);
  });

  test('mount needs pull on the source: a token without it gets an upload session, not the blob', async () => {
    const from = uniqueName('mount-guarded-src');
    const to = uniqueName('mount-guarded-dst');
    const blob = randomBlob(128);
    const digest = await pushBlob(url, from, blob);
    const token = await adminToken(url, `repository:${to}:pull,push`);
    const res = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 202, await res.text());
    assert.match(res.headers.get('location') ?? '', new RegExp(`^/v2/${to}/blobs/uploads/`));
    assert.equal((await head(to, digest)).status, 404, 'the blob was not mounted');
    // With pull on the source as well, the same mount succeeds.
    const both = await adminToken(url, `repository:${to}:pull,push`, `repository:${from}:pull`);
    const ok = await fetch(`${url}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST', headers: { Authorization: `Bearer ${both}` } });
    assert.equal(ok.status, 201, await ok.text());
    assert.equal((await head(to, digest)).status, 200);
  });

  test('concurrent pushes of the same blob all succeed and store it once', async () => {
    const name = uniqueName('concurrent');
    const blob = randomBlob(50_000);
    const digests = await Promise.all([
      ...Array.from({ length: 4 }, () => pushBlob(url, name, blob)),
      ...Array.from({ length: 2 }, () => pushBlobChunked(url, name, blob, 20_000)),
      pushBlob(url, uniqueName('concurrent-other'), blob),
    ]);
    assert.ok(digests.every((d) => d === digestOf(blob)));
    const got = await getBlob(name, digestOf(blob));
    assert.ok(got.body.equals(blob));
  });

  test('blob DELETE: 202, then 404 BLOB_UNKNOWN', async () => {
    const name = uniqueName('delete');
    const digest = await pushBlob(url, name, randomBlob(64));
    const del = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    await del.arrayBuffer();
    await expectError(await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: AUTH }), 404, 'BLOB_UNKNOWN');
    assert.equal((await head(name, digest)).status, 404);
    await expectError(await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'DELETE', headers: AUTH }), 404, 'BLOB_UNKNOWN');
  });

  test('dedup: the same blob in two repositories; deleting it from one leaves the other intact', async () => {
    const a = uniqueName('dedup-a');
    const b = uniqueName('dedup-b');
    const blob = randomBlob(2000);
    const digest = await pushBlob(url, a, blob);
    assert.equal(await pushBlobChunked(url, b, blob, 700), digest);
    // Pushing the same content to the same repository again is fine too.
    assert.equal(await pushBlob(url, a, blob), digest);
    const del = await fetch(`${url}/v2/${a}/blobs/${digest}`, { method: 'DELETE', headers: AUTH });
    assert.equal(del.status, 202);
    assert.equal((await head(a, digest)).status, 404);
    const got = await getBlob(b, digest);
    assert.equal(got.res.status, 200);
    assert.deepEqual(got.body, blob);
    // And it can be pushed back into A.
    assert.equal(await pushBlob(url, a, blob), digest);
    assert.deepEqual((await getBlob(a, digest)).body, blob);
  });

  test('the empty blob works monolithically and through a session', async () => {
    const name = uniqueName('empty');
    assert.equal(digestOf(Buffer.alloc(0)), EMPTY_SHA256);
    const mono = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${EMPTY_SHA256}`, { method: 'POST', headers: AUTH, body: Buffer.alloc(0) });
    assert.equal(mono.status, 201, await mono.text());
    const got = await getBlob(name, EMPTY_SHA256);
    assert.equal(got.res.status, 200);
    assert.equal(got.res.headers.get('content-length'), '0');
    assert.equal(got.res.headers.get('docker-content-digest'), EMPTY_SHA256);
    assert.equal(got.body.length, 0);
    const other = uniqueName('empty-session');
    const location = await startUpload(url, other);
    const put = await fetch(withDigest(location, EMPTY_SHA256), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.equal((await head(other, EMPTY_SHA256)).status, 200);
  });
});
