// SIGTERM to a real `berth serve` with an upload and a download in flight, checked against what the
// README promises: "Shutdown on SIGTERM: readiness turns 503, new connections are refused,
// in-flight requests get up to 30 s" (and `berth serve`: "readiness fails at once, in-flight
// requests finish, at most 30 s").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../../src/domain/digest.ts';
import { startBerth } from '../support/berth.ts';
import { connectionRefused, openFilesOf, requestHead, sha256, sizeOf, until, Wire } from './wire.ts';

const MiB = 1024 * 1024;
/** The grace the README promises in-flight requests ("at most 30 s"). */
const GRACE_MS = 30_000;

test('SIGTERM: readiness answers 503 at once, new connections are refused, an in-flight upload and download finish, and the process exits 0 without waiting out the grace', async () => {
  const server = await startBerth();
  const authorization = `Basic ${Buffer.from(`admin:${server.adminPassword}`).toString('base64')}`;
  const auth = { Authorization: authorization };
  const repo = `${server.url}/v2/team/drain`;
  const wires: Wire[] = [];
  const open = async () => {
    const wire = await Wire.open(server.url);
    wires.push(wire);
    return wire;
  };
  try {
    // A blob to download: more than loopback TCP buffers hold, so a client that stops reading holds the server mid-send.
    const pulled = randomBytes(32 * MiB);
    const pushed = await fetch(`${repo}/blobs/uploads/?digest=${digestOf(pulled)}`, { method: 'POST', headers: auth, body: pulled });
    assert.equal(pushed.status, 201, await pushed.text());
    const pid = server.process!.pid;
    const storage = join(server.dataDir, 'storage');

    // In-flight download: the head and a first piece read, then the client stops reading.
    const download = await open();
    await download.write(requestHead(server.url, 'GET', `/v2/team/drain/blobs/${digestOf(pulled)}`, authorization));
    const downloadHead = await download.head();
    assert.equal(downloadHead.status, 200);
    await download.received(1);
    download.pause();
    const blobFile = join(storage, 'blobs', 'sha256', digestOf(pulled).slice(7, 9), digestOf(pulled).slice(7));
    assert.deepEqual(openFilesOf(pid, storage), [blobFile], 'the download is being sent');

    // In-flight upload: the PUT that completes a session, its body half sent.
    const pushedLater = randomBytes(24 * MiB);
    const opened = await fetch(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(opened.status, 202);
    const location = opened.headers.get('location')!;
    const upload = await open();
    await upload.write(requestHead(server.url, 'PUT', `${location}?digest=${digestOf(pushedLater)}`, authorization, { 'Content-Length': pushedLater.length }));
    const half = 12 * MiB;
    await upload.writeBody(pushedLater.subarray(0, half));
    await upload.serverHasRead('the first half of the upload');
    await until(() => (sizeOf(join(storage, 'uploads', location.split('/').at(-1)!)) ?? 0) >= 2 * MiB, 'the upload is being written');

    // A keep-alive connection that is ready, then has the next /readyz on its way (its head not yet
    // complete) when SIGTERM arrives: the one place a probe can meet the draining server, since
    // new connections are refused at once and idle ones are closed.
    const probe = await open();
    const readyz = `GET /readyz HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\n`;
    await probe.write(`${readyz}\r\n`);
    const ready = await probe.response();
    assert.equal(ready.status, 200);
    assert.notEqual(ready.headers.connection, 'close');
    await probe.write(readyz);
    await probe.serverHasRead('the head of the next /readyz');

    const exited = server.process!.exited;
    const sent = Date.now();
    process.kill(pid, 'SIGTERM');

    // New connections are refused once the listener closed (draining began just before it).
    await until(() => connectionRefused(server.url), 'new connections are refused');
    await probe.write('\r\n');
    const draining = await probe.response();
    assert.equal(draining.status, 503, 'readiness fails while draining');
    assert.deepEqual(JSON.parse(draining.body.toString()), { status: 'draining' });
    assert.equal(draining.headers.connection, 'close', 'and the connection is closed after it');
    await probe.closed;

    // The in-flight requests finish.
    await upload.writeBody(pushedLater.subarray(half));
    const uploaded = await upload.response();
    assert.equal(uploaded.status, 201, uploaded.body.toString());
    assert.equal(uploaded.headers['docker-content-digest'], digestOf(pushedLater));
    download.resume();
    const body = await download.body(pulled.length);
    assert.equal(sha256(body), digestOf(pulled), 'the download completes byte-identical');
    // Both connections are closed by the server once their response is out (nothing else to wait for).
    await Promise.all([upload.closed, download.closed]);

    // The process exits 0 — bounded by the grace plus a margin so a hang fails instead of stalling the suite.
    const exit = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(resolve, GRACE_MS + 10_000, 'hung').unref())]);
    assert.notEqual(exit, 'hung', 'the process exits');
    const took = Date.now() - sent;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(took < GRACE_MS, `exited ${took} ms after SIGTERM: it waited out the ${GRACE_MS} ms grace though nothing was in flight`);
    const log = readFileSync(server.logFile, 'utf8').trimEnd().split('\n');
    assert.match(log.at(-1)!, /"msg":"berth stopped"/);

    // What the drained upload acknowledged is there after a restart.
    await server.start();
    const got = await fetch(`${repo}/blobs/${digestOf(pushedLater)}`, { headers: auth });
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), digestOf(pushedLater));
  } finally {
    for (const wire of wires) wire.destroy();
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});
