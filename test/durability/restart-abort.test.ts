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

const auth = { Authorization: adminBasic() };

/** Sends a request whose body stops after `sent` of `declared` bytes, then drops the connection. */
async function abortedRequest(url: string, method: string, path: string, declared: number, sent: Buffer): Promise<void> {
  const connection = await RawConnection.open(url);
  connection.write(requestHead(url, method, path, declared));
  connection.write(sent);
  await sleep(300);
  connection.close();
  await sleep(300);
}

/** The head of a request with a body of `declared` bytes, as a client would send it. */
function requestHead(url: string, method: string, path: string, declared: number): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nAuthorization: ${auth.Authorization}\r\nContent-Length: ${declared}\r\n\r\n`;
}

test('a chunked upload continues after Berth restarts, and the blob is intact', async () => {
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
    assert.deepEqual(openFilesUnder(server.dataDir + '/storage'), [], 'no file handle left open');
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

test('an aborted monolithic upload and an aborted download leave no files behind', async () => {
  const server = await startTestServer();
  try {
    const blob = randomBytes(2 * 1024 * 1024);
    await abortedRequest(server.url, 'POST', `/v2/team/mono/blobs/uploads/?digest=${digestOf(blob)}`, blob.length, blob.subarray(0, 500_000));
    assert.deepEqual(readdirSync(join(server.dataDir, 'storage', 'uploads')), [], 'the private session was discarded');
    assert.equal((await fetch(`${server.url}/v2/team/mono/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: auth })).status, 404);

    const big = randomBytes(16 * 1024 * 1024);
    const pushed = await fetch(`${server.url}/v2/team/mono/blobs/uploads/?digest=${digestOf(big)}`, { method: 'POST', headers: auth, body: big });
    assert.equal(pushed.status, 201);
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v2/team/mono/blobs/${digestOf(big)}`, { headers: auth, signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await sleep(500);
    assert.deepEqual(openFilesUnder(server.dataDir + '/storage'), [], 'the blob file was closed');
  } finally {
    await server.close();
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
