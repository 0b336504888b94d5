// The verify-blobs job ("verify storage"), started through POST /api/v1/jobs on an embedded
// Berth (SQLite + filesystem): a clean store verifies; a blob corrupted on disk and one deleted
// are reported; a second attempt resumes after the cursor its predecessor saved.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { blobReferencesOf, verifyBlobs, type VerifyBlobsServices } from '../../src/jobs/kinds/verify-blobs.ts';
import type { JobContext, JobLogLevel } from '../../src/jobs/kind.ts';
import { openMetadata } from '../../src/metadata/index.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { blobPath } from '../../src/storage/filesystem/paths.ts';
import { api, expectInvalid, expectStatus } from '../support/api.ts';
import { digestOf, pushBlob, pushImage, uniqueName } from '../support/oci.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';

interface JobView {
  id: number;
  state: string;
  attempts: number;
  progress: { total: number; checked: number; bytes: number; mismatches: number; missing: number; cursor?: string } | null;
  log: { level: string; message: string }[];
}

describe('verify-blobs, started through the API', () => {
  let server: TestServer;
  const auth = adminBasic();

  before(async () => {
    // Always the embedded backend: the test corrupts files of the filesystem store.
    server = await startTestServer({ database: {}, storage: {}, jobs: { pollInterval: 1 } });
  });
  after(() => server.close());

  async function runJob(payload: Record<string, unknown> = {}): Promise<JobView> {
    const started = await expectStatus<{ id: number; state: string }>(await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'verify-blobs', payload } }), 201, 'start');
    assert.equal(started.state, 'queued');
    for (let i = 0; i < 200; i++) {
      const job = await expectStatus<JobView>(await api(server.url, 'GET', `/jobs/${started.id}`, { auth }), 200);
      if (job.state === 'succeeded' || job.state === 'failed') return job;
      await sleep(50);
    }
    throw new Error(`job ${started.id} did not finish within 10 s`);
  }

  test('a clean store: every blob and manifest verified, no mismatch', async () => {
    const image = await pushImage(server.url, uniqueName('verify/clean'), 'v1', { layerCount: 2 });
    const job = await runJob();
    assert.equal(job.state, 'succeeded');
    assert.equal(job.attempts, 1);
    assert.ok(job.progress);
    assert.equal(job.progress.mismatches, 0);
    assert.equal(job.progress.missing, 0);
    assert.ok(job.progress.checked >= 4, `config, two layers and the manifest at least: ${JSON.stringify(job.progress)}`);
    assert.equal(job.progress.checked, job.progress.total);
    assert.match(job.log.at(-1)!.message, /every one matches its digest/);
    assert.ok(job.progress.bytes >= image.bytes.length + image.layerBytes.reduce((n, l) => n + l.length, 0));
  });

  test('a blob corrupted on disk and one deleted are reported, each by digest; the job goes on to the end', async () => {
    const image = await pushImage(server.url, uniqueName('verify/broken'), 'v1', { layerCount: 3 });
    const [corrupt, gone] = image.layers;
    const root = join(server.dataDir, 'storage');
    const file = blobPath(root, corrupt!.digest);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0xff; // one bit pattern flipped, same length
    writeFileSync(file, bytes);
    rmSync(blobPath(root, gone!.digest));

    const job = await runJob();
    assert.equal(job.state, 'succeeded', 'findings are reported, not retried');
    assert.equal(job.progress?.mismatches, 1);
    assert.equal(job.progress?.missing, 1);
    assert.equal(job.progress?.checked, job.progress?.total, 'it looked at everything');
    const errors = job.log.filter((l) => l.level === 'error').map((l) => l.message);
    assert.ok(errors.some((m) => m.startsWith(`mismatch: ${corrupt!.digest}`) && m.includes(digestOf(bytes))), `the corrupt blob, with what its bytes hash to: ${errors.join(' | ')}`);
    assert.ok(errors.some((m) => m.startsWith(`missing: ${gone!.digest}`)), `the deleted blob: ${errors.join(' | ')}`);
    assert.match(errors.at(-1)!, /1 mismatched, 1 missing/);
  });

  test('bad starts: an unknown kind, a bad payload, anonymous; a second one while the first runs is a conflict', async () => {
    await expectInvalid(await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'upload-expiry' } }), 'kind');
    await expectInvalid(await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'verify-blobs', payload: { bytesPerSecond: 'fast' } } }), 'payload.bytesPerSecond');
    await expectInvalid(await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'verify-blobs', payload: { rm: '-rf' } } }), 'payload.rm');
    assert.equal((await api(server.url, 'POST', '/jobs', { body: { kind: 'verify-blobs' } })).status, 401);

    // 1 KiB/s over a 64 KiB blob: the first job runs for a minute unless cancelled.
    await pushBlob(server.url, uniqueName('verify/slow'), randomBytes(64 * 1024));
    const slow = await expectStatus<{ id: number }>(await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'verify-blobs', payload: { bytesPerSecond: 1024 } } }), 201);
    const second = await api(server.url, 'POST', '/jobs', { auth, body: { kind: 'verify-blobs' } });
    const conflict = await expectStatus<{ errors: { code: string; message: string }[] }>(second, 409);
    assert.match(conflict.errors[0]!.message, new RegExp(`job ${slow.id}\\b`));
    await expectStatus(await api(server.url, 'POST', `/jobs/${slow.id}/cancel`, { auth }), 200);
    for (let i = 0; i < 100; i++) {
      const job = await expectStatus<JobView>(await api(server.url, 'GET', `/jobs/${slow.id}`, { auth }), 200);
      if (job.state === 'cancelled') return;
      await sleep(100);
    }
    assert.fail('the throttled job was not cancelled within 10 s');
  });
});

