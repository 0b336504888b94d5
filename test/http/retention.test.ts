// Tag retention end to end on a real server: every rule shape, dry run equal to the real run of
// the same moment, untagged artifacts, excludes, index children, immutable artifacts, the schedule
// a policy carries, and the refusals an attacker meets (other projects' runs, non-members, huge
// bodies, bad cron, 16 rules).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../support/server.ts';
import { serverQuery } from '../support/backend.ts';
import { expectError, indexManifest, manifestBytes, pushImage, pushManifest, MEDIA, type PushedImage } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';
import { backendConfig } from '../support/backend.ts';
import { configSchema } from '../../src/config/schema.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import { retention, type RetentionServices } from '../../src/jobs/kinds/retention.ts';
import { openMetadataFor } from '../../src/metadata/index.ts';

const PASSWORD = 'retention-test-password';
const DAY = 86_400_000;

interface Run {
  id: number;
  project: string;
  dryRun: boolean;
  trigger: string;
  state: string;
  progress: { phase: string; total: number; retained: number; deleted: number; failed: number } | null;
  outcomes?: Record<string, number>;
  log?: { message: string }[];
}
interface Item {
  repository: string;
  digest: string;
  outcome: string;
  tags: string[];
  basis: string | null;
  rule: number | null;
  reason: string;
}
type Retain = { kind: string; count?: number; days?: number };

function rule(retain: Retain, options: { repo?: string; notRepo?: string; tag?: string; notTag?: string; untagged?: boolean } = {}) {
  return {
    repositories: { pattern: options.notRepo ?? options.repo ?? '**', exclude: options.notRepo !== undefined },
    tags: { pattern: options.notTag ?? options.tag ?? '**', exclude: options.notTag !== undefined },
    untagged: options.untagged ?? false,
    retain,
  };
}

