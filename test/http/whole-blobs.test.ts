// A small whole blob in one request (POST ?digest= with its body, or on S3 a PUT with a body on a
// session that holds nothing) is read into memory, verified and stored in one write, without the
// store's upload machinery (src/registry/uploads.ts). What it must still do as the streaming path does:
// refuse a wrong digest or range, leave nothing behind when the client goes, and stream instead
// once the memory such blobs may take is taken.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { storedUploads, testBackend, uploadSessionIds } from '../support/backend.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { digestOf, expectError, randomBlob, RawConnection, startUpload, uniqueName, withDigest } from '../support/oci.ts';

const AUTH = { Authorization: adminBasic() };
/** DEFAULT_SMALL_BLOBS: blobs up to 1 MiB are read whole, 32 MiB of them at once. */
const MAX_SIZE = 1024 * 1024;
const BUDGET = 32 * 1024 * 1024;

describe('small whole blobs', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  /** Sessions and stored uploads that appeared since `before`. */
  async function since(before: { sessions: string[]; stored: string[] }): Promise<{ sessions: string[]; stored: string[] }> {
    return {
      sessions: (await uploadSessionIds(server.dataDir)).filter((id) => !before.sessions.includes(id)),
      stored: (await storedUploads(server.dataDir)).filter((id) => !before.stored.includes(id)),
    };
  }
  const now = async () => ({ sessions: await uploadSessionIds(server.dataDir), stored: await storedUploads(server.dataDir) });

  async function blobStatus(name: string, digest: string): Promise<number> {
    const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { method: 'HEAD', headers: AUTH });
    await res.arrayBuffer();
    return res.status;
  }

  test('POST ?digest= and a PUT on an empty session store the blob and leave no session or upload behind', async () => {
    const name = uniqueName('whole');
    const start = await now();
    const mono = randomBlob(MAX_SIZE);
    const posted = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(mono)}`, { method: 'POST', headers: AUTH, body: mono });
    assert.equal(posted.status, 201, await posted.text());
    const viaPut = randomBlob(5000);
    const location = await startUpload(url, name);
    const put = await fetch(withDigest(location, digestOf(viaPut)), { method: 'PUT', headers: { ...AUTH, 'Content-Range': `0-${viaPut.length - 1}` }, body: viaPut });
    assert.equal(put.status, 201, await put.text());
    for (const blob of [mono, viaPut]) {
      const got = await fetch(`${url}/v2/${name}/blobs/${digestOf(blob)}`, { headers: AUTH });
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob));
    }
    assert.equal((await fetch(location, { headers: AUTH }).then(async (r) => (await r.arrayBuffer(), r.status))), 404, 'the session ended');
    assert.deepEqual(await since(start), { sessions: [], stored: [] });
  });

  test('a PUT on an empty session: a wrong digest ends the session (DIGEST_INVALID); a range that disagrees is refused (and on S3 changes nothing)', async () => {
    const name = uniqueName('whole-refused');
    const blob = randomBlob(3000);
    const wrong = await startUpload(url, name);
    await expectError(await fetch(withDigest(wrong, digestOf(randomBlob(3000))), { method: 'PUT', headers: AUTH, body: blob }), 400, 'DIGEST_INVALID');
    await expectError(await fetch(wrong, { headers: AUTH }), 404, 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(await blobStatus(name, digestOf(blob)), 404);

    const location = await startUpload(url, name);
    const put = (range: string) => fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: { ...AUTH, 'Content-Range': range }, body: blob });
    await expectError(await put(`5-${blob.length + 4}`), 416, 'RANGE_INVALID');
    await expectError(await put(`0-${blob.length + 9}`), 400, 'SIZE_INVALID');
    assert.equal(await blobStatus(name, digestOf(blob)), 404);
    // On the filesystem the body streams into the session, which keeps what arrived (as a PATCH would).
    if (testBackend() === 'sqlite-fs') return;
    const status = await fetch(location, { headers: AUTH });
    await status.arrayBuffer();
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-0', 'nothing was written');
    assert.equal(await blobStatus(name, digestOf(blob)), 404);
    const done = await put(`0-${blob.length - 1}`);
    assert.equal(done.status, 201, await done.text());
  });

  test('a client gone mid-body of a small monolithic push: nothing stored, no session, and the server goes on', async () => {
    const name = uniqueName('whole-gone');
    const start = await now();
    const blob = randomBlob(100_000);
    const conn = await RawConnection.open(url);
    conn.write(`POST /v2/${name}/blobs/uploads/?digest=${digestOf(blob)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Length: ${blob.length}\r\n\r\n`);
    conn.write(blob.subarray(0, 40_000));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await since(start), { sessions: [], stored: [] }, 'nothing is recorded or written while the body arrives');
    conn.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await since(start), { sessions: [], stored: [] });
    assert.equal(await blobStatus(name, digestOf(blob)), 404);
    const again = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', headers: AUTH, body: blob });
    assert.equal(again.status, 201, await again.text());
  });

  test('once slow small pushes hold the memory budget, the next one streams through a session; every one completes', { timeout: 60_000 }, async () => {
    const name = uniqueName('whole-budget');
    const held = BUDGET / MAX_SIZE;
    const blobs = Array.from({ length: held + 1 }, () => randomBlob(MAX_SIZE));
    // One push first, so the credentials are cached rather than checked by every connection at once.
    const warm = randomBlob(10);
    assert.equal((await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digestOf(warm)}`, { method: 'POST', headers: AUTH, body: warm })).status, 201);
    const start = await now();
    const conns: RawConnection[] = [];
    for (const blob of blobs) {
      const conn = await RawConnection.open(url);
      conn.write(`POST /v2/${name}/blobs/uploads/?digest=${digestOf(blob)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Length: ${blob.length}\r\n\r\n`);
      conn.write(blob.subarray(0, 1000));
      conns.push(conn);
    }
    let during = await since(start);
    for (let i = 0; i < 100 && during.sessions.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      during = await since(start);
    }
    assert.equal(during.sessions.length, 1, `exactly one push of ${held + 1} streams through a session`);
    conns.forEach((conn, i) => conn.write(blobs[i]!.subarray(1000)));
    for (const conn of conns) {
      const res = await conn.readResponse(30_000);
      assert.ok(typeof res === 'object' && res.status === 201, `201, got ${typeof res === 'object' ? `${res.status} ${res.body.toString()}` : res}`);
      conn.close();
    }
    for (const blob of blobs) assert.equal(await blobStatus(name, digestOf(blob)), 200);
    assert.deepEqual(await since(start), { sessions: [], stored: [] });
  });
});