test('an attempt that takes over resumes after the cursor the earlier attempt saved', async () => {
  const dir = join((await import('node:os')).tmpdir(), `berth-verify-${randomBytes(4).toString('hex')}`);
  const meta = await openMetadata(dir);
  const store = new FilesystemBlobStore(join(dir, 'storage'));
  await store.init();
  try {
    const repo = await meta.db.insertInto('repositories').values({ name: 'r/one', project_id: null, created_at: 0 }).returning('id').executeTakeFirstOrThrow();
    const blobs = Array.from({ length: 6 }, () => randomBytes(1000 + Math.floor(Math.random() * 1000)));
    const digests = blobs.map((b) => digestOf(b)).sort();
    for (const blob of blobs) {
      await store.putSmall(digestOf(blob), blob);
      await meta.db.insertInto('repository_blobs').values({ repository_id: repo.id, digest: digestOf(blob), size: blob.length, created_at: 0 }).execute();
      await meta.db.insertInto('blobs').values({ digest: digestOf(blob), size: blob.length, touched_at: 0, deleting: 0 }).execute();
    }
    // Attempt 1 got as far as the third digest and saved that, then its replica died.
    const { id } = await meta.jobs.enqueue({ kind: 'verify-blobs' });
    await meta.jobs.claim('dead#1', ['verify-blobs'], 1, Date.now() + 60_000);
    const saved = { total: 6, checked: 3, bytes: 4500, mismatches: 0, missing: 0, cursor: digests[2] };
    await meta.jobs.heartbeat(id, 'dead#1', Date.now() + 60_000, JSON.stringify(saved));

    const read: string[] = [];
    const services: VerifyBlobsServices = {
      store: { read: (digest, range) => (read.push(digest), store.read(digest, range)) },
      blobReferences: blobReferencesOf(meta.blobs),
      jobs: meta.jobs,
    };
    const logs: { level: JobLogLevel; message: string }[] = [];
    let last: Record<string, unknown> = {};
    const ctx: JobContext<VerifyBlobsServices> = {
      services,
      signal: new AbortController().signal,
      log: async (level, message) => void logs.push({ level, message }),
      progress: async (p) => void (last = p),
    };
    await verifyBlobs.run({ id, kind: 'verify-blobs', payload: {}, attempt: 2, maxAttempts: 3 }, ctx);
    assert.deepEqual(read, digests.slice(3), 'only the blobs after the cursor are read again');
    assert.match(logs[0]!.message, new RegExp(`resuming after ${digests[2]}`));
    assert.equal(last['checked'], 6);
    assert.equal(last['cursor'], digests[5]);
    assert.equal(last['mismatches'], 0);

    // A fresh job (attempt 1) starts from the beginning whatever is saved.
    read.length = 0;
    await verifyBlobs.run({ id, kind: 'verify-blobs', payload: {}, attempt: 1, maxAttempts: 3 }, ctx);
    assert.deepEqual(read, digests);
  } finally {
    await store.close?.();
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
