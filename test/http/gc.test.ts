// Online garbage collection (issue 14) on a real server, through /api/v1/system/gc: what it frees
// and what it keeps (shared blobs, content inside the grace period, children of tagged indexes,
// referrers of kept manifests), expired and unknown upload storage, orphaned storage objects, a dry
// run that reports exactly what the real run then deletes, quota, resuming an interrupted run, one
// run at a time, cancellation, the schedule, and the API's refusals. One server for the file, on a
// clock the test moves (node:test's mocked Date) so the grace period passes without waiting.
// Runs on this process's backend (test/postgres-s3/gc.test.ts runs it on PostgreSQL + S3).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, mock, test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { collectGarbage, savedFigures, type GcFigures } from '../../src/lifecycle/gc/index.ts';
import { openMetadataFor } from '../../src/metadata/index.ts';
import { openBlobStore, type OpenBlobStore } from '../../src/storage/index.ts';
import { api, basic, expectInvalid, expectStatus } from '../support/api.ts';
import { backendConfig, serverQuery, storedUploads, uploadSessionIds } from '../support/backend.ts';
import { artifactManifest, descriptorOf, digestOf, expectError, indexManifest, manifestBytes, MEDIA, pushBlob, pushManifest, randomBlob, startUpload } from '../support/oci.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';

const AUTH = adminBasic();
const HOUR = 3_600_000;

interface RunView {
  id: number;
  state: string;
  dryRun: boolean;
  deleteUntagged: boolean;
  trigger: string;
  cancelRequested: boolean;
  error: string | null;
  figures: GcFigures | null;
}

/** The figures a dry run and a real run must agree on: per phase, count, bytes and what was named. */
function deletions(figures: GcFigures, phases = ['resume', 'uploads', 'untagged', 'sweep', 'orphans'] as const) {
  return Object.fromEntries(phases.map((p) => [p, { deleted: figures.phases[p].deleted, bytes: figures.phases[p].bytes, sample: [...figures.phases[p].sample].sort() }]));
}

