// Replication rules and executions through the management API and `berth replication`, on one
// Berth with CNCF Distribution as the peer: CRUD with the schedule written beside the rule, the
// endpoint kept while a rule uses it, coalesced starts, cancel, a failing peer failing the
// execution (and `run --wait` with it) — and the attackers: non-admins, unknown endpoints,
// hostile patterns and names, other kinds' job ids.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminBasic, api, basic, expectInvalid, expectStatus } from '../support/api.ts';
import { serverQuery } from '../support/backend.ts';
import { berthCli, tableRows, type Cli } from '../support/cli.ts';
import { pushImage } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { startDistributionUpstream, type DistributionUpstream } from '../support/upstream.ts';

interface Rule {
  name: string;
  registry: string;
  trigger: string;
  cron: string | null;
  nextRunAt: string | null;
  text: string;
  enabled: boolean;
  bandwidth: number | null;
}
interface Execution {
  id: number;
  rule: string | null;
  state: string;
  trigger: string;
  coalesced?: boolean;
  error: string | null;
  outcomes?: Record<string, number>;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const USER_PASSWORD = 'replication-user-password';

describe('replication API and CLI', { timeout: 150_000 }, () => {
  const processes = new ProcessRegistry();
  let server: TestServer;
  let dist: DistributionUpstream;
  let home: string;
  let cli: Cli;
  const admin = adminBasic();
  const user = basic('plain', USER_PASSWORD);

  /** `auth` '' for an anonymous call. */
  async function call<T = Record<string, unknown>>(method: string, p: string, status: number, body?: unknown, auth = admin): Promise<T> {
    return expectStatus<T>(await api(server.url, method, p, { ...(auth ? { auth } : {}), ...(body !== undefined ? { body } : {}) }), status, `${method} ${p}`);
  }
  async function waitFor(id: number): Promise<Execution> {
    for (let i = 0; i < 300; i++) {
      const e = await call<Execution>('GET', `/replication/executions/${id}`, 200);
      if (FINAL.has(e.state)) return e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`execution ${id} did not end`);
  }

  before(async () => {
    // Short leases (cancellation is seen at a heartbeat: a third of it) and a peer that gives up soon.
    // A peer that hangs is waited for 30 s: a cancel must not wait for that.
    server = await startTestServer({ jobs: { lease: 3 }, replication: { timeout: 30, maxAttempts: 2, retryDelay: '100ms' } });
    dist = await startDistributionUpstream(processes);
    await call('POST', '/users', 201, { username: 'plain', password: USER_PASSWORD });
    await call('POST', '/projects', 201, { name: 'team' });
    await call('POST', '/registries', 201, { name: 'dist', type: 'distribution', url: dist.proxy.url, username: dist.registry.username, password: dist.registry.password });
    await pushImage(server.url, 'team/app', '1.0', { auth: admin });
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-replication-cli-'));
    cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'cli.json') }, cwd: home, secrets: () => [ADMIN_PASSWORD, dist.registry.password] });
    await cli(['login', server.url, '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
  });
  after(async () => {
    await processes.stopAll();
    await server?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('rules: create, read, change (the schedule follows in the same transaction), delete; the endpoint kept while used', async () => {
    const created = await call<Rule>('POST', '/replication/rules', 201, { name: 'nightly', registry: 'dist', direction: 'push', filters: { repositories: [{ pattern: 'team/**' }] }, trigger: 'schedule', cron: '0 2 * * *', bandwidth: 1048576 });
    assert.equal(created.trigger, 'schedule');
    assert.ok(created.nextRunAt);
    assert.match(created.text, /^push to dist: repositories team\/\*\*, every tag → names kept; on schedule 0 2 \* \* \* \(UTC\); overwrites differing tags, 4 at once, at most 1 MiB\/s$/);
    const schedules = async () => (await serverQuery(server.dataDir, "select name, kind, cron, payload from schedules where kind = 'replication'")).map((r) => [r.name, r.cron, r.payload]);
    const [row] = await schedules();
    assert.match(String(row?.[0]), /^replication:\d+$/);
    assert.equal(row?.[1], '0 2 * * *');
    await call('POST', '/replication/rules', 409, { name: 'nightly', registry: 'dist', direction: 'push' });

    const listed = await call<{ items: Rule[]; total: number }>('GET', '/replication/rules?pageSize=1', 200);
    assert.equal(listed.total, 1);
    const changed = await call<Rule>('PATCH', '/replication/rules/nightly', 200, { trigger: 'manual', enabled: false });
    assert.deepEqual([changed.trigger, changed.cron, changed.enabled], ['manual', null, false]);
    assert.deepEqual(await schedules(), [], 'no schedule without trigger schedule');

    const inUse = await api(server.url, 'DELETE', '/registries/dist', { auth: admin });
    const envelope = await expectStatus<{ errors: { message: string; detail: { rules: string[] } }[] }>(inUse, 409);
    assert.match(envelope.errors[0]!.message, /replication rule "nightly"/);
    assert.deepEqual(envelope.errors[0]!.detail.rules, ['nightly']);
    assert.deepEqual((await call<{ usedByRules: string[] }>('GET', '/registries/dist', 200)).usedByRules, ['nightly'], 'the endpoint names the rules using it');

    await call('DELETE', '/replication/rules/nightly', 204);
    await call('GET', '/replication/rules/nightly', 404);
    // Audit rows are written in batches: wait for the last one.
    let actions: unknown[] = [];
    for (let i = 0; i < 50 && actions.length < 3; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      actions = (await serverQuery(server.dataDir, "select action from audit_log where action like 'replication.%' order by id")).map((r) => r.action);
    }
    assert.deepEqual(actions, ['replication.create', 'replication.update', 'replication.delete']);
  });

  test('attackers: non-admins, unknown endpoints, hostile patterns and names, other kinds of jobs', async () => {
    await call('GET', '/replication/rules', 403, undefined, user);
    await call('POST', '/replication/rules', 403, { name: 'x', registry: 'dist', direction: 'push' }, user);
    await call('GET', '/replication/rules', 401, undefined, '');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'nowhere', direction: 'push' } }), 'registry');
    const hostile = await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'push', filters: { repositories: [{ pattern: '<script>{a{b}}' }] } } });
    const refused = await expectInvalid(hostile, 'filters.repositories.0.pattern');
    assert.ok(!JSON.stringify(refused).includes('<script>'), 'the pattern is not echoed');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: '../etc', registry: 'dist', direction: 'push' } }), 'name');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'pull', trigger: 'event' } }), 'trigger');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'push', trigger: 'schedule', cron: '* * * * *' } }), 'cron');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'push', destination: { mode: 'replace', namespace: '../../x' } } }), 'destination.namespace');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'push', concurrency: 1000 } }), 'concurrency');
    await expectInvalid(await api(server.url, 'POST', '/replication/rules', { auth: admin, body: { name: 'x', registry: 'dist', direction: 'push', sneaky: true } }), 'sneaky');
    await call('GET', '/replication/rules/x', 404);

    // Another kind's job is no execution.
    const other = await call<{ id: number }>('POST', '/jobs', 201, { kind: 'verify-blobs' });
    for (const p of ['', '/tasks', '/log']) await call('GET', `/replication/executions/${other.id}${p}`, 404);
    await call('POST', `/replication/executions/${other.id}/cancel`, 404);
    await call('GET', '/replication/executions/0', 400);
    await call('GET', '/replication/executions/99999999', 404);
    await call('GET', `/replication/executions/${other.id}`, 403, undefined, user);
  });

  test('executions: coalesced starts, cancel, a failing peer fails the execution; CLI create, run --wait, executions, logs', async () => {
    await call('POST', '/replication/rules', 201, { name: 'slow', registry: 'dist', direction: 'push', filters: { repositories: [{ pattern: 'team/app' }] } });
    dist.proxy.reset();
    dist.proxy.mode = 'hang';
    const first = await call<Execution>('POST', '/replication/rules/slow/executions', 202);
    const second = await call<Execution>('POST', '/replication/rules/slow/executions', 202);
    assert.equal(second.id, first.id, 'one active execution per rule');
    assert.equal(second.coalesced, true);
    // Cancelled while its request to the peer hangs: the request is dropped at once.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const asked = performance.now();
    await call<Execution>('POST', `/replication/executions/${first.id}/cancel`, 200);
    const cancelled = await waitFor(first.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(performance.now() - asked < 5_000, `cancelled within ${Math.round(performance.now() - asked)} ms, not after the peer's 30 s timeout`);
    dist.proxy.reset();
    // What was coalesced into it is cancelled with it: no mark is left for the sweep to start it again.
    assert.deepEqual(await serverQuery(server.dataDir, 'select id from replication_marks'), []);
    await call('POST', `/replication/executions/${first.id}/cancel`, 409);

    // CLI: a rule from flags, a run that works, then one against a failing peer.
    const created = await cli(['replication', 'create', 'cli-rule', '--registry', 'dist', '--push', '--repo', 'team/**', '--not-tag', 'tmp-*', '--namespace', 'copies', '--bandwidth', '10M', '--concurrency', '2']);
    assert.match(created.stdout, /^created replication rule "cli-rule": push to dist: repositories team\/\*\* and not tmp-\*|^created replication rule "cli-rule": push to dist: repositories team\/\*\*, tags not tmp-\*/m);
    const shown = (await cli(['replication', 'show', 'cli-rule'])).stdout;
    assert.match(shown, /^Destination: +first segment → copies$/m);
    assert.match(shown, /^Bandwidth: +10 MiB\/s$/m);
    const listed = tableRows((await cli(['replication', 'list'])).stdout);
    assert.deepEqual(listed[0], ['NAME', 'DIRECTION', 'REGISTRY', 'REPOSITORIES', 'TAGS', 'TRIGGER', 'ENABLED']);
    assert.deepEqual(listed.find((r) => r[0] === 'cli-rule'), ['cli-rule', 'push', 'dist', 'team/**', 'not tmp-*', 'manual', 'yes']);
    const ran = await cli(['replication', 'run', 'cli-rule', '--wait']);
    assert.match(ran.stdout, /^copied +team\/app:1\.0 +copies\/app:1\.0 /m);
    assert.match(ran.stdout, /^execution \d+ succeeded: 1 copied, 0 up to date/m);

    dist.proxy.reset();
    dist.proxy.mode = '503';
    const failed = await cli(['replication', 'run', 'cli-rule', '--wait'], { fails: true });
    // The client tries an idempotent request 3 times; the execution (replication.maxAttempts 2) twice.
    assert.equal(dist.proxy.seen.filter((r) => r.kind === 'tags').length, 6, `retried once (a transient failure), then given up:\n${dist.proxy.describe()}`);
    dist.proxy.reset();
    assert.match(failed.stderr, /replication execution \d+ failed: 1 of 1 artifact\(s\) could not be replicated/);
    const id = Number(/execution (\d+) failed/.exec(failed.stderr)![1]);
    const logs = (await cli(['replication', 'logs', String(id)])).stdout;
    assert.match(logs, /^failed +team\/app +copies\/app .*HTTP 503/m);
    assert.match(logs, /could not list tags of team\/app \(berth\) or copies\/app \(dist\)/);
    const executions = tableRows((await cli(['replication', 'executions', 'cli-rule'])).stdout);
    assert.deepEqual(executions.slice(1).map((r) => r[3]), ['failed', 'succeeded']);
    assert.match((await cli(['replication', 'update', 'cli-rule', '--on-push', '--replicate-deletes', '--no-override'])).stdout, /on each push and deletion; leaves differing tags alone/);
    await cli(['replication', 'update', 'cli-rule', '--pull'], { fails: true });
    assert.match((await cli(['replication', 'delete', 'cli-rule'])).stdout, /deleted replication rule "cli-rule"/);
  });
});
