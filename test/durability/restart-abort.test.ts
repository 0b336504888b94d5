import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { digestOf } from '../../src/domain/digest.ts';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RawConnection } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';
import { openFilesUnder } from '../support/system.ts';
import { requestHead as wireHead, until, Wire } from './wire.ts';

const auth = { Authorization: adminBasic() };

/**
 * Sends the head of a request declaring `declared` body bytes and the first part of the body
 * (`sent`), waits until the server has read all of it (so the request is mid-body), then destroys
 * the connection. The caller then awaits what the server does about it.
 */
async function abortedRequest(url: string, method: string, path: string, declared: number, sent: Buffer, started: () => boolean = () => true): Promise<void> {
  const wire = await Wire.open(url);
  await wire.write(wireHead(url, method, path, auth.Authorization, { 'Content-Length': declared }));
  await wire.writeBody(sent);
  await wire.serverHasRead('the head and the first part of the body');
  await until(started, `the server is handling the ${method}`);
  wire.destroy();
  await wire.closed;
}

/** The head of a request with a body of `declared` bytes, as a client would send it. */
function requestHead(url: string, method: string, path: string, declared: number): string {
  return wireHead(url, method, path, auth.Authorization, { 'Content-Length': declared });
}

test('a chunked upload continues after a graceful in-process restart, and the blob is intact (a SIGKILLed process: kill-mid-upload.test.ts)', async () => {
  let server = await startTestServer();
  const dataDir = server.dataDir;
  try {
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    const start = await fetch(`${server.url}/v2/team/restart/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(start.status, 202);
    const location = start.headers.get('location')!;
    assert.match(location, /^\/v2\/team\/restart\/blobs\/uploads\//, 'upload URLs are relative');
    const first = blob.subarray(0, 2 * 1024 * 1024);
    const patch = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...auth, 'Content-Range': `0-${first.length - 1}` }, body: first });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get('range'), `0-${first.length - 1}`);

    await server.close(true);
    server = await startTestServer({}, dataDir);

    const status = await fetch(`${server.url}${location}`, { headers: auth });
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), `0-${first.length - 1}`, 'the session and its bytes survived');
    const rest = blob.subarray(first.length);
    const patch2 = await fetch(`${server.url}${location}`, {
      method: 'PATCH',
      headers: { ...auth, 'Content-Range': `${first.length}-${blob.length - 1}` },
      body: rest,
    });
    assert.equal(patch2.status, 202);
    const put = await fetch(`${server.url}${location}?digest=${digestOf(blob)}`, { method: 'PUT', headers: auth });
    assert.equal(put.status, 201, await put.text());
    const got = Buffer.from(await (await fetch(`${server.url}/v2/team/restart/blobs/${digestOf(blob)}`, { headers: auth })).arrayBuffer());
    assert.ok(got.equals(blob), 'pulled bytes equal pushed bytes');
  } finally {
    await server.close();
  }
});

test('a client that aborts mid-PATCH leaves nothing visible, no open files, and a usable session', async () => {
  const server = await startTestServer();
  try {
    const start = await fetch(`${server.url}/v2/team/abort/blobs/uploads/`, { method: 'POST', headers: auth });
    const location = start.headers.get('location')!;
    const blob = randomBytes(4 * 1024 * 1024);
    await abortedRequest(server.url, 'PATCH', location, blob.length, blob.subarray(0, 1024 * 1024));
    await until(() => openFilesUnder(server.dataDir + '/storage').length === 0, 'no file handle is left open');
    const head = await fetch(`${server.url}/v2/team/abort/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: auth });
    assert.equal(head.status, 404, 'nothing visible');
    const status = await fetch(`${server.url}${location}`, { headers: auth });
    assert.equal(status.status, 204);
    const size = Number(status.headers.get('range')!.split('-')[1]) + 1;
    assert.ok(size <= 1024 * 1024, `the session holds at most what arrived (${size})`);
    // The client resumes from what the server has, and the digest still verifies.
    const resume = await fetch(`${server.url}${location}`, { method: 'PATCH', headers: { ...auth, 'Content-Range': `${size}-${blob.length - 1}` }, body: blob.subarray(size) });
    assert.equal(resume.status, 202, await resume.text());
    const put = await fetch(`${server.url}${location}?digest=${digestOf(blob)}`, { method: 'PUT', headers: auth });
    assert.equal(put.status, 201, await put.text());
  } finally {
    await server.close();
  }
});

