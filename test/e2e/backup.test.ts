// `berth backup` against a real, busy Berth: pushes keep landing while it runs, one upload is open
// across it; a new Berth started on the backup serves every image acknowledged before the backup
// began, byte for byte, and nothing half-made from the pushes that overlapped it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import SQLite from 'better-sqlite3';
import type { BackupSummary } from '../../src/cli/backup.ts';
import { migrations } from '../../src/metadata/migrations.ts';
import { REPO_ROOT, startBerth } from '../support/berth.ts';
import { digestOf, pushBlob, pushImage, resolveLocation, startUpload, type PushedImage } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { cleanEnv, describeResult, run } from '../support/run.ts';
import { tmpDir } from '../support/system.ts';

const processes = new ProcessRegistry();
const scratch: string[] = [];
after(() => processes.stopAllAndClean(scratch, process.env['BERTH_E2E_KEEP'] === '1'));

const PASSWORD = 'backup-test-password';
/** The schema version of this Berth: its last migration. */
const SCHEMA = Object.keys(migrations({ idType: 'integer' })).sort().at(-1)!;
const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

/** `berth ARGS…` as a person runs it; exit code and output. */
function berth(args: string[]) {
  return run(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), ...args], { env: cleanEnv(), cwd: REPO_ROOT, allowFailure: true, timeoutMs: 120_000 });
}

async function pull(url: string, what: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${url}${what}`, { headers: { Authorization: auth, Accept: '*/*' } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** Asserts that `image` pulls from `url` by tag and digest, manifest and every blob identical. */
async function assertPullsIdentical(url: string, image: PushedImage, tag: string): Promise<void> {
  for (const ref of [tag, image.digest]) {
    const manifest = await pull(url, `/v2/${image.name}/manifests/${ref}`);
    assert.equal(manifest.status, 200, `${image.name}:${ref}`);
    assert.ok(manifest.body.equals(image.bytes), `${image.name}:${ref}: manifest bytes identical`);
  }
  const blobs = [[image.config.digest, null], ...image.layers.map((l, i) => [l.digest, image.layerBytes[i]!] as const)] as const;
  for (const [digest, bytes] of blobs) {
    const blob = await pull(url, `/v2/${image.name}/blobs/${digest}`);
    assert.equal(blob.status, 200, `${image.name} blob ${digest}`);
    assert.equal(digestOf(blob.body), digest, `${image.name} blob ${digest}: bytes identical`);
    if (bytes) assert.ok(blob.body.equals(bytes));
  }
}

/** Every directory under `dir` is 0700 and every file 0600. */
function assertPrivate(dir: string): void {
  assert.equal(statSync(dir).mode & 0o777, 0o700, `${dir} is 0700`);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) assertPrivate(file);
    else assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is 0600`);
  }
}

