// The streaming upload path against a real server: bytes hashed as they arrive and written in
// batches with writes in flight, upload files kept open across the PATCHes of a session.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testBackend } from '../support/backend.ts';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { digestOf, randomBlob, RawConnection, startUpload, uniqueName, withDigest } from '../support/oci.ts';
import { openFilesUnder } from '../support/system.ts';
import { peerHasReadAll } from '../support/tcp.ts';
import { until, Wire } from '../durability/wire.ts';
import { UploadService } from '../../src/registry/uploads.ts';

const AUTH = { Authorization: adminBasic() };
const MiB = 1 << 20;
/** Upload files held open are the filesystem driver's own (S3 has no open files to look at). */
const FILES = testBackend() === 'sqlite-fs';

describe('streaming uploads', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  const path = (location: string) => new URL(location).pathname;
  const head = (method: string, location: string, length: number, extra = '') =>
    `${method} ${path(location)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nContent-Length: ${length}\r\n${extra}\r\n`;

  async function uploadSize(location: string): Promise<number> {
    const res = await fetch(location, { headers: AUTH });
    await res.arrayBuffer();
    assert.equal(res.status, 204);
    return Number(res.headers.get('range')!.split('-')[1]) + 1;
  }

  async function pull(name: string, digest: string): Promise<Buffer> {
    const res = await fetch(`${url}/v2/${name}/blobs/${digest}`, { headers: AUTH });
    assert.equal(res.status, 200);
    return Buffer.from(await res.arrayBuffer());
  }

  test('odd chunk sizes over several PATCHes and a final PUT chunk: the digest computed on arrival verifies', async () => {
    const name = uniqueName('odd');
    const sizes = [1, 65_535, 3 * MiB + 7, 1, 2 * MiB - 3, 777_777];
    const blob = randomBlob(sizes.reduce((a, b) => a + b, 0) + 12_345);
    const location = await startUpload(url, name);
    let offset = 0;
    for (const size of sizes) {
      const conn = await RawConnection.open(url);
      // Chunked transfer encoding in 7,777-byte pieces: the server sees chunks nothing like the batches it writes.
      conn.write(`PATCH ${path(location)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nTransfer-Encoding: chunked\r\nContent-Range: ${offset}-${offset + size - 1}\r\n\r\n`);
      conn.writeChunked(blob.subarray(offset, offset + size), 7_777);
      const res = await conn.readResponse(10_000);
      conn.close();
      assert.ok(typeof res === 'object', `PATCH answered: ${String(res)}`);
      assert.equal(res.status, 202, res.body.toString());
      offset += size;
      assert.equal(res.headers.range, `0-${offset - 1}`);
    }
    const put = await fetch(withDigest(location, digestOf(blob)), {
      method: 'PUT',
      headers: { ...AUTH, 'Content-Range': `${offset}-${blob.length - 1}` },
      body: blob.subarray(offset),
    });
    assert.equal(put.status, 201, await put.text());
    assert.ok((await pull(name, digestOf(blob))).equals(blob));
    if (FILES) assert.deepEqual(openFilesUnder(server.dataDir + '/storage'), [], 'completing closed the upload file');
  });

  test('a client gone mid-PATCH with writes in flight: every byte that arrived is kept and the session continues', async () => {
    const name = uniqueName('gone');
    const blob = randomBlob(24 * MiB + 5);
    const location = await startUpload(url, name);
    const first = 2 * MiB + 1;
    const patch1 = await fetch(location, { method: 'PATCH', headers: { ...AUTH, 'Content-Range': `0-${first - 1}` }, body: blob.subarray(0, first) });
    assert.equal(patch1.status, 202);
    const storage = server.dataDir + '/storage';
    if (FILES) assert.equal(openFilesUnder(storage).length, 1, 'the session keeps its upload file open between PATCHes');
    // The second PATCH declares the rest but stops after 9 MiB and a bit: batches are being written when it goes.
    const sentUpTo = first + 9 * MiB + 12_345;
    const conn = await Wire.open(url);
    await conn.write(head('PATCH', location, blob.length - first, `Content-Range: ${first}-${blob.length - 1}\r\n`));
    await conn.writeBody(blob.subarray(first, sentUpTo), 100_000);
    // Every byte sent has reached the server (it read them all) before the client goes.
    await until(() => peerHasReadAll(conn.socket), 'the server has read all 9 MiB and a bit of the second PATCH');
    conn.destroy();
    // The failed request is over once it has closed the upload file (it flushes what it has first);
    // on S3, once the state it writes last records every byte that arrived (a size S3 reports
    // mid-append is a whole number of parts, never this one).
    if (FILES) await until(() => openFilesUnder(storage).length === 0, 'the failed PATCH has closed the upload file');
    else await until(async () => (await uploadSize(location)) === sentUpTo, 'the failed PATCH has stored every byte that arrived');
    assert.equal(await uploadSize(location), sentUpTo, 'nothing that arrived was lost when the client went, not even a batch still gathering');
    const rest = await fetch(location, { method: 'PATCH', headers: { ...AUTH, 'Content-Range': `${sentUpTo}-${blob.length - 1}` }, body: blob.subarray(sentUpTo) });
    assert.equal(rest.status, 202, await rest.text());
    const put = await fetch(withDigest(location, digestOf(blob)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.ok((await pull(name, digestOf(blob))).equals(blob));
  });

  test('two PATCHes on one session at once are serialised, never interleaved', async (t) => {
    // Counts the PATCHes that reach the upload service (the session's lock is taken there).
    const appends = t.mock.method(UploadService.prototype, 'append');
    const name = uniqueName('concurrent');
    const a = randomBlob(6 * MiB + 1);
    const b = randomBlob(5 * MiB + 3);
    const location = await startUpload(url, name);
    const connA = await Wire.open(url);
    const connB = await Wire.open(url);
    let sendingB: Promise<void> | undefined;
    try {
      // A starts first and is cut in two; B arrives whole in between. Without serialisation B's
      // bytes would land inside A's.
      await connA.write(head('PATCH', location, a.length));
      await connA.writeBody(a.subarray(0, 3 * MiB));
      await until(() => peerHasReadAll(connA.socket), "the server has read A's first 3 MiB");
      assert.equal(appends.mock.callCount(), 1, 'A is being appended');
      // B goes out whole; it is not read while it waits for the session (TCP holds it back), so its
      // writes finish only after A: not awaited here.
      sendingB = connB.write(head('PATCH', location, b.length)).then(() => connB.writeBody(b));
      sendingB.catch(() => undefined);
      await until(() => appends.mock.callCount() === 2, 'B has reached the upload service while A is still open');
      assert.deepEqual(appends.mock.calls.map((c) => c.arguments[3].contentLength), [a.length, b.length], 'A came first, then B');
      await connA.writeBody(a.subarray(3 * MiB));
      const resA = await connA.response();
      const resB = await connB.response();
      await sendingB;
      assert.equal(resA.status, 202, resA.body.toString());
      assert.equal(resB.status, 202, resB.body.toString());
      assert.equal(resA.headers.range, `0-${a.length - 1}`, 'A was appended first, whole');
      assert.equal(resB.headers.range, `0-${a.length + b.length - 1}`, 'then B');
    } finally {
      connA.destroy();
      connB.destroy();
      await sendingB?.catch(() => undefined);
    }
    const whole = Buffer.concat([a, b]);
    const put = await fetch(withDigest(location, digestOf(whole)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
    assert.ok((await pull(name, digestOf(whole))).equals(whole));
  });

  test('two PATCHes claiming the same range at once: one is appended, the other refused with 416', async () => {
    const name = uniqueName('same-range');
    const a = randomBlob(4 * MiB);
    const b = randomBlob(4 * MiB);
    const location = await startUpload(url, name);
    const send = (body: Buffer<ArrayBuffer>) => fetch(location, { method: 'PATCH', headers: { ...AUTH, 'Content-Range': `0-${body.length - 1}` }, body });
    const [resA, resB] = await Promise.all([send(a), send(b)]);
    await Promise.all([resA.arrayBuffer(), resB.arrayBuffer()]);
    assert.deepEqual([resA.status, resB.status].sort(), [202, 416]);
    const kept = resA.status === 202 ? a : b;
    assert.equal(await uploadSize(location), kept.length);
    const put = await fetch(withDigest(location, digestOf(kept)), { method: 'PUT', headers: AUTH });
    assert.equal(put.status, 201, await put.text());
  });

  test('a 40 MiB monolithic push in odd pieces crosses background flushes and verifies', async () => {
    const name = uniqueName('mono');
    const blob = randomBlob(40 * MiB + 999);
    const conn = await RawConnection.open(url);
    try {
      conn.write(`PUT ${path(await startUpload(url, name))}?digest=${digestOf(blob)} HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${adminBasic()}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      conn.writeChunked(blob, 99_999);
      const res = await conn.readResponse(20_000);
      assert.ok(typeof res === 'object', String(res));
      assert.equal(res.status, 201, res.body.toString());
    } finally {
      conn.close();
    }
    assert.ok((await pull(name, digestOf(blob))).equals(blob));
  });
});
