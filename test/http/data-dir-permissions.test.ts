// The data directory is Berth's alone: the directory itself and every directory Berth creates in it
// are 0700, every file 0600 — the metadata database with its -wal/-shm, the signing key, blobs,
// manifests and upload files — whatever the process umask lets through (tested with the usual 022).
// An existing data directory that is more open is tightened at start, and the log says so.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { pushBlobChunked, pushImage, randomBlob, startUpload, uniqueName } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';

let previousUmask: number;
let parent: string;
before(() => {
  previousUmask = process.umask(0o022);
  parent = mkdtempSync(join(tmpdir(), 'berth-modes-'));
  chmodSync(parent, 0o755);
});
after(() => {
  process.umask(previousUmask);
  rmSync(parent, { recursive: true, force: true });
});

/** Every entry under `dir` (itself included) with its permission bits, as `relative path → mode`. */
function modesUnder(dir: string): Map<string, number> {
  const modes = new Map<string, number>([['.', statSync(dir).mode & 0o777]]);
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const stat = lstatSync(path);
      modes.set(relative(dir, path), stat.mode & 0o777);
      if (stat.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return modes;
}

function assertPrivate(dir: string): Map<string, number> {
  const modes = modesUnder(dir);
  for (const [path, mode] of modes) {
    const want = lstatSync(join(dir, path)).isDirectory() ? 0o700 : 0o600;
    assert.equal(mode.toString(8), want.toString(8), `${path} is ${mode.toString(8)}, not ${want.toString(8)}`);
  }
  return modes;
}

/** Pushes an image (blobs and manifest, monolithic and chunked) and leaves one upload half done. */
async function useStores(url: string): Promise<void> {
  const name = `team/${uniqueName('modes')}`;
  await pushImage(url, name, 'latest');
  await pushBlobChunked(url, name, randomBlob(300_000), 100_000);
  const upload = await startUpload(url, name);
  const patch = await fetch(upload, { method: 'PATCH', headers: { Authorization: adminBasic() }, body: randomBlob(5000) });
  assert.equal(patch.status, 202, await patch.text());
}

test('a fresh data directory: every directory 0700, every file 0600, under umask 022', async () => {
  const dataDir = join(parent, 'fresh', 'data');
  const server = await startTestServer({}, dataDir);
  try {
    await useStores(server.url);
    const modes = assertPrivate(dataDir);
    for (const file of ['berth.db', 'berth.db-wal', 'berth.db-shm', 'keys/token-signing.pem', 'storage/uploads', 'storage/blobs/sha256']) {
      assert.ok(modes.has(file), `${file} exists: ${[...modes.keys()].join(' ')}`);
    }
    assert.ok([...modes.keys()].some((p) => /^storage\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(p)), 'blobs were written');
    assert.ok([...modes.keys()].some((p) => /^storage\/uploads\/[A-Za-z0-9_-]{16,}$/.test(p)), 'an upload is in progress');
  } finally {
    await server.close(true);
  }
  // What a clean stop leaves behind is private too.
  assertPrivate(dataDir);
  assert.equal((statSync(join(parent, 'fresh')).mode & 0o777).toString(8), '755', 'directories above the data directory keep the usual mode');
});

test('an existing data directory left open is tightened at start, and the log says so', async () => {
  const dataDir = join(parent, 'existing');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  const first = await startTestServer({}, dataDir);
  await useStores(first.url);
  await first.close(true);
  // As an older Berth (or a hand-made directory) left it.
  chmodSync(dataDir, 0o755);
  chmodSync(join(dataDir, 'berth.db'), 0o644);
  for (const leftover of ['berth.db-wal', 'berth.db-shm']) if (existsSync(join(dataDir, leftover))) chmodSync(join(dataDir, leftover), 0o644);

  const logs: Record<string, unknown>[] = [];
  const server = await startTestServer({}, dataDir, logs);
  try {
    await useStores(server.url);
    assert.equal((statSync(dataDir).mode & 0o777).toString(8), '700');
    const line = logs.find((l) => l.msg === 'tightened the data directory permissions');
    assert.ok(line, `a log line says the data directory was tightened: ${JSON.stringify(logs.map((l) => l.msg))}`);
    assert.equal(line.dataDir, dataDir);
    assert.equal(line.was, '755');
    assert.equal(line.now, '700');
    for (const file of ['berth.db', 'berth.db-wal', 'berth.db-shm']) assert.equal((statSync(join(dataDir, file)).mode & 0o777).toString(8), '600', file);
  } finally {
    await server.close();
  }
});
