// A real `berth serve` SIGKILLed while uploads stream in, then started again on the same data
// directory: what was acknowledged is there, what was cut short is never served, the session
// resumes from what reached the disk, and the database is intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { digestOf } from '../../src/domain/digest.ts';
import { startBerth } from '../support/berth.ts';
import { tmpDir } from '../support/system.ts';
import { blobsNotMatchingTheirName, openFilesOf, requestHead, sha256, sizeOf, until, Wire } from './wire.ts';

const MiB = 1024 * 1024;

/** `PRAGMA integrity_check` of a SQLite database. */
function integrity(db: Database.Database): string {
  return (db.pragma('integrity_check') as { integrity_check: string }[]).map((row) => row.integrity_check).join('; ');
}

/**
 * The database as the kill left it, checked on a copy (with its write-ahead log, so SQLite
 * recovers it as the next start would) to leave the data directory untouched.
 */
async function integrityAsLeft(dataDir: string): Promise<string> {
  const dir = await tmpDir('berth-killed-db');
  try {
    for (const file of ['berth.db', 'berth.db-wal']) if (existsSync(join(dataDir, file))) copyFileSync(join(dataDir, file), join(dir, file));
    const db = new Database(join(dir, 'berth.db'));
    try {
      return integrity(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a SIGKILL in the middle of a chunked PATCH, a monolithic PUT and a monolithic POST: after a restart the chunked upload resumes, the others are retried, no partial blob is ever served, and the database is intact', async () => {
  const server = await startBerth();
  const authorization = `Basic ${Buffer.from(`admin:${server.adminPassword}`).toString('base64')}`;
  const auth = { Authorization: authorization };
  const repo = `${server.url}/v2/team/killed`;
  const uploads = join(server.dataDir, 'storage', 'uploads');
  const wires: Wire[] = [];
  try {
    // Chunked: two chunks acknowledged, the third cut short by the kill.
    const chunked = randomBytes(16 * MiB);
    const opened = await fetch(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(opened.status, 202);
    const chunkedLocation = opened.headers.get('location')!;
    const chunkedId = chunkedLocation.split('/').at(-1)!;
    for (const [start, end] of [[0, 4 * MiB], [4 * MiB, 8 * MiB]] as const) {
      const patch = await fetch(`${server.url}${chunkedLocation}`, { method: 'PATCH', headers: { ...auth, 'Content-Range': `${start}-${end - 1}` }, body: chunked.subarray(start, end) });
      assert.equal(patch.status, 202, await patch.text());
    }
    const acknowledged = 8 * MiB;
    const patching = await Wire.open(server.url);
    wires.push(patching);
    await patching.write(requestHead(server.url, 'PATCH', chunkedLocation, authorization, { 'Content-Range': `${acknowledged}-${chunked.length - 1}`, 'Content-Length': chunked.length - acknowledged }));
    const patchSent = 5 * MiB;
    await patching.writeBody(chunked.subarray(acknowledged, acknowledged + patchSent));

    // Monolithic PUT: a session opened, then the whole blob in the PUT that completes it.
    const putBlob = randomBytes(12 * MiB);
    const putOpened = await fetch(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    assert.equal(putOpened.status, 202);
    const putLocation = putOpened.headers.get('location')!;
    const putId = putLocation.split('/').at(-1)!;
    const putting = await Wire.open(server.url);
    wires.push(putting);
    await putting.write(requestHead(server.url, 'PUT', `${putLocation}?digest=${digestOf(putBlob)}`, authorization, { 'Content-Length': putBlob.length }));
    await putting.writeBody(putBlob.subarray(0, 5 * MiB));

    // Monolithic POST: the whole blob in the request that opens the (private) session.
    const postBlob = randomBytes(12 * MiB);
    const before = new Set(readdirSync(uploads));
    const posting = await Wire.open(server.url);
    wires.push(posting);
    await posting.write(requestHead(server.url, 'POST', `/v2/team/killed/blobs/uploads/?digest=${digestOf(postBlob)}`, authorization, { 'Content-Length': postBlob.length }));
    await posting.writeBody(postBlob.subarray(0, 5 * MiB));

    // Each request is mid-body: the server has read what was sent and written some of it to disk.
    for (const wire of wires) await wire.serverHasRead('the first part of the body');
    const postFile = () => readdirSync(uploads).find((name) => !before.has(name) && name !== chunkedId && name !== putId);
    await until(() => (sizeOf(join(uploads, chunkedId)) ?? 0) >= acknowledged + 2 * MiB, 'some of the cut-short chunk is on disk');
    await until(() => (sizeOf(join(uploads, putId)) ?? 0) >= 2 * MiB, 'some of the monolithic PUT is on disk');
    await until(() => (sizeOf(join(uploads, postFile() ?? '-')) ?? 0) >= 2 * MiB, 'some of the monolithic POST is on disk');
    assert.equal(openFilesOf(server.process!.pid, uploads).length, 3, 'the three uploads are being written');

    const killed = server.process!;
    process.kill(killed.pid, 'SIGKILL');
    assert.equal((await killed.exited).signal, 'SIGKILL');
    for (const wire of wires) await assert.rejects(wire.head(), /closed before a response head/, 'no request cut short was answered');
    assert.equal(await integrityAsLeft(server.dataDir), 'ok', 'the database as the kill left it');
    assert.deepEqual(blobsNotMatchingTheirName(join(server.dataDir, 'storage')), [], 'every blob on disk is whole');

    await server.start();

    // Nothing cut short is served, under its digest or any other.
    for (const blob of [putBlob, postBlob, chunked]) {
      assert.equal((await fetch(`${repo}/blobs/${digestOf(blob)}`, { method: 'HEAD', headers: auth })).status, 404, 'HEAD: not there');
      const get = await fetch(`${repo}/blobs/${digestOf(blob)}`, { headers: auth });
      assert.equal(get.status, 404, 'GET: not there');
      assert.equal(((await get.json()) as { errors: { code: string }[] }).errors[0]?.code, 'BLOB_UNKNOWN');
    }

    // The killed PUT's session holds only part of the blob: completing it with the digest fails and shows nothing.
    const putStatus = await fetch(`${server.url}${putLocation}`, { headers: auth });
    assert.equal(putStatus.status, 204);
    const putKept = Number(putStatus.headers.get('range')!.split('-')[1]) + 1;
    assert.ok(putKept < putBlob.length, `the session holds part of the blob (${putKept} bytes)`);
    const completeKilled = await fetch(`${server.url}${putLocation}?digest=${digestOf(putBlob)}`, { method: 'PUT', headers: auth });
    assert.equal(completeKilled.status, 400);
    assert.equal(((await completeKilled.json()) as { errors: { code: string }[] }).errors[0]?.code, 'DIGEST_INVALID');
    assert.equal((await fetch(`${repo}/blobs/${digestOf(putBlob)}`, { method: 'HEAD', headers: auth })).status, 404, 'still not there');

    // The chunked upload resumes where the disk says it stopped.
    const status = await fetch(`${server.url}${chunkedLocation}`, { headers: auth });
    assert.equal(status.status, 204);
    const range = /^0-(\d+)$/.exec(status.headers.get('range') ?? '');
    assert.ok(range, `a Range header: ${status.headers.get('range')}`);
    const kept = Number(range[1]) + 1;
    assert.ok(kept >= acknowledged + 2 * MiB && kept <= acknowledged + patchSent, `the session holds what reached the disk: ${kept} bytes`);
    const resume = await fetch(`${server.url}${chunkedLocation}`, { method: 'PATCH', headers: { ...auth, 'Content-Range': `${kept}-${chunked.length - 1}` }, body: chunked.subarray(kept) });
    assert.equal(resume.status, 202, await resume.text());
    const complete = await fetch(`${server.url}${chunkedLocation}?digest=${digestOf(chunked)}`, { method: 'PUT', headers: auth });
    assert.equal(complete.status, 201, await complete.text());
    assert.equal(complete.headers.get('docker-content-digest'), digestOf(chunked));

    // The monolithic pushes are retried whole.
    const retriedPut = await fetch(`${repo}/blobs/uploads/`, { method: 'POST', headers: auth });
    const put = await fetch(`${server.url}${retriedPut.headers.get('location')}?digest=${digestOf(putBlob)}`, { method: 'PUT', headers: auth, body: putBlob });
    assert.equal(put.status, 201, await put.text());
    const post = await fetch(`${repo}/blobs/uploads/?digest=${digestOf(postBlob)}`, { method: 'POST', headers: auth, body: postBlob });
    assert.equal(post.status, 201, await post.text());

    for (const blob of [chunked, putBlob, postBlob]) {
      const got = await fetch(`${repo}/blobs/${digestOf(blob)}`, { headers: auth });
      assert.equal(got.status, 200);
      const bytes = Buffer.from(await got.arrayBuffer());
      assert.equal(bytes.length, blob.length);
      assert.equal(sha256(bytes), digestOf(blob), 'pulled bytes equal pushed bytes');
    }
    assert.deepEqual(blobsNotMatchingTheirName(join(server.dataDir, 'storage')), [], 'every blob on disk is whole');

    await server.stop();
    const db = new Database(join(server.dataDir, 'berth.db'), { readonly: true });
    try {
      assert.equal(integrity(db), 'ok');
    } finally {
      db.close();
    }
  } finally {
    for (const wire of wires) wire.destroy();
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});