test('a run stopped mid-sweep goes on from its saved figures, after finishing what it left deleting', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-gc-resume-'));
  const config = configSchema.parse({ dataDir: dir, ...(await backendConfig(dir)) });
  const meta = await openMetadataFor(config);
  const store = await openBlobStore(config);
  try {
    // 1,500 blobs nothing references, stored and untouched for long: two batches of garbage.
    const digests: string[] = [];
    for (let i = 0; i < 1500; i += 50) {
      const chunk = Array.from({ length: 50 }, () => randomBytes(64));
      await Promise.all(chunk.map((b) => store.putSmall(digestOf(b), b)));
      await meta.db.insertInto('blobs').values(chunk.map((b) => ({ digest: digestOf(b), size: 64, touched_at: 0, deleting: 0 }))).execute();
      digests.push(...chunk.map((b) => digestOf(b)));
    }
    const deps = { meta, store, uploads: { expire: async () => 0 }, uploadTTL: 3600 };
    const options = { dryRun: false, deleteUntagged: false, graceSeconds: 3600 };
    const controller = new AbortController();
    let saved = '';
    const reporter = (signal: AbortSignal) => ({
      signal,
      log: async () => undefined,
      progress: async (p: Record<string, unknown>) => {
        saved = JSON.stringify(p);
        // Cancelled after the first batch was condemned: the batch in flight still finishes.
        if ((p as unknown as GcFigures).phases.sweep.examined >= 1000) controller.abort('cancelled');
      },
    });
    await assert.rejects(collectGarbage(deps, options, reporter(controller.signal)), (err: unknown) => err === 'cancelled');
    const first = savedFigures(saved);
    assert.ok(first, 'the stopped run saved well-formed figures');
    assert.equal(first.phase, 'sweep');
    assert.equal(first.blobsDeleted, 1000, 'the batch in flight was finished before the run stopped');
    assert.equal((await meta.blobs.totals()).count, 500);

    // As if a replica died between condemning a batch and forgetting it: ten rows left `deleting`.
    const left = (await meta.blobs.page(undefined, 10)).map((b) => b.digest);
    await meta.db.updateTable('blobs').set({ deleting: 1 }).where('digest', 'in', left).execute();

    const second = await collectGarbage(deps, options, reporter(new AbortController().signal), first);
    assert.equal(second.startedAt, first.startedAt, 'the same run, resumed');
    assert.equal(second.phases.resume.deleted, 10, 'its resume phase finished the ten condemned blobs');
    assert.equal(second.blobsDeleted, 1500);
    assert.equal(second.bytesFreed, 1500 * 64);
    assert.equal((await meta.blobs.totals()).count, 0);
    assert.deepEqual(await meta.blobs.deleting(10), [], 'no row is left deleting');
    assert.deepEqual(await store.listBlobs(undefined, 10), [], 'storage holds none of them');
  } finally {
    await store.close();
    await meta.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('garbage collection through the API', () => {
  let server: TestServer;
  let store: OpenBlobStore;
  let started = 0;

  before(async () => {
    // Mocked before the server starts: the grace period passes when the test moves the clock.
    started = Date.now();
    mock.timers.enable({ apis: ['Date'], now: started });
    server = await startTestServer({ gc: { grace: '1h' }, uploads: { ttl: '1h' }, jobs: { pollInterval: '50ms' } });
    // No scheduled upkeep while the clock jumps: upload expiry would race GC for the expired session.
    await serverQuery(server.dataDir, 'UPDATE schedules SET enabled = 0');
    await sleep(200);
    store = await openBlobStore(configSchema.parse({ dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) }));
  });
  after(async () => {
    await store?.close();
    await server?.close();
    mock.timers.reset();
  });

  async function waitFor(id: number): Promise<RunView> {
    for (let i = 0; i < 600; i++) {
      const run = await expectStatus<RunView>(await api(server.url, 'GET', `/system/gc/${id}`, { auth: AUTH }), 200);
      if (['succeeded', 'failed', 'cancelled'].includes(run.state)) return run;
      await sleep(50);
    }
    throw new Error(`GC run ${id} did not end within 30 s`);
  }

  async function gc(body: Record<string, unknown> = {}): Promise<RunView & { figures: GcFigures }> {
    const res = await api(server.url, 'POST', '/system/gc', { auth: AUTH, body });
    assert.match(res.headers.get('location') ?? '', /^\/api\/v1\/system\/gc\/\d+$/);
    const { id } = await expectStatus<RunView>(res, 201, 'start gc');
    const run = await waitFor(id);
    assert.equal(run.state, 'succeeded', JSON.stringify(run));
    assert.ok(run.figures);
    return run as RunView & { figures: GcFigures };
  }

  /** Pushes an image of a fresh config and `layers` as `reference` (a tag, or by digest when undefined). */
  async function pushWith(name: string, layers: Buffer<ArrayBuffer>[], reference?: string) {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    for (const blob of [config, ...layers]) await pushBlob(server.url, name, blob);
    const bytes = manifestBytes({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: descriptorOf(MEDIA.ociConfig, config), layers: layers.map((l) => descriptorOf(MEDIA.ociLayer, l)) });
    const digest = await pushManifest(server.url, name, reference ?? digestOf(bytes), bytes, MEDIA.ociManifest);
    return { name, digest, bytes, config: digestOf(config), descriptor: { mediaType: MEDIA.ociManifest, digest, size: bytes.length } };
  }

  const stored = async (digest: string) => (await store.stat(digest)) !== undefined;
  const manifestStatus = async (name: string, reference: string) => {
    const res = await fetch(`${server.url}/v2/${name}/manifests/${reference}`, { method: 'HEAD', headers: { Authorization: AUTH, Accept: `${MEDIA.ociManifest}, ${MEDIA.ociIndex}` } });
    return res.status;
  };
  const usage = async (project: string) => (await expectStatus<{ usageBytes: number }>(await api(server.url, 'GET', `/projects/${project}`, { auth: AUTH }), 200)).usageBytes;

  test('inside the grace period nothing is taken; past it a dry run reports exactly what the real run then frees', async () => {
    const shared = randomBlob(300);
    const uniqueA = randomBlob(400);
    const a = await pushWith('gc/a', [shared, uniqueA], 'v1');
    const b = await pushWith('gc/b', [shared, randomBlob(500)], 'v1');
    assert.equal((await fetch(`${server.url}/v2/gc/a/manifests/${a.digest}`, { method: 'DELETE', headers: { Authorization: AUTH } })).status, 202);
    // Uploaded, never referenced: counted in its project until GC takes it.
    const loose = randomBlob(700);
    await pushBlob(server.url, 'gcq/loose', loose);
    const usageBefore = await usage('gcq');
    // An object in storage no metadata row knows.
    const orphan = randomBlob(900);
    await store.putSmall(digestOf(orphan), orphan);
    // An idle upload session (expires after uploads.ttl), and upload storage whose session row is gone.
    const idle = new URL(await startUpload(server.url, 'gc/a')).pathname.split('/').pop()!;
    assert.equal((await fetch(`${server.url}/v2/gc/a/blobs/uploads/${idle}`, { method: 'PATCH', headers: { Authorization: AUTH }, body: randomBlob(200) })).status, 202);
    const lost = new URL(await startUpload(server.url, 'gc/a')).pathname.split('/').pop()!;
    assert.equal((await fetch(`${server.url}/v2/gc/a/blobs/uploads/${lost}`, { method: 'PATCH', headers: { Authorization: AUTH }, body: randomBlob(100) })).status, 202);
    await serverQuery(server.dataDir, 'DELETE FROM upload_sessions WHERE id = ?', [lost]);

    const early = await gc();
    const aContent = [a.digest, a.config, digestOf(uniqueA)];
    for (const digest of [...aContent, digestOf(loose), digestOf(orphan), digestOf(shared)]) assert.ok(await stored(digest), `${digest} is kept inside the grace period`);
    assert.ok(early.figures.withinGrace.blobs >= 4, JSON.stringify(early.figures.withinGrace));
    assert.equal(early.figures.withinGrace.collectableAt, new Date(started + HOUR).toISOString(), 'says when the oldest becomes collectable');
    assert.ok(early.figures.withinGrace.orphans >= 1);
    assert.ok((await storedUploads(server.dataDir)).includes(lost), 'young upload storage stays');
    assert.deepEqual(early.figures.phases.sweep.sample.filter((d) => aContent.includes(d)), []);

    mock.timers.tick(2 * HOUR);
    const dry = await gc({ dryRun: true });
    for (const digest of [...aContent, digestOf(loose), digestOf(orphan)]) assert.ok(await stored(digest), 'a dry run deletes nothing');
    assert.ok((await uploadSessionIds(server.dataDir)).includes(idle));
    const real = await gc();
    assert.deepEqual(deletions(real.figures), deletions(dry.figures), 'the dry run named exactly what the real run deleted');
    for (const key of ['blobsDeleted', 'orphansDeleted', 'uploadsDeleted', 'bytesFreed'] as const) assert.equal(real.figures[key], dry.figures[key], key);
    assert.deepEqual(real.figures.quotaReleased, dry.figures.quotaReleased);

    const swept = real.figures.phases.sweep.sample;
    for (const digest of [...aContent, digestOf(loose)]) {
      assert.ok(swept.includes(digest), `${digest} swept`);
      assert.equal(await stored(digest), false, `${digest} gone from storage`);
    }
    assert.ok(real.figures.phases.orphans.sample.includes(digestOf(orphan)));
    assert.equal(await stored(digestOf(orphan)), false, 'the orphaned object is gone past the grace period');
    assert.ok(await stored(digestOf(shared)), 'the layer B shares stays');
    for (const digest of [b.digest, b.config]) assert.ok(await stored(digest));
    assert.equal(await manifestStatus('gc/b', 'v1'), 200);
    assert.equal((await fetch(`${server.url}/v2/gc/b/blobs/${digestOf(shared)}`, { headers: { Authorization: AUTH } })).status, 200);

    assert.deepEqual(real.figures.phases.uploads.sample.filter((id) => id === idle || id === lost).sort(), [idle, lost].sort());
    assert.ok(!(await storedUploads(server.dataDir)).includes(idle) && !(await storedUploads(server.dataDir)).includes(lost), 'their storage is gone');
    assert.ok(!(await uploadSessionIds(server.dataDir)).includes(idle), 'the expired session is gone');

    assert.equal(real.figures.quotaReleased['gcq'], loose.length);
    assert.equal(usageBefore - (await usage('gcq')), loose.length, 'quota usage fell by exactly the bytes freed');
  });

  test('a run that died with blobs condemned is finished by the next one', async () => {
    const left = randomBlob(333);
    await store.putSmall(digestOf(left), left);
    await serverQuery(server.dataDir, 'INSERT INTO blobs (digest, size, touched_at, deleting) VALUES (?, ?, ?, 1)', [digestOf(left), left.length, 0]);
    const dry = await gc({ dryRun: true });
    assert.deepEqual(dry.figures.phases.resume.sample, [digestOf(left)]);
    assert.ok(await stored(digestOf(left)));
    const real = await gc();
    assert.deepEqual(real.figures.phases.resume.sample, [digestOf(left)]);
    assert.equal(await stored(digestOf(left)), false);
    assert.deepEqual(await serverQuery(server.dataDir, 'SELECT digest FROM blobs WHERE digest = ?', [digestOf(left)]), []);
  });

  test('delete-untagged takes untagged manifests past the grace period, never children of a tagged index nor referrers of kept manifests', async () => {
    const name = 'gc/u';
    const m1 = await pushWith(name, [randomBlob(111)]);
    const m2 = await pushWith(name, [randomBlob(112)], 'keep');
    const [c1, c2, c3] = [await pushWith(name, [randomBlob(113)]), await pushWith(name, [randomBlob(114)]), await pushWith(name, [randomBlob(115)])];
    const index = (children: (typeof c1)[]) => manifestBytes(indexManifest({ manifests: children.map((c) => c.descriptor) }));
    const i1 = await pushManifest(server.url, name, digestOf(index([c1, c2])), index([c1, c2]), MEDIA.ociIndex);
    const i2 = await pushManifest(server.url, name, 'multi', index([c1, c3]), MEDIA.ociIndex);
    const referrer = async (subject: typeof m1) => {
      const layer = randomBlob(60);
      await pushBlob(server.url, name, layer);
      await pushBlob(server.url, name, Buffer.from('{}'));
      const bytes = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.sig', layers: [descriptorOf('application/octet-stream', layer)], subject: subject.descriptor }));
      return { digest: await pushManifest(server.url, name, digestOf(bytes), bytes, MEDIA.ociManifest), layer: digestOf(layer) };
    };
    const r1 = await referrer(m2);
    const r2 = await referrer(m1);
    const doomed = [m1.digest, i1, c2.digest, r2.digest];

    const young = await gc({ dryRun: true, deleteUntagged: true });
    assert.equal(young.figures.phases.untagged.deleted, 0, 'pushed less than the grace period ago: all stay');
    assert.ok(young.figures.withinGrace.manifests >= 2);

    mock.timers.tick(2 * HOUR);
    const dry = await gc({ dryRun: true, deleteUntagged: true });
    for (const digest of doomed) assert.equal(await manifestStatus(name, digest), 200, 'a dry run deletes nothing');
    const real = await gc({ deleteUntagged: true });
    assert.deepEqual(deletions(real.figures), deletions(dry.figures), 'the dry run named exactly what the real run deleted, blobs freed by the untagged deletions included');
    assert.deepEqual(real.figures.phases.untagged.sample.sort(), doomed.map((d) => `${name}@${d}`).sort());
    assert.equal(real.figures.manifestsDeleted, 4);
    for (const digest of doomed) assert.equal(await manifestStatus(name, digest), 404, `${digest} deleted`);
    for (const digest of [m2.digest, i2, c1.digest, c3.digest, r1.digest]) assert.equal(await manifestStatus(name, digest), 200, `${digest} kept`);
    const referrers = (await (await fetch(`${server.url}/v2/${name}/referrers/${m2.digest}`, { headers: { Authorization: AUTH } })).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(referrers.manifests.map((m) => m.digest), [r1.digest], 'the referrer of the kept image stays');
    for (const digest of [m1.digest, m1.config, c2.config, r2.digest, r2.layer]) {
      assert.ok(real.figures.phases.sweep.sample.includes(digest), `${digest} swept in the same run`);
      assert.equal(await stored(digest), false);
    }
    for (const digest of [c1.digest, c1.config, c3.digest, r1.layer, m2.config]) assert.ok(await stored(digest), `${digest} stays`);
  });

  test('one run at a time (409 naming it); cancelling a queued run; history, log pages and metrics', async () => {
    // A run queued for later holds the key as a run in progress would.
    const now = Date.now();
    // (Ended runs keep the key until the next start releases it.)
    await serverQuery(server.dataDir, "UPDATE jobs SET exclusive_key = NULL WHERE exclusive_key = 'gc' AND state IN ('succeeded', 'failed', 'cancelled')");
    await serverQuery(server.dataDir, "INSERT INTO jobs (kind, payload, state, attempts, max_attempts, run_at, cancel_requested, created_at, exclusive_key) VALUES ('gc', '{}', 'queued', 0, 3, ?, 0, ?, 'gc')", [now + 1000 * HOUR, now]);
    const [queued] = await serverQuery(server.dataDir, "SELECT id FROM jobs WHERE kind = 'gc' AND state = 'queued'");
    const id = Number(queued!.id);
    const refused = await expectError(await api(server.url, 'POST', '/system/gc', { auth: AUTH, body: { dryRun: true } }), 409, 'CONFLICT');
    assert.match(refused.errors[0]!.message, new RegExp(`run ${id}\\b`));
    assert.equal((refused.errors[0]!.detail as { id: number }).id, id);
    const cancelled = await expectStatus<RunView>(await api(server.url, 'POST', `/system/gc/${id}/cancel`, { auth: AUTH }), 200);
    assert.equal(cancelled.state, 'cancelled');
    await expectError(await api(server.url, 'POST', `/system/gc/${id}/cancel`, { auth: AUTH }), 409, 'CONFLICT');
    const next = await gc({ dryRun: true });
    assert.equal(next.trigger, 'manual');

    const page = await api(server.url, 'GET', '/system/gc?pageSize=2', { auth: AUTH });
    assert.match(page.headers.get('link') ?? '', /rel="next"/);
    const history = await expectStatus<{ items: RunView[]; total: number }>(page, 200);
    assert.deepEqual(history.items.map((r) => r.id), [next.id, id], 'newest first');
    assert.ok(history.total >= 8);
    assert.ok(history.items[0]!.figures?.phases.sweep, 'each with its figures');

    const whole = await expectStatus<{ items: { message: string }[]; total: number }>(await api(server.url, 'GET', `/system/gc/${next.id}/log`, { auth: AUTH }), 200);
    assert.ok(whole.total >= 4 && whole.total <= 30, `a bounded log: ${whole.total} lines`);
    assert.match(whole.items.at(-1)!.message, /^done in /);
    const part = await api(server.url, 'GET', `/system/gc/${next.id}/log?offset=1&limit=2`, { auth: AUTH });
    assert.match(part.headers.get('link') ?? '', /offset=3&limit=2/);
    assert.deepEqual((await expectStatus<{ items: { message: string }[] }>(part, 200)).items, whole.items.slice(1, 3));

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^berth_gc_runs_total\{result="succeeded"\} [1-9]/m);
    assert.match(metrics, /^berth_gc_blobs_deleted_total [1-9]/m);
    assert.match(metrics, /^berth_gc_bytes_freed_total [1-9]/m);
    assert.match(metrics, /^berth_gc_duration_seconds_count [1-9]/m);
  });

  test('the schedule: set, shown, refused when malformed or too frequent, turned off; changes audited', async () => {
    const get = async () => expectStatus<{ cron: string | null; deleteUntagged: boolean; nextRunAt: string | null }>(await api(server.url, 'GET', '/system/gc/schedule', { auth: AUTH }), 200);
    assert.equal((await get()).cron, null, 'none by default');
    const set = await expectStatus<{ cron: string; deleteUntagged: boolean; nextRunAt: string }>(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: '0 3 * * 0', deleteUntagged: true } }), 200);
    assert.equal(set.cron, '0 3 * * 0');
    assert.equal(set.deleteUntagged, true);
    assert.equal(new Date(set.nextRunAt).getUTCDay(), 0);
    assert.deepEqual(await get(), set);
    await expectInvalid(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: 'every sunday', deleteUntagged: false } }), 'cron');
    await expectInvalid(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: '* * * * *', deleteUntagged: false } }), 'cron');
    await expectInvalid(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { deleteUntagged: false } }), 'cron');
    const off = await expectStatus<{ cron: null }>(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: null, deleteUntagged: false } }), 200);
    assert.equal(off.cron, null);
    const [row] = await serverQuery(server.dataDir, "SELECT kind, enabled FROM schedules WHERE name = 'gc'");
    assert.deepEqual({ kind: row!.kind, enabled: Number(row!.enabled) }, { kind: 'gc', enabled: 0 });

    await sleep(700); // audit rows are written in batches
    const actions = async (action: string) => (await expectStatus<{ total: number }>(await api(server.url, 'GET', `/audit?action=${action}`, { auth: AUTH }), 200)).total;
    assert.equal(await actions('gc.schedule'), 2);
    assert.ok((await actions('gc.start')) >= 8);
    assert.equal(await actions('gc.cancel'), 1);
  });

  test('refusals: anonymous 401, non-administrators 403, other jobs and bad ids 404/400, bad bodies INVALID naming the field', async () => {
    await expectStatus(await api(server.url, 'POST', '/users', { auth: AUTH, body: { username: 'gc-user', password: 'gc-user-password-1' } }), 201);
    const user = basic('gc-user', 'gc-user-password-1');
    const run = (await expectStatus<{ items: RunView[] }>(await api(server.url, 'GET', '/system/gc', { auth: AUTH }), 200)).items[0]!;
    const calls: [string, string, unknown?][] = [
      ['POST', '/system/gc', {}],
      ['GET', '/system/gc'],
      ['GET', `/system/gc/${run.id}`],
      ['GET', `/system/gc/${run.id}/log`],
      ['POST', `/system/gc/${run.id}/cancel`],
      ['GET', '/system/gc/schedule'],
      ['PUT', '/system/gc/schedule', { cron: null, deleteUntagged: false }],
    ];
    for (const [method, path, body] of calls) {
      await expectError(await api(server.url, method, path, { body }), 401, 'UNAUTHORIZED');
      await expectError(await api(server.url, method, path, { auth: user, body }), 403, 'DENIED');
    }

    const verify = await expectStatus<{ id: number }>(await api(server.url, 'POST', '/jobs', { auth: AUTH, body: { kind: 'verify-blobs' } }), 201);
    for (const path of [`/system/gc/${verify.id}`, `/system/gc/${verify.id}/log`]) await expectError(await api(server.url, 'GET', path, { auth: AUTH }), 404, 'NOT_FOUND');
    await expectError(await api(server.url, 'POST', `/system/gc/${verify.id}/cancel`, { auth: AUTH }), 404, 'NOT_FOUND');
    await expectError(await api(server.url, 'GET', '/system/gc/99999999', { auth: AUTH }), 404, 'NOT_FOUND');
    await expectInvalid(await api(server.url, 'GET', '/system/gc/abc', { auth: AUTH }), 'id');
    await expectInvalid(await api(server.url, 'GET', '/system/gc/0', { auth: AUTH }), 'id');
    await expectInvalid(await api(server.url, 'GET', `/system/gc/${run.id}/log?offset=-1`, { auth: AUTH }), 'offset');
    await expectInvalid(await api(server.url, 'GET', `/system/gc/${run.id}/log?limit=100000`, { auth: AUTH }), 'limit');
    await expectInvalid(await api(server.url, 'POST', '/system/gc', { auth: AUTH, body: { dryRun: 'yes' } }), 'dryRun');
    await expectInvalid(await api(server.url, 'POST', '/system/gc', { auth: AUTH, body: { deleteUntagged: 1 } }), 'deleteUntagged');
    await expectInvalid(await api(server.url, 'POST', '/system/gc', { auth: AUTH, body: { rm: '-rf' } }), 'rm');
    await expectInvalid(await api(server.url, 'POST', '/system/gc', { auth: AUTH, body: '[1,' }), 'body');
    await expectInvalid(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: 'x'.repeat(5000), deleteUntagged: false } }), 'cron');
    await expectInvalid(await api(server.url, 'PUT', '/system/gc/schedule', { auth: AUTH, body: { cron: null, deleteUntagged: 'always' } }), 'deleteUntagged');
  });
});
