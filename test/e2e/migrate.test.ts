// `berth migrate` end to end, as an operator runs it: an embedded Berth (a real server process)
// filled over HTTP with over a hundred images, a project with a quota, a user, a robot; refused
// while that server runs; stopped; migrated into PostgreSQL + S3 (the shared test servers) by the
// real command, killed with SIGKILL mid-way through the blobs and run again to the end; then a
// Berth on the target configuration serves every image byte-identical, the same tags, the same
// usage, and the old credentials and tokens. A corrupt source blob is reported and fails the run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import type { MigrationSummary } from '../../src/migrate/index.ts';
import { blobPath } from '../../src/storage/filesystem/paths.ts';
import { REPO_ROOT, startBerth } from '../support/berth.ts';
import { digestOf, pushBlob, startUpload } from '../support/oci.ts';
import { assertServes, populate } from '../support/populate.ts';
import { sharedPostgres } from '../support/postgres.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { cleanEnv, describeResult, run, type RunResult } from '../support/run.ts';
import { sharedS3 } from '../support/s3.ts';
import { freePort, tmpDir } from '../support/system.ts';

const processes = new ProcessRegistry();
const scratch: string[] = [];
after(async () => {
  await processes.stopAllAndClean(scratch, process.env['BERTH_E2E_KEEP'] === '1');
  // The servers this file started, if any (pid 0 and a no-op stop() when the run shares them):
  // moto's process would otherwise keep this test process alive.
  await (await sharedPostgres()).stop();
  const s3 = await sharedS3();
  if (s3.pid > 0) process.kill(s3.pid, 'SIGTERM');
});

const PASSWORD = `migrate-${randomBytes(6).toString('hex')}`;
const auth = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const BERTH = path.join(REPO_ROOT, 'bin', 'berth.js');

/** The environment of `berth migrate`: the test's, without any BERTH_* setting that would change the source. */
function migrateEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const key of Object.keys(env)) if (key.startsWith('BERTH_') && key !== 'BERTH_FROM_SOURCE') delete env[key];
  return env;
}

function berth(args: string[]): Promise<RunResult> {
  return run(process.execPath, [BERTH, ...args], { env: migrateEnv(), cwd: REPO_ROOT, allowFailure: true, timeoutMs: 120_000 });
}

/** A target configuration on a fresh database and bucket of the shared servers; returns its path. */
async function targetConfig(dir: string, name: string): Promise<string> {
  const [postgres, s3] = await Promise.all([sharedPostgres(), sharedS3()]);
  const database = `migrate_${name}_${randomBytes(4).toString('hex')}`;
  const bucket = `migrate-${name}-${randomBytes(4).toString('hex')}`;
  await Promise.all([postgres.createDatabase(database), s3.createBucket(bucket)]);
  const file = path.join(dir, `${name}.yaml`);
  const config = {
    dataDir: path.join(dir, `${name}-data`),
    database: { url: postgres.url(database), poolSize: 4 },
    storage: { s3: { endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'registry/', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true, partSize: 5 * 1024 * 1024 } },
  };
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}

/**
 * Runs `berth migrate` and SIGKILLs it as soon as a progress line shows blobs copied and more to
 * go. Resolves with what it had printed; rejects if it finished first.
 */
function migrateAndKill(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [BERTH, ...args], { env: migrateEnv(), cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let killed = false;
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    const m = /^blobs: \d+%, (\d+)\/(\d+) blobs, (\d+) copied/m.exec(stderr.split('\n').slice(-3).join('\n'));
    if (!killed && m && Number(m[3]) > 0 && Number(m[1]) < Number(m[2])) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  child.stdout.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (killed && signal === 'SIGKILL') resolve(stderr);
      else reject(new Error(`berth migrate ended (code ${code}, signal ${signal}) before it could be killed mid-way:\n${stderr}`));
    });
  });
}