describe('tag retention', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const owner = basic('owner', PASSWORD);
  const dev = basic('dev', PASSWORD);
  const outsider = basic('outsider', PASSWORD);

  /** Pushes a fresh image into `repository` under `tags` (by digest when none). */
  async function push(repository: string, tags: string[]): Promise<PushedImage> {
    const image = await pushImage(url, repository, tags[0]);
    for (const tag of tags.slice(1)) await pushManifest(url, repository, tag, image.bytes, image.mediaType);
    return image;
  }

  /** Makes an artifact look pushed `pushedDaysAgo` and pulled `pulledDaysAgo` (null: never) days ago. */
  async function age(digest: string, pushedDaysAgo: number, pulledDaysAgo: number | null = null): Promise<void> {
    const pushed = Date.now() - pushedDaysAgo * DAY;
    await serverQuery(server.dataDir, 'update manifests set created_at = ?, last_pulled_at = ? where digest = ?', [pushed, pulledDaysAgo === null ? null : Date.now() - pulledDaysAgo * DAY, digest]);
    await serverQuery(server.dataDir, 'update tags set updated_at = ? where manifest_digest = ?', [pushed, digest]);
  }

  async function setPolicy(project: string, rules: unknown[], cron?: string | null, auth = admin) {
    return expectStatus<{ rules: unknown[]; descriptions: string[]; cron: string | null; nextRunAt: string | null }>(
      await api(url, 'PUT', `/projects/${project}/retention`, { auth, body: { rules, ...(cron !== undefined ? { cron } : {}) } }),
      200,
    );
  }

  /** Starts a run, waits for it to end, returns it with all its decisions. */
  async function run(project: string, dryRun: boolean, auth = admin): Promise<{ run: Run; items: Item[] }> {
    const started = await expectStatus<Run>(await api(url, 'POST', `/projects/${project}/retention/runs`, { auth, body: { dryRun } }), 201);
    assert.equal(started.dryRun, dryRun);
    let current = started;
    for (let i = 0; i < 200 && !['succeeded', 'failed', 'cancelled'].includes(current.state); i++) {
      await sleep(50);
      current = await expectStatus<Run>(await api(url, 'GET', `/projects/${project}/retention/runs/${started.id}`, { auth }), 200);
    }
    assert.equal(current.state, 'succeeded', JSON.stringify(current));
    const items: Item[] = [];
    for (let page = 1; ; page++) {
      const got = await expectStatus<ListPage<Item>>(await api(url, 'GET', `/projects/${project}/retention/runs/${started.id}/items?page=${page}&pageSize=500`, { auth }), 200);
      items.push(...got.items);
      if (items.length >= got.total) break;
    }
    return { run: current, items };
  }

  /** The outcome of each digest, e.g. `{ [d]: 'would-delete' }`. */
  const outcomes = (items: Item[]) => Object.fromEntries(items.map((i) => [i.digest, i.outcome]));
  const manifestStatus = async (repository: string, digest: string) => {
    const res = await fetch(`${url}/v2/${repository}/manifests/${digest}`, { method: 'HEAD', headers: { Authorization: admin, Accept: `${MEDIA.ociManifest},${MEDIA.ociIndex}` } });
    return res.status;
  };

  /** Runs dry, then for real: asserts both decided alike, and that exactly the decided artifacts are gone. */
  async function dryThenReal(project: string): Promise<Item[]> {
    const dry = await run(project, true);
    for (const item of dry.items) assert.equal(await manifestStatus(item.repository, item.digest), 200, 'a dry run deletes nothing');
    const real = await run(project, false);
    const comparable = (items: Item[]) => items.map((i) => ({ ...i, outcome: i.outcome === 'would-delete' ? 'deleted' : i.outcome })).sort((a, b) => (a.digest < b.digest ? -1 : 1));
    assert.deepEqual(comparable(real.items), comparable(dry.items), 'the real run decides exactly as the dry run of the same moment');
    assert.equal(real.run.progress?.deleted, dry.run.progress?.deleted);
    for (const item of real.items) assert.equal(await manifestStatus(item.repository, item.digest), item.outcome === 'deleted' ? 404 : 200, `${item.repository}@${item.digest} ${item.outcome}`);
    return real.items;
  }

  before(async () => {
    server = await startTestServer({ jobs: { pollInterval: '300ms' } });
    url = server.url;
    for (const username of ['owner', 'dev', 'outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    for (const name of ['keep', 'pulls', 'ages', 'mixed', 'index', 'locked', 'other', 'sched']) await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/keep/members', { auth: admin, body: { username: 'owner', role: 'projectAdmin' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/keep/members', { auth: admin, body: { username: 'dev', role: 'developer' } }), 201);
  });
  after(() => server.close());

  test('latestPushed: the N most recently pushed per repository; the rest goes with all its tags; a dry run first shows exactly that', async () => {
    const a: PushedImage[] = [];
    for (let i = 0; i < 4; i++) a.push(await push('keep/app', [`b${i}`, ...(i === 0 ? ['stable'] : [])]));
    const b = [await push('keep/tools/cli', ['x1']), await push('keep/tools/cli', ['x2'])];
    for (let i = 0; i < 4; i++) await age(a[i]!.digest, 10 - i);
    await age(b[0]!.digest, 3);
    await age(b[1]!.digest, 2);
    const policy = await setPolicy('keep', [rule({ kind: 'latestPushed', count: 2 })], undefined, owner);
    assert.deepEqual(policy.descriptions, ['retain the 2 most recently pushed of repositories matching ** with tags matching **']);
    const items = await dryThenReal('keep');
    assert.deepEqual(outcomes(items), { [a[0]!.digest]: 'deleted', [a[1]!.digest]: 'deleted', [a[2]!.digest]: 'retained', [a[3]!.digest]: 'retained', [b[0]!.digest]: 'retained', [b[1]!.digest]: 'retained' });
    const gone = items.find((i) => i.digest === a[0]!.digest)!;
    assert.deepEqual(gone.tags, ['b0', 'stable']);
    assert.equal(gone.reason, 'no rule retains it');
    const kept = items.find((i) => i.digest === a[3]!.digest)!;
    assert.deepEqual([kept.basis, kept.rule], ['rule', 1]);
    assert.match(kept.reason, /^rule 1: retain the 2 most recently pushed/);
    // Deleted by retention, through the API's deletion: events and quota follow.
    const repos = await expectStatus<ListPage<{ name: string; artifactCount: number }>>(await api(url, 'GET', '/repositories?project=keep', { auth: admin }), 200);
    assert.equal(repos.items.find((r) => r.name === 'keep/app')?.artifactCount, 2);
    const events = await serverQuery(server.dataDir, "select actor from events where type = 'artifact.deleted' and digest = ?", [a[0]!.digest]);
    assert.deepEqual(events.map((e) => e.actor), ['retention']);
  });

  test('latestPulled and pulledWithinDays: by last pull; never pulled ranks last and is never "within"', async () => {
    const [p1, p2, p3, never] = [await push('pulls/app', ['p1']), await push('pulls/app', ['p2']), await push('pulls/app', ['p3']), await push('pulls/app', ['never'])];
    await age(p1.digest, 30, 1);
    await age(p2.digest, 30, 20);
    await age(p3.digest, 30, 3);
    await age(never.digest, 1, null);
    await setPolicy('pulls', [rule({ kind: 'latestPulled', count: 2 })]);
    assert.deepEqual(outcomes((await run('pulls', true)).items), { [p1.digest]: 'retained', [p3.digest]: 'retained', [p2.digest]: 'would-delete', [never.digest]: 'would-delete' });
    await setPolicy('pulls', [rule({ kind: 'pulledWithinDays', days: 7 })]);
    const items = await dryThenReal('pulls');
    assert.deepEqual(outcomes(items), { [p1.digest]: 'retained', [p3.digest]: 'retained', [p2.digest]: 'deleted', [never.digest]: 'deleted' });
  });

  test('pushedWithinDays, always with a tag pattern, and a repository no rule selects left alone', async () => {
    const fresh = await push('ages/app', ['new']);
    const stale = await push('ages/app', ['old']);
    const release = await push('ages/app', ['v1']);
    const elsewhere = await push('ages/vendor/lib', ['ancient']);
    await age(fresh.digest, 2);
    await age(stale.digest, 40);
    await age(release.digest, 400);
    await age(elsewhere.digest, 900);
    await setPolicy('ages', [rule({ kind: 'pushedWithinDays', days: 7 }, { notRepo: 'vendor/**' }), rule({ kind: 'always' }, { repo: 'app', tag: 'v*' })]);
    const items = await dryThenReal('ages');
    assert.deepEqual(outcomes(items), { [fresh.digest]: 'retained', [stale.digest]: 'deleted', [release.digest]: 'retained', [elsewhere.digest]: 'retained' });
    assert.equal(items.find((i) => i.digest === elsewhere.digest)!.reason, 'no rule selects its repository');
    assert.equal(items.find((i) => i.digest === release.digest)!.rule, 2);
  });

  test('untagged artifacts and tag excludes: untagged go unless a rule includes them; "not latest" selects any artifact with another tag', async () => {
    const untaggedKept = await push('mixed/ci', []);
    const untaggedGone = await push('mixed/web', []);
    const onlyLatest = await push('mixed/web', ['latest']);
    const latestAndV2 = await push('mixed/web', ['latest2', 'v2']);
    await setPolicy('mixed', [rule({ kind: 'always' }, { repo: 'ci', untagged: true }), rule({ kind: 'always' }, { repo: 'web', notTag: 'latest' })]);
    const items = await dryThenReal('mixed');
    assert.deepEqual(outcomes(items), { [untaggedKept.digest]: 'retained', [untaggedGone.digest]: 'deleted', [onlyLatest.digest]: 'deleted', [latestAndV2.digest]: 'retained' });
  });

  test('an index is one artifact: its children are not judged on their own, stay with a kept index and go with a deleted one', async () => {
    const index = async (tag: string) => {
      const children = [await pushImage(url, 'index/multi', undefined), await pushImage(url, 'index/multi', undefined)];
      const bytes = manifestBytes(indexManifest({ manifests: children.map((c, i) => ({ ...c.descriptor, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } })) }));
      const digest = await pushManifest(url, 'index/multi', tag, bytes, MEDIA.ociIndex);
      return { digest, children: children.map((c) => c.digest) };
    };
    const kept = await index('v1');
    const dropped = await index('nightly');
    await setPolicy('index', [rule({ kind: 'always' }, { tag: 'v*' })]);
    const items = await dryThenReal('index');
    assert.deepEqual(items.map((i) => i.digest).sort(), [kept.digest, dropped.digest].sort(), 'only the indexes are artifacts');
    for (const child of kept.children) assert.equal(await manifestStatus('index/multi', child), 200);
    for (const child of dropped.children) assert.equal(await manifestStatus('index/multi', child), 404);
  });

  test('immutable artifacts are kept, decided by the immutability rule, and still take their place in the ranking', async () => {
    const v1 = await push('locked/app', ['v1']);
    const dev1 = await push('locked/app', ['dev1']);
    const dev2 = await push('locked/app', ['dev2']);
    await age(v1.digest, 30);
    await age(dev1.digest, 20);
    await age(dev2.digest, 10);
    const created = await expectStatus<{ id: number }>(await api(url, 'POST', '/projects/locked/immutability', { auth: admin, body: { tags: { pattern: 'v*' } } }), 201);
    await setPolicy('locked', [rule({ kind: 'latestPushed', count: 1 })]);
    const items = await dryThenReal('locked');
    assert.deepEqual(outcomes(items), { [v1.digest]: 'retained', [dev1.digest]: 'deleted', [dev2.digest]: 'retained' });
    const immutable = items.find((i) => i.digest === v1.digest)!;
    assert.deepEqual([immutable.basis, immutable.rule, immutable.reason], ['immutable', created.id, `immutable (rule ${created.id})`]);
  });

  test('a real run taken over after a crash mid-deletion finishes the job and reports every deletion once', async () => {
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'crash' } }), 201);
    const images: PushedImage[] = [];
    for (let i = 0; i < 6; i++) images.push(await push('crash/app', [`c${i}`]));
    for (let i = 0; i < 6; i++) await age(images[i]!.digest, 10 - i);
    await setPolicy('crash', [rule({ kind: 'latestPushed', count: 2 })]);
    // The run is driven here, over a second connection to the server's database, as a replica would.
    const meta = await openMetadataFor(configSchema.parse({ dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) }));
    try {
      const { id } = await meta.jobs.enqueue({ kind: 'retention-takeover-test', payload: {} });
      const viaApi = async (repository: string, digest: string) => {
        const res = await api(url, 'DELETE', `/repositories/${repository}/artifacts/${digest}`, { auth: admin });
        await res.arrayBuffer();
        if (res.status === 404) throw new RegistryError('MANIFEST_UNKNOWN');
        assert.equal(res.status, 204);
      };
      const context = (deleteArtifact: RetentionServices['retention']['deleteArtifact']) => ({
        services: { retention: { meta, deleteArtifact } },
        signal: new AbortController().signal,
        log: async () => undefined,
        progress: async () => undefined,
      });
      const job = (attempt: number) => ({ id, kind: 'retention', payload: { project: 'crash', dryRun: false }, attempt, maxAttempts: 3 });
      // Attempt 1 deletes two artifacts, then its replica dies: its other deletions never return.
      let begun = 0;
      let done = 0;
      void retention.run(
        job(1),
        context(async (repository, digest) => {
          if (begun++ >= 2) return new Promise<void>(() => undefined);
          await viaApi(repository, digest);
          done++;
        }),
      );
      for (let i = 0; i < 200 && done < 2; i++) await sleep(25);
      assert.equal(done, 2);
      assert.deepEqual(await meta.jobItems.counts(id), { pending: 4, retained: 2 }, 'the batch was recorded before anything was deleted');
      let progress: Record<string, unknown> = {};
      await retention.run(job(2), { ...context(viaApi), progress: async (p: Record<string, unknown>) => void (progress = p) });
      assert.deepEqual(await meta.jobItems.counts(id), { deleted: 4, retained: 2 });
      assert.deepEqual([progress.deleted, progress.retained, progress.total], [4, 2, 6]);
      const items = (await meta.jobItems.page(id, { offset: 0, limit: 100 })).items;
      assert.equal(new Set(items.map((i) => i.subject)).size, 6, 'each artifact reported once');
      for (let i = 0; i < 6; i++) assert.equal(await manifestStatus('crash/app', images[i]!.digest), i < 4 ? 404 : 200);
    } finally {
      await meta.close();
    }
  });

  test('a cron makes a schedule named retention:<project>; clearing the cron, the policy or the project removes it', async () => {
    const schedule = async (project: string) => serverQuery(server.dataDir, 'select kind, cron, payload from schedules where name = ?', [`retention:${project}`]);
    const set = await setPolicy('sched', [rule({ kind: 'latestPushed', count: 5 })], '0 3 * * *');
    assert.equal(set.cron, '0 3 * * *');
    assert.match(set.nextRunAt!, /T03:00:00\.000Z$/);
    assert.deepEqual(await schedule('sched'), [{ kind: 'retention', cron: '0 3 * * *', payload: '{"project":"sched","dryRun":false}' }]);
    await setPolicy('sched', [rule({ kind: 'latestPushed', count: 5 })], '30 4 * * 1');
    assert.equal((await schedule('sched'))[0]!.cron, '30 4 * * 1');
    await setPolicy('sched', [rule({ kind: 'latestPushed', count: 5 })], null);
    assert.deepEqual(await schedule('sched'), []);
    await setPolicy('sched', [rule({ kind: 'latestPushed', count: 5 })], '0 3 * * *');
    await expectStatus(await api(url, 'DELETE', '/projects/sched/retention', { auth: admin }), 204);
    assert.deepEqual(await schedule('sched'), []);
    await expectError(await api(url, 'GET', '/projects/sched/retention', { auth: admin }), 404, 'NOT_FOUND');
    await setPolicy('sched', [rule({ kind: 'latestPushed', count: 5 })], '0 3 * * *');
    await expectStatus(await api(url, 'DELETE', '/projects/sched', { auth: admin }), 204);
    assert.deepEqual(await schedule('sched'), []);
    // Audited, each change.
    const audit = await expectStatus<ListPage<{ action: string; project: string }>>(await api(url, 'GET', '/audit?project=sched&pageSize=100', { auth: admin }), 200);
    const actions = audit.items.map((a) => a.action);
    assert.equal(actions.filter((a) => a === 'retention.set').length, 5);
    assert.equal(actions.filter((a) => a === 'retention.delete').length, 1);
  });

  test('who may: members read, project administrators manage and run; others see nothing', async () => {
    await setPolicy('keep', [rule({ kind: 'latestPushed', count: 2 })], undefined, owner);
    await expectStatus(await api(url, 'GET', '/projects/keep/retention', { auth: dev }), 200);
    await expectStatus(await api(url, 'GET', '/projects/keep/retention/runs', { auth: dev }), 200);
    await expectError(await api(url, 'PUT', '/projects/keep/retention', { auth: dev, body: { rules: [] } }), 403, 'DENIED');
    await expectError(await api(url, 'DELETE', '/projects/keep/retention', { auth: dev }), 403, 'DENIED');
    await expectError(await api(url, 'POST', '/projects/keep/retention/runs', { auth: dev, body: { dryRun: true } }), 403, 'DENIED');
    await expectError(await api(url, 'GET', '/projects/keep/retention', { auth: outsider }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', '/projects/keep/retention/runs', { auth: outsider, body: {} }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/projects/keep/retention'), 401, 'UNAUTHORIZED');
    await expectError(await api(url, 'POST', '/projects/other/retention/runs', { auth: admin, body: {} }), 409, 'CONFLICT');
  });

  test("another project's run is not found under this one (IDOR), nor is a job of another kind", async () => {
    await setPolicy('other', [rule({ kind: 'always' })]);
    const { run: theirs } = await run('other', true);
    const { run: mine } = await run('keep', true, owner);
    for (const path of [`/projects/keep/retention/runs/${theirs.id}`, `/projects/keep/retention/runs/${theirs.id}/items`]) await expectError(await api(url, 'GET', path, { auth: owner }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', `/projects/keep/retention/runs/${theirs.id}/cancel`, { auth: owner }), 404, 'NOT_FOUND');
    await expectStatus(await api(url, 'GET', `/projects/keep/retention/runs/${mine.id}/items?outcome=retained`, { auth: dev }), 200);
    const job = await expectStatus<{ id: number }>(await api(url, 'POST', '/jobs', { auth: admin, body: { kind: 'verify-blobs' } }), 201);
    await expectError(await api(url, 'GET', `/projects/keep/retention/runs/${job.id}`, { auth: admin }), 404, 'NOT_FOUND');
    await expectInvalid(await api(url, 'GET', '/projects/keep/retention/runs/abc', { auth: owner }), 'id');
    await expectInvalid(await api(url, 'GET', `/projects/keep/retention/runs/${mine.id}/items?outcome=gone`, { auth: owner }), 'outcome');
    const history = await expectStatus<ListPage<Run>>(await api(url, 'GET', '/projects/keep/retention/runs', { auth: owner }), 200);
    assert.ok(history.items.every((r) => r.project === 'keep'));
    assert.ok(history.items.some((r) => r.id === mine.id) && !history.items.some((r) => r.id === theirs.id));
  });

  test('one run at a time per project: a second start while one is queued is a 409 naming it; a queued run is cancelled at once', async () => {
    // No job slots: runs stay queued, so nothing finishes one between the two requests.
    const idle = await startTestServer({ jobs: { concurrency: 0 } });
    try {
      await expectStatus(await api(idle.url, 'POST', '/projects', { auth: admin, body: { name: 'busy' } }), 201);
      await expectStatus(await api(idle.url, 'PUT', '/projects/busy/retention', { auth: admin, body: { rules: [rule({ kind: 'always' })] } }), 200);
      const first = await expectStatus<Run>(await api(idle.url, 'POST', '/projects/busy/retention/runs', { auth: admin, body: { dryRun: true } }), 201);
      assert.equal(first.state, 'queued');
      const env = await expectError(await api(idle.url, 'POST', '/projects/busy/retention/runs', { auth: admin, body: { dryRun: false } }), 409, 'CONFLICT');
      assert.match(env.errors[0]!.message, new RegExp(`\\(run ${first.id}\\)$`));
      const cancelled = await expectStatus<Run>(await api(idle.url, 'POST', `/projects/busy/retention/runs/${first.id}/cancel`, { auth: admin }), 200);
      assert.equal(cancelled.state, 'cancelled');
      await expectError(await api(idle.url, 'POST', `/projects/busy/retention/runs/${first.id}/cancel`, { auth: admin }), 409, 'CONFLICT');
      const second = await expectStatus<Run>(await api(idle.url, 'POST', '/projects/busy/retention/runs', { auth: admin, body: { dryRun: false } }), 201);
      assert.notEqual(second.id, first.id);
    } finally {
      await idle.close();
    }
  });

  test('hostile policies: refused with the field named, never echoed', async () => {
    const one = rule({ kind: 'latestPushed', count: 1 });
    const invalid = async (body: unknown, field: string) => {
      const env = await expectInvalid(await api(url, 'PUT', '/projects/keep/retention', { auth: owner, body }), field);
      assert.ok(!JSON.stringify(env).includes('<script>'));
    };
    await invalid({ rules: Array.from({ length: 16 }, () => one) }, 'rules');
    await invalid({ rules: [one], cron: '<script> * * * *' }, 'cron');
    await invalid({ rules: [one], cron: '* * * * *' }, 'cron');
    await invalid({ rules: [{ ...one, retain: { kind: '<script>' } }] }, 'rules.0.retain.kind');
    await invalid({ rules: [{ ...one, retain: { kind: 'latestPushed', count: 1e9 } }] }, 'rules.0.retain.count');
    await invalid({ rules: [{ ...one, tags: { pattern: '' } }] }, 'rules.0.tags.pattern');
    await invalid({ rules: [{ ...one, repositories: { pattern: 'x'.repeat(300) } }] }, 'rules.0.repositories.pattern');
    await invalid({ rules: [one], extra: '<script>' }, 'extra');
    await invalid({ rules: 'all' }, 'rules');
    const huge = { rules: [one], padding: 'x'.repeat(100_000) };
    const res = await api(url, 'PUT', '/projects/keep/retention', { auth: owner, body: huge });
    assert.equal(res.status, 413);
    await res.arrayBuffer();
    await expectInvalid(await api(url, 'POST', '/projects/keep/retention/runs', { auth: owner, body: { dryRun: 'yes' } }), 'dryRun');
  });
});