test('an aborted monolithic upload leaves no files behind', async () => {
  const server = await startTestServer();
  try {
    const uploads = join(server.dataDir, 'storage', 'uploads');
    const blob = randomBytes(2 * 1024 * 1024);
    // Aborted once its private session exists: the request is in its handler, mid-body.
    await abortedRequest(server.url, 'POST', `/v2/team/mono/blobs/uploads/?digest=${digestOf(blob)}`, blob.length, blob.subarray(0, 500_000), () => readdirSync(uploads).length === 1);
    await until(() => readdirSync(uploads).length === 0, 'the private session of the aborted upload is discarded');
    assert.equal((await fetch(`${server.url}/v2/team/mono/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: auth })).status, 404);
  } finally {
    await server.close();
  }
});

test('a download whose client socket is destroyed releases its response and blob file at once, and shutdown then takes no grace', async () => {
  const logLines: Record<string, unknown>[] = [];
  const server = await startTestServer({}, undefined, logLines);
  let stopped = false;
  try {
    const storage = join(server.dataDir, 'storage');
    // Far more than the TCP buffers of a loopback connection hold: the server cannot finish sending it.
    const big = randomBytes(24 * 1024 * 1024);
    const digest = digestOf(big);
    const pushed = await fetch(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: auth, body: big });
    assert.equal(pushed.status, 201);

    const download = await Wire.open(server.url);
    await download.write(wireHead(server.url, 'GET', `/v2/team/mono/blobs/${digest}`, auth.Authorization));
    const head = await download.head();
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(big.length));
    await download.received(1);
    const blobFile = join(storage, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
    assert.deepEqual(openFilesUnder(storage), [blobFile], 'while it sends, the download holds the blob file open');
    download.destroy();

    // The server notices the closed connection: the send stops, the file is closed, the request is logged as cut short.
    await until(() => openFilesUnder(storage).length === 0, 'the server closes the blob file of the abandoned download');
    const isDownload = (line: Record<string, unknown>) => line.msg === 'request' && line.route === 'blob' && line.method === 'GET';
    await until(() => logLines.some(isDownload), 'the abandoned download is logged');
    const line = logLines.find(isDownload)!;
    assert.equal(line.status, 0, 'logged as a response that did not complete');
    assert.ok(Number(line.bytesOut) < big.length, `it stopped sending (${String(line.bytesOut)} of ${big.length} bytes)`);

    // Connections left at shutdown: one that never sent a request (what fetch's pool left behind
    // in this test's earlier form, and what a browser's preconnect leaves) and an idle keep-alive one.
    const silent = await Wire.open(server.url);
    const idle = await Wire.open(server.url);
    await idle.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\n\r\n`);
    assert.equal((await idle.response()).status, 200);
    await silent.serverHasRead('nothing (the connection is accepted)');

    const started = Date.now();
    stopped = true;
    await server.close();
    const took = Date.now() - started;
    // A bound on a hang, not a speed test: the grace is 30 s and nothing here is in flight.
    assert.ok(took < 5_000, `close() took ${took} ms: it waited for connections with nothing in flight`);
    await Promise.all([silent.closed, idle.closed]);
  } finally {
    if (!stopped) await server.close();
  }
});

test('clients that vanish right after sending headers never crash the server', async () => {
  const server = await startTestServer();
  let uncaught: unknown;
  const onUncaught = (err: unknown) => {
    uncaught = err;
  };
  process.on('uncaughtException', onUncaught);
  try {
    for (let i = 0; i < 60; i++) {
      const start = await fetch(`${server.url}/v2/team/vanish/blobs/uploads/`, { method: 'POST', headers: auth });
      const location = start.headers.get('location')!;
      const connection = await RawConnection.open(server.url);
      // Headers and a first byte, then gone: the abort lands while the server is still preparing the write.
      connection.write(`${requestHead(server.url, 'PATCH', location, 1_000_000)}x`);
      await sleep(i % 5);
      connection.close();
    }
    await sleep(300);
    assert.equal(uncaught, undefined, `an uncaught exception escaped: ${String(uncaught)}`);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'the server still answers');
  } finally {
    process.off('uncaughtException', onUncaught);
    await server.close();
  }
});