test('berth migrate moves an embedded installation to PostgreSQL + S3, survives SIGKILL, and the moved registry serves everything', async () => {
  const work = await tmpDir('berth-migrate');
  scratch.push(work);
  const servers = Promise.all([sharedPostgres(), sharedS3()]); // started meanwhile
  const source = await startBerth({ adminPassword: PASSWORD, registry: processes });
  scratch.push(source.dataDir, path.dirname(source.logFile));
  // /readyz answers once Berth listens, a moment before it has created the admin user.
  for (let i = 0; (await fetch(`${source.url}/api/v1/auth/whoami`, { headers: { Authorization: auth } })).status !== 200; i++) {
    assert.ok(i < 100, 'the admin user exists within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const content = await populate(source.url, { images: 110, auth });
  // A layer larger than one S3 part: streamed into a multipart upload, verified before its commit.
  const large = randomBytes(6 * 1024 * 1024 + 17);
  await pushBlob(source.url, 'team/app', large, { auth });
  content.blobs.push({ name: 'team/app', digest: digestOf(large), bytes: large });
  content.project.usageBytes += large.length; // counted by its project while no manifest lists it
  // A token the source issued: it must stay valid on the target (the signing key moves).
  const tokenRes = await fetch(`${source.url}/service/token?service=berth&scope=repository:team/app:pull`, { headers: { Authorization: auth } });
  assert.equal(tokenRes.status, 200);
  const { token } = (await tokenRes.json()) as { token: string };
  // An upload in progress: its bytes stay in the old storage, so it is left out, and said so.
  const upload = await startUpload(source.url, 'team/app', { auth });
  const patched = await fetch(upload, { method: 'PATCH', headers: { Authorization: auth, 'Content-Range': '0-99' }, body: randomBytes(100) });
  assert.equal(patched.status, 202);
  await servers;

  const target = await targetConfig(work, 'target');
  // Refused while the source server runs, and for a target that is not PostgreSQL + S3.
  const busy = await berth(['migrate', '--to', target, '--data-dir', source.dataDir]);
  assert.equal(busy.code, 1, describeResult(busy));
  assert.match(busy.stderr, /is in use by another process — is Berth still running\? Stop it first/);
  await source.stop();
  const embedded = path.join(work, 'embedded.yaml');
  writeFileSync(embedded, stringify({ dataDir: path.join(work, 'elsewhere') }));
  const wrong = await berth(['migrate', '--to', embedded, '--data-dir', source.dataDir]);
  assert.equal(wrong.code, 1, describeResult(wrong));
  assert.match(wrong.stderr, /sets no database\.url \(PostgreSQL\) and no storage\.s3 \(the bucket\)/);

  // Interrupted by SIGKILL in the middle of the blobs, then run again to the end.
  const args = ['migrate', '--to', target, '--data-dir', source.dataDir, '--parallel', '2'];
  const progress = await migrateAndKill(args);
  assert.match(progress, /^tables: 100%, \d+\/\d+ rows/m, 'the tables were copied before the blobs');
  const rerun = await berth([...args, '--json']);
  assert.equal(rerun.code, 0, describeResult(rerun));
  const summary = JSON.parse(rerun.stdout) as MigrationSummary & { signingKeyNote: string };
  assert.equal(summary.resumed, true);
  assert.equal(summary.complete, true);
  assert.deepEqual(summary.blobs.failures, []);
  assert.ok(summary.blobs.skipped > 0 && summary.blobs.copied > 0, `the rerun skipped what the first run copied: ${JSON.stringify(summary.blobs)}`);
  assert.equal(summary.blobs.skipped + summary.blobs.copied, summary.blobs.total);
  assert.ok(summary.blobs.total >= 3 * 110, `blobs referenced: ${summary.blobs.total}`);
  for (const t of summary.tables) if (t.table !== 'robot_permissions') assert.equal(t.inserted, 0, `${t.table}: no row inserted twice`);
  assert.ok(summary.sequences >= 5, `sequences reset: ${summary.sequences}`);
  assert.equal(summary.signingKey, 'present', 'the first run stored the signing key');
  assert.deepEqual(summary.leftOut.find((l) => l.table === 'upload_sessions')?.rows, 1, 'the upload in progress is left out');

  // Finished: running it again is refused.
  const again = await berth(args);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already holds a finished migration from sqlite:/);

  const moved = await startBerth({ adminPassword: PASSWORD, registry: processes, env: { BERTH_CONFIG: target } });
  scratch.push(moved.dataDir, path.dirname(moved.logFile));
  try {
    await assertServes(moved.url, content, auth);
    const withToken = await fetch(`${moved.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(withToken.status, 200, 'a token the source issued is accepted by the moved registry');
  } finally {
    await moved.stop();
  }

  // A corrupt source blob: reported by digest, not copied, and the run fails.
  const layer = content.blobs.find((b) => b.bytes.length > 0)!;
  const file = blobPath(path.join(source.dataDir, 'storage'), layer.digest);
  const bytes = readFileSync(file);
  bytes[7] = bytes[7]! ^ 0x01;
  writeFileSync(file, bytes);
  const corrupt = await berth(['migrate', '--to', await targetConfig(work, 'corrupt'), '--data-dir', source.dataDir]);
  assert.equal(corrupt.code, 1, describeResult(corrupt));
  assert.match(corrupt.stdout, new RegExp(`^failed: +${layer.digest.slice(0, 19)}… digest mismatch: the source's bytes hash to sha256:`, 'm'));
  assert.match(corrupt.stdout, /^blobs: +\d+ referenced: \d+ copied \(.+\), 0 there already, 1 failed$/m);
  assert.match(corrupt.stdout, /^left out: +upload_sessions, 1 row: uploads in progress keep their bytes in the old storage/m);
  assert.match(corrupt.stderr, /^berth: 1 blob failed verification or could not be copied; the migration is not finished$/m);
});
