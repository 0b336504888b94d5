// /api/v1/jobs and `berth jobs` against a real server: system administrators list (filtered,
// paged), show (with the log) and cancel jobs; everyone else is refused, an unknown job is a 404
// and a malformed id a 400 naming the field. The server runs upload expiry as a job, and its pushes
// and deletions write outbox events naming who made them.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { JobQueue } from '../../src/jobs/queue.ts';
import { openMetadataFor, type Metadata } from '../../src/metadata/index.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, nextLink, type ListPage } from '../support/api.ts';
import { backendConfig } from '../support/backend.ts';
import { berthCli, tableRows, type Cli } from '../support/cli.ts';
import { expectError, pushImage, uniqueName } from '../support/oci.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { eventually } from './stores.ts';

interface JobBody {
  id: number;
  kind: string;
  state: string;
  payload: unknown;
  attempts: number;
  cancelRequested: boolean;
  progress: unknown;
  log?: { time: string; level: string; message: string }[];
}

const DEV_PASSWORD = 'dev-password-jobs-4711';

describe('jobs API and CLI', { timeout: 120_000 }, () => {
  let server: TestServer;
  let meta: Metadata;
  let queue: JobQueue;
  let home: string;
  let cli: Cli;
  const admin = adminBasic();
  const dev = basic('dev', DEV_PASSWORD);
  /** Kinds the server does not run: their jobs stay as the test leaves them. */
  const kind = 'test-kind';

  before(async () => {
    server = await startTestServer({ jobs: { pollInterval: '100ms' } });
    // The server's database, opened beside it (SQLite: a second connection to the same file).
    meta = await openMetadataFor(configSchema.parse({ dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) }));
    queue = new JobQueue(meta.jobs, { leaseMs: 60_000, replica: 'test' });
    await expectStatus(await api(server.url, 'POST', '/users', { auth: admin, body: { username: 'dev', password: DEV_PASSWORD } }), 201);
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-jobs-cli-'));
    cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'cli.json') }, cwd: home, secrets: () => [ADMIN_PASSWORD, DEV_PASSWORD] });
  });
  after(async () => {
    await meta?.close();
    await server?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('administrators list jobs newest first, filtered by state and kind, page by page', async () => {
    const ids: number[] = [];
    for (let n = 0; n < 3; n++) ids.push((await queue.enqueue({ kind, payload: { n } })).id);
    const first = await api(server.url, 'GET', `/jobs?kind=${kind}&pageSize=2`, { auth: admin });
    const link = nextLink(first);
    const page1 = await expectStatus<ListPage<JobBody>>(first, 200);
    assert.equal(page1.total, 3);
    assert.deepEqual(page1.items.map((j) => j.id), [ids[2], ids[1]], 'newest first');
    assert.deepEqual(page1.items[0]!.payload, { n: 2 });
    assert.equal(page1.items[0]!.state, 'queued');
    assert.ok(link, 'a Link to the next page');
    const page2 = await expectStatus<ListPage<JobBody>>(await fetch(new URL(link, server.url), { headers: { Authorization: admin } }), 200);
    assert.deepEqual(page2.items.map((j) => j.id), [ids[0]]);
    const queued = await expectStatus<ListPage<JobBody>>(await api(server.url, 'GET', `/jobs?state=queued&kind=${kind}`, { auth: admin }), 200);
    assert.equal(queued.total, 3);
    const none = await expectStatus<ListPage<JobBody>>(await api(server.url, 'GET', `/jobs?state=failed&kind=${kind}`, { auth: admin }), 200);
    assert.equal(none.total, 0);
    await expectInvalid(await api(server.url, 'GET', '/jobs?state=done', { auth: admin }), 'state');
    await expectInvalid(await api(server.url, 'GET', '/jobs?kind=../etc', { auth: admin }), 'kind');
  });

  test('everyone but system administrators is refused: 401 without credentials, 403 for a user', async () => {
    const { id } = await queue.enqueue({ kind });
    for (const [method, path] of [['GET', '/jobs'], ['GET', `/jobs/${id}`], ['POST', `/jobs/${id}/cancel`]] as const) {
      await expectError(await api(server.url, method, path), 401);
      const denied = await expectError(await api(server.url, method, path, { auth: dev }), 403, 'DENIED');
      assert.match(denied.errors[0]!.message, /system administrator/);
    }
    assert.equal((await meta.jobs.get(id))?.state, 'queued', 'the refused cancel changed nothing');
  });

  test('a job with its log; an unknown job is a 404, a malformed id a 400 naming it', async () => {
    // Upload expiry runs on the server as a job (its hourly schedule exists too).
    assert.deepEqual((await meta.schedules.list()).map((s) => [s.name, s.cron]), [['housekeeping', '17 3 * * *'], ['upload-expiry', '0 * * * *']]);
    const { id } = await queue.enqueue({ kind: 'upload-expiry' });
    await eventually('the server to run the upload expiry job', async () => (await meta.jobs.get(id))?.state === 'succeeded', 15_000);
    const shown = await expectStatus<JobBody>(await api(server.url, 'GET', `/jobs/${id}`, { auth: admin }), 200);
    assert.equal(shown.kind, 'upload-expiry');
    assert.equal(shown.state, 'succeeded');
    assert.equal(shown.attempts, 1);
    assert.deepEqual(shown.progress, { expired: 0 });
    assert.match(shown.log?.[0]?.message ?? '', /^attempt 1 of 3 started on /);

    const unknown = await expectError(await api(server.url, 'GET', '/jobs/987654', { auth: admin }), 404, 'NOT_FOUND');
    assert.match(unknown.errors[0]!.message, /^job 987654 not found/);
    await expectError(await api(server.url, 'POST', '/jobs/987654/cancel', { auth: admin }), 404, 'NOT_FOUND');
    for (const bad of ['abc', '0', '-1', '1e3', '12.5', '9'.repeat(40), '%27%20or%201%3D1']) {
      const env = await expectInvalid(await api(server.url, 'GET', `/jobs/${bad}`, { auth: admin }), 'id');
      assert.ok(!env.errors[0]!.message.includes("' or"), 'the raw input is not echoed');
    }
  });

  test('cancelling: a queued job at once, a running one through its heartbeat; a finished one is a 409', async () => {
    const queued = await queue.enqueue({ kind });
    const cancelled = await expectStatus<JobBody>(await api(server.url, 'POST', `/jobs/${queued.id}/cancel`, { auth: admin }), 200);
    assert.equal(cancelled.state, 'cancelled');
    const again = await expectError(await api(server.url, 'POST', `/jobs/${queued.id}/cancel`, { auth: admin }), 409, 'CONFLICT');
    assert.match(again.errors[0]!.message, /already been cancelled/);

    const running = await queue.enqueue({ kind: 'test-running', payload: { slow: true } });
    const [claimed] = await queue.claim(['test-running'], 1);
    assert.equal(claimed?.job.id, running.id);
    const asked = await expectStatus<JobBody>(await api(server.url, 'POST', `/jobs/${running.id}/cancel`, { auth: admin }), 200);
    assert.equal(asked.state, 'running');
    assert.equal(asked.cancelRequested, true);
    await claimed.heartbeat();
    assert.equal(claimed.abortReason, 'cancelled', "the run's signal says so at its heartbeat");
    assert.equal(await claimed.cancelled(), true);
    assert.equal((await meta.jobs.get(running.id))?.state, 'cancelled');
    const audit = await expectStatus<ListPage<{ actor: string; resource: string }>>(await api(server.url, 'GET', '/audit?action=job.cancel', { auth: admin }), 200);
    assert.deepEqual(audit.items.map((e) => [e.actor, e.resource]).sort(), [['admin', String(queued.id)], ['admin', String(running.id)]].sort());
  });

  test('pushes and deletions write outbox events naming who made them', async () => {
    const name = `team/${uniqueName('events')}`;
    const before = Number((await meta.db.selectFrom('events').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst())?.id ?? 0);
    const image = await pushImage(server.url, name, 'v1');
    await expectStatus(await api(server.url, 'DELETE', `/repositories/${name}/tags/v1`, { auth: admin }), 204);
    const rows = await meta.db.selectFrom('events').selectAll().where('id', '>', before).where('repository', '=', name).orderBy('id').execute();
    assert.deepEqual(
      rows.map((e) => [e.type, e.digest, e.tag, e.actor, e.project]),
      [
        ['artifact.pushed', image.digest, 'v1', 'admin', 'team'],
        ['tag.deleted', image.digest, 'v1', 'admin', 'team'],
      ],
    );
  });

  test('berth jobs list, show and cancel', async () => {
    await cli(['login', server.url, '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
    const { id } = await queue.enqueue({ kind, payload: { from: 'cli' } });
    const listed = tableRows((await cli(['jobs', 'list', '--kind', kind, '--state', 'queued'])).stdout);
    assert.deepEqual(listed[0]!.slice(0, 4), ['ID', 'KIND', 'STATE', 'ATTEMPTS']);
    assert.deepEqual(listed[1]!.slice(0, 4), [String(id), kind, 'queued', '0/3'], 'the newest first');
    const shown = (await cli(['jobs', 'show', String(id)])).stdout;
    assert.match(shown, new RegExp(`^ID: +${id}$`, 'm'));
    assert.match(shown, /^Payload: +\{"from":"cli"\}$/m);
    assert.match(shown, /^Log: \(empty\)$/m);
    const cancelled = await cli.json<JobBody>(['jobs', 'cancel', String(id)]);
    assert.equal(cancelled.state, 'cancelled');
    const unknown = await cli(['jobs', 'show', '987654'], { fails: true });
    assert.match(unknown.stderr, /404 NOT_FOUND: job 987654 not found/);
    const bad = await cli(['jobs', 'cancel', 'x1'], { fails: true });
    assert.match(bad.stderr, /job id: a whole number of at least 1, not "x1"/);
  });
});