test('berth backup while pushes run; a Berth started on the backup serves everything acknowledged before it', async () => {
  const server = await startBerth({ adminPassword: PASSWORD, registry: processes });
  scratch.push(server.dataDir, path.dirname(server.logFile));
  const backups = await tmpDir('berth-backups');
  scratch.push(backups);

  // Acknowledged before the backup starts: several images, one with a large layer.
  const before: { image: PushedImage; tag: string }[] = [];
  for (let i = 0; i < 6; i++) before.push({ image: await pushImage(server.url, `team/app${i % 3}`, `v${i}`, { auth, layerCount: 2 }), tag: `v${i}` });
  const large = randomBytes(8 * 1024 * 1024);
  await pushBlob(server.url, 'team/app0', large, { auth });

  // A chunked upload open across the backup (its first chunk is in storage/uploads/).
  const open = await startUpload(server.url, 'team/open', { auth });
  const patched = await fetch(open, { method: 'PATCH', headers: { Authorization: auth, 'Content-Range': '0-1023' }, body: randomBytes(1024) });
  assert.equal(patched.status, 202);
  resolveLocation(server.url, patched.headers.get('location'));

  // Pushes that keep landing while the backup runs.
  const during: { image: PushedImage; tag: string }[] = [];
  let pushing = true;
  let failure: unknown;
  const load = (async () => {
    for (let i = 0; pushing; i++) {
      const tag = `during${i}`;
      during.push({ image: await pushImage(server.url, `team/busy${i % 2}`, tag, { auth, layerCount: 3 }), tag });
    }
  })().catch((err: unknown) => (failure = err));
  while (during.length < 3 && !failure) await new Promise((resolve) => setTimeout(resolve, 20));

  const dest = path.join(backups, 'nightly');
  const pushedBeforeBackup = during.length;
  const result = await berth(['backup', dest, '--data-dir', server.dataDir, '--json']);
  const pushedAfterBackup = during.length;
  pushing = false;
  await load;
  assert.equal(failure, undefined, `pushes during the backup succeed: ${String(failure)}`);
  assert.equal(result.code, 0, describeResult(result));
  assert.ok(pushedAfterBackup > pushedBeforeBackup, 'pushes completed while the backup ran');

  const summary = JSON.parse(result.stdout) as BackupSummary;
  assert.equal(summary.destination, dest);
  assert.equal(summary.source, server.dataDir);
  assert.equal(summary.database.integrity, 'ok');
  assert.equal(summary.database.schema, SCHEMA);
  assert.ok(summary.database.uploadSessionsLeftOut >= 1, 'the open upload (and any push mid-blob) is left out');
  assert.equal(summary.keys.files, 1);
  assert.deepEqual(summary.missingBlobs, []);
  assert.ok(summary.blobs.copied >= before.length * 4 + 1, `blobs copied: ${summary.blobs.copied}`);
  assert.ok(summary.blobs.bytes >= large.length);

  // A human-readable run too; and a second run into a used directory is refused.
  const text = await berth(['backup', path.join(backups, 'text'), '--data-dir', server.dataDir]);
  assert.equal(text.code, 0, describeResult(text));
  assert.match(text.stdout, /^backup: +\S+text \(of /m);
  assert.match(text.stdout, new RegExp(`^database: +berth\\.db, .*integrity ok, schema ${SCHEMA}`, 'm'));
  assert.match(text.stdout, /^blobs: +\d+ blobs copied, /m);
  const again = await berth(['backup', dest, '--data-dir', server.dataDir]);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, `berth: ${dest}: exists and is not empty; give a new or empty directory (a backup never overwrites)\n`);

  await server.stop();

  // The backup is a private data directory with a sound database and no upload in progress.
  assertPrivate(dest);
  assert.deepEqual(readdirSync(dest).sort(), ['berth.db', 'keys', 'storage']);
  assert.deepEqual(readdirSync(path.join(dest, 'storage', 'uploads')), []);
  assert.ok(readFileSync(path.join(dest, 'keys', 'token-signing.pem')).equals(readFileSync(path.join(server.dataDir, 'keys', 'token-signing.pem'))));
  const db = new SQLite(path.join(dest, 'berth.db'));
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.equal(db.prepare('select count(*) from upload_sessions').pluck().get(), 0);
  } finally {
    db.close();
  }

  // Restore: a new Berth on the backup directory.
  const restored = await startBerth({ dataDir: dest, adminPassword: PASSWORD, registry: processes });
  try {
    for (const { image, tag } of before) await assertPullsIdentical(restored.url, image, tag);
    const blob = await pull(restored.url, `/v2/team/app0/blobs/${digestOf(large)}`);
    assert.equal(blob.status, 200);
    assert.ok(blob.body.equals(large), 'the large blob is identical');
    for (const { image, tag } of during.slice(0, pushedBeforeBackup)) await assertPullsIdentical(restored.url, image, tag);
    // Pushes that overlapped the backup are in it whole or not at all.
    let overlapping = 0;
    for (const { image, tag } of during.slice(pushedBeforeBackup)) {
      const manifest = await pull(restored.url, `/v2/${image.name}/manifests/${image.digest}`);
      if (manifest.status === 200) {
        overlapping++;
        await assertPullsIdentical(restored.url, image, tag);
      } else assert.equal(manifest.status, 404);
    }
    assert.ok(overlapping <= during.length - pushedBeforeBackup);
    // The open upload did not survive the backup: its client starts over.
    const status = await fetch(open.replace(server.url, restored.url), { headers: { Authorization: auth } });
    assert.equal(status.status, 404);
  } finally {
    await restored.stop();
  }
});

test('berth backup refuses what it cannot back up: no database there, a destination inside the data directory or a file', async () => {
  const dir = await tmpDir('berth-backup-refusals');
  scratch.push(dir);
  const empty = path.join(dir, 'empty-data');
  await mkdir(empty);
  const none = await berth(['backup', path.join(dir, 'out'), '--data-dir', empty]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^berth: no Berth database in .*empty-data: .*berth\.db does not exist/);
  assert.deepEqual(readdirSync(dir).sort(), ['empty-data'], 'nothing made');

  await writeFile(path.join(empty, 'berth.db'), '');
  const inside = await berth(['backup', path.join(empty, 'backup'), '--data-dir', empty]);
  assert.equal(inside.code, 1);
  assert.match(inside.stderr, /^berth: .*inside the data directory/);
  await writeFile(path.join(dir, 'a-file'), 'x');
  const file = await berth(['backup', path.join(dir, 'a-file'), '--data-dir', empty]);
  assert.equal(file.code, 1);
  assert.match(file.stderr, /^berth: .*a-file: exists and is not a directory/);
  const both = await berth(['backup', path.join(dir, 'out'), '--data-dir', empty, '--config', path.join(dir, 'berth.yml')]);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /^berth: --data-dir and --config: pick one/);
});
