// Replication against real registries, servers shared by the whole file: push Berth → CNCF
// Distribution (htpasswd), push Berth → Berth (token auth), pull Distribution → Berth; a multi-arch
// index with its children and a referrer copied; an event rule bringing a push to the destination
// within seconds; a second run with nothing changed sending no blob and no manifest body (counted
// by a proxy in front of the destination); override off leaving a diverged tag alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminBasic, api, expectStatus } from '../support/api.ts';
import { serverQuery } from '../support/backend.ts';
import { artifactManifest, descriptorOf, digestOf, indexManifest, manifestBytes, MEDIA, pushBlob, pushImage, pushManifest, randomBlob, type PushedImage } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { FaultProxy, startDistributionUpstream, type DistributionUpstream } from '../support/upstream.ts';

interface Execution {
  id: number;
  rule: string | null;
  trigger: string;
  state: string;
  error: string | null;
  progress: { phase: string; total: number; copied: number; skipped: number; diverged: number; deleted: number; failed: number; bytes: number } | null;
  outcomes?: Record<string, number>;
}
interface Task {
  subject: string;
  outcome: string;
  destination: string | null;
  digest: string | null;
  destinationDigest?: string;
  blobsCopied?: number;
  error?: string;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const admin = adminBasic();

describe('replication between registries', { timeout: 150_000 }, () => {
  const processes = new ProcessRegistry();
  let source: TestServer;
  let peer: TestServer;
  let peerProxy: FaultProxy;
  let dist: DistributionUpstream;
  let app: PushedImage;
  let multi: { digest: string; children: PushedImage[] };
  let referrer: string;

  async function call<T = Record<string, unknown>>(server: TestServer, method: string, path: string, status: number, body?: unknown): Promise<T> {
    return expectStatus<T>(await api(server.url, method, path, { auth: admin, ...(body !== undefined ? { body } : {}) }), status, `${method} ${path}`);
  }

  /** Starts an execution of `rule` and waits for it to end; the execution with its tasks. */
  async function run(rule: string): Promise<{ execution: Execution; tasks: Task[] }> {
    const started = await call<Execution>(source, 'POST', `/replication/rules/${rule}/executions`, 202);
    let execution = started;
    for (let i = 0; i < 300 && !FINAL.has(execution.state); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      execution = await call<Execution>(source, 'GET', `/replication/executions/${started.id}`, 200);
    }
    assert.ok(FINAL.has(execution.state), `execution ${started.id} ended`);
    const tasks = await call<{ items: Task[] }>(source, 'GET', `/replication/executions/${started.id}/tasks?pageSize=500`, 200);
    return { execution, tasks: tasks.items };
  }

  /** The digest `reference` has at the registry `url` (HEAD), or undefined when it is not there. */
  async function headAt(url: string, auth: string, repository: string, reference: string): Promise<string | undefined> {
    const res = await fetch(`${url}/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { Authorization: auth, Accept: [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.dockerList].join(', ') } });
    return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
  }

  before(async () => {
    [source, peer] = await Promise.all([startTestServer(), startTestServer()]);
    dist = await startDistributionUpstream(processes);
    peerProxy = await FaultProxy.start(peer.url, processes);
    for (const name of ['team', 'pulled']) await call(source, 'POST', '/projects', 201, { name });
    for (const name of ['site', 'diverge']) await call(peer, 'POST', '/projects', 201, { name });
    await call(source, 'POST', '/registries', 201, { name: 'dist', type: 'distribution', url: dist.proxy.url, username: dist.registry.username, password: dist.registry.password });
    // Berth answers /v2 with a Bearer challenge: the client goes through its token service.
    await call(source, 'POST', '/registries', 201, { name: 'peer', type: 'berth', url: peerProxy.url, username: 'admin', password: ADMIN_PASSWORD });

    app = await pushImage(source.url, 'team/app', '1.0', { auth: admin, layerCount: 2 });
    await pushManifest(source.url, 'team/app', '1.1', app.bytes, app.mediaType, admin);
    const children = [await pushImage(source.url, 'team/multi', undefined, { auth: admin }), await pushImage(source.url, 'team/multi', undefined, { auth: admin })];
    const index = manifestBytes(indexManifest({ manifests: children.map((c, i) => ({ ...c.descriptor, platform: { architecture: i === 0 ? 'amd64' : 'arm64', os: 'linux' } })) }));
    multi = { digest: await pushManifest(source.url, 'team/multi', 'v1', index, MEDIA.ociIndex, admin), children };
    const sbom = randomBlob(128);
    await pushBlob(source.url, 'team/app', sbom, { auth: admin });
    await pushBlob(source.url, 'team/app', Buffer.from('{}'), { auth: admin });
    const art = manifestBytes(artifactManifest({ artifactType: 'application/spdx+json', layers: [descriptorOf('application/spdx+json', sbom)], subject: app.descriptor }));
    referrer = await pushManifest(source.url, 'team/app', digestOf(art), art, MEDIA.ociManifest, admin);
  });

  after(async () => {
    await processes.stopAll();
    await Promise.all([source?.close(), peer?.close()]);
  });

  test('push Berth → Distribution: images and a multi-arch index; a second run sends no blob and no manifest body', async () => {
    await call(source, 'POST', '/replication/rules', 201, { name: 'to-dist', registry: 'dist', direction: 'push', filters: { repositories: [{ pattern: 'team/**' }] }, destination: { mode: 'replace', namespace: 'mirror' } });
    const first = await run('to-dist');
    assert.equal(first.execution.state, 'succeeded', JSON.stringify(first));
    assert.deepEqual(first.tasks.map((t) => [t.subject, t.outcome]).sort(), [['team/app:1.0', 'copied'], ['team/app:1.1', 'copied'], ['team/multi:v1', 'copied']]);
    assert.equal(first.execution.progress?.copied, 3);
    const distAuth = dist.auth;
    assert.equal(await headAt(dist.registry.url, distAuth, 'mirror/app', '1.0'), app.digest);
    assert.equal(await headAt(dist.registry.url, distAuth, 'mirror/app', '1.1'), app.digest);
    assert.equal(await headAt(dist.registry.url, distAuth, 'mirror/multi', 'v1'), multi.digest);
    for (const child of multi.children) assert.equal(await headAt(dist.registry.url, distAuth, 'mirror/multi', child.digest), child.digest, 'each child of the index');
    const log = await call<{ items: { message: string }[] }>(source, 'GET', `/replication/executions/${first.execution.id}/log`, 200);
    assert.ok(log.items.some((l) => /^copied team\/app:1\.0 → mirror\/app:1\.0 \(\d+ blobs?.*, [\d.]+ (B|KiB), [\d.]+ s\)$/.test(l.message)), log.items.map((l) => l.message).join('\n'));

    dist.proxy.reset();
    const second = await run('to-dist');
    assert.equal(second.execution.state, 'succeeded');
    assert.deepEqual(second.tasks.map((t) => t.outcome), ['skipped', 'skipped', 'skipped']);
    const sent = dist.proxy.seen.filter((r) => r.kind === 'upload' || (r.kind === 'blob' && r.method !== 'HEAD') || (r.kind === 'manifest' && r.method !== 'HEAD'));
    assert.deepEqual(sent, [], `no blob and no manifest body:\n${dist.proxy.describe(sent)}`);
    assert.ok(dist.proxy.seen.some((r) => r.kind === 'tags'), 'the destination tags were listed');
  });

  test('push Berth → Berth with token auth: index children and the referrer copied; override off leaves a diverged tag alone', async () => {
    await call(source, 'POST', '/replication/rules', 201, { name: 'to-peer', registry: 'peer', direction: 'push', filters: { repositories: [{ pattern: 'team/{app,multi}' }], tags: [{ pattern: '1.1', exclude: true }] }, destination: { mode: 'flatten', levels: 1, namespace: 'site' } });
    const { execution, tasks } = await run('to-peer');
    assert.equal(execution.state, 'succeeded', JSON.stringify({ execution, tasks }));
    assert.deepEqual(tasks.map((t) => [t.subject, t.outcome, t.destination]).sort(), [['team/app:1.0', 'copied', 'site/app:1.0'], ['team/multi:v1', 'copied', 'site/multi:v1']]);
    assert.ok(peerProxy.seen.some((r) => r.kind === 'token'), 'the token flow was used');
    assert.equal(await headAt(peer.url, admin, 'site/multi', 'v1'), multi.digest);
    const referrers = (await (await fetch(`${peer.url}/v2/site/app/referrers/${app.digest}`, { headers: { Authorization: admin } })).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(referrers.manifests.map((m) => m.digest), [referrer], 'the SBOM came with its subject');

    // The destination's own 1.0 differs: with override off it is left and reported.
    const theirs = await pushImage(peer.url, 'diverge/app', '1.0', { auth: admin });
    await call(source, 'POST', '/replication/rules', 201, { name: 'keep-theirs', registry: 'peer', direction: 'push', filters: { repositories: [{ pattern: 'team/app' }], tags: [{ pattern: '1.*' }] }, destination: { mode: 'replace', namespace: 'diverge' }, override: false });
    const kept = await run('keep-theirs');
    assert.equal(kept.execution.state, 'succeeded');
    const byTag = Object.fromEntries(kept.tasks.map((t) => [t.subject, t]));
    assert.equal(byTag['team/app:1.0']?.outcome, 'diverged');
    assert.equal(byTag['team/app:1.0']?.destinationDigest, theirs.digest);
    assert.equal(byTag['team/app:1.1']?.outcome, 'copied');
    assert.equal(await headAt(peer.url, admin, 'diverge/app', '1.0'), theirs.digest, 'their tag left alone');
    assert.equal(kept.execution.progress?.diverged, 1);
  });

  test('an event rule brings a push to the destination within seconds, and with replicateDeletes a deletion', async () => {
    await call(source, 'POST', '/replication/rules', 201, { name: 'live', registry: 'peer', direction: 'push', trigger: 'event', replicateDeletes: true, filters: { repositories: [{ pattern: 'team/live-*' }] }, destination: { mode: 'replace', namespace: 'site' } });
    const pushed = await pushImage(source.url, 'team/live-web', 'v7', { auth: admin });
    const started = Date.now();
    let there: string | undefined;
    while (Date.now() - started < 15_000 && there !== pushed.digest) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      there = await headAt(peer.url, admin, 'site/live-web', 'v7');
    }
    assert.equal(there, pushed.digest, 'replicated by the event rule');
    const history = await call<{ items: Execution[] }>(source, 'GET', '/replication/rules/live/executions', 200);
    assert.equal(history.items[0]?.trigger, 'event');

    there = await headAt(peer.url, admin, 'site/live-web', pushed.digest);
    assert.equal(there, pushed.digest, 'there by digest before the deletion');
    const deleted = await fetch(`${source.url}/v2/team/live-web/manifests/${pushed.digest}`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(deleted.status, 202);
    const since = Date.now();
    while (Date.now() - since < 15_000 && there !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      there = await headAt(peer.url, admin, 'site/live-web', pushed.digest);
    }
    assert.equal(there, undefined, 'deleted at the destination too');
  });

  test('an event-triggered push that fails while the destination is down is kept and replicated by the retry', async () => {
    await call(source, 'POST', '/replication/rules', 201, { name: 'retry', registry: 'peer', direction: 'push', trigger: 'event', filters: { repositories: [{ pattern: 'team/flaky' }] }, destination: { mode: 'replace', namespace: 'site' } });
    peerProxy.mode = '503';
    try {
      const pushed = await pushImage(source.url, 'team/flaky', 'v1', { auth: admin });
      // The first attempt gives up on the artifact (its task failed) and the execution fails.
      let first: Execution | undefined;
      // Queued with an error: retried after a failed attempt (queued without one: not yet run).
      for (let i = 0; i < 300 && !(first?.state === 'queued' && first.error !== null); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        first = (await call<{ items: Execution[] }>(source, 'GET', '/replication/rules/retry/executions', 200)).items[0];
      }
      assert.equal(first?.state, 'queued', `waiting for its retry after a failed attempt: ${JSON.stringify(first)}`);
      assert.match(first?.error ?? '', /could not be replicated/);
      peerProxy.mode = 'pass';
      const since = Date.now();
      let there: string | undefined;
      while (Date.now() - since < 40_000 && there !== pushed.digest) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        there = await headAt(peer.url, admin, 'site/flaky', 'v1');
      }
      assert.equal(there, pushed.digest, 'the retry replicated what the failed attempt could not');
    } finally {
      peerProxy.mode = 'pass';
    }
  });

  test('pull Distribution → Berth by a literal repository name (no catalog needed)', async () => {
    const image = await dist.push('vendor/tool', '2.3');
    await call(source, 'POST', '/replication/rules', 201, { name: 'from-dist', registry: 'dist', direction: 'pull', filters: { repositories: [{ pattern: 'vendor/tool' }] }, destination: { mode: 'replace', namespace: 'pulled' } });
    const { execution, tasks } = await run('from-dist');
    assert.equal(execution.state, 'succeeded', JSON.stringify({ execution, tasks }));
    assert.deepEqual(tasks.map((t) => [t.subject, t.outcome, t.destination]), [['vendor/tool:2.3', 'copied', 'pulled/tool:2.3']]);
    assert.equal(await headAt(source.url, admin, 'pulled/tool', '2.3'), image.digest);
    const layer = await fetch(`${source.url}/v2/pulled/tool/blobs/${image.layers[0]!.digest}`, { headers: { Authorization: admin } });
    assert.deepEqual(Buffer.from(await layer.arrayBuffer()), image.blobs.get(image.layers[0]!.digest));
    // The outbox tells the webhooks of the project it touched how it ended.
    const events = await serverQuery(source.dataDir, "select project, detail from events where type = 'replication.finished'");
    const finished = events.map((e): Record<string, unknown> => ({ project: e.project, ...(JSON.parse(String(e.detail)) as Record<string, unknown>) })).filter((d) => d.execution === execution.id);
    assert.deepEqual(
      finished.map((d) => ({ project: d.project, rule: d.rule, state: d.state, copied: d.copied, trigger: d.trigger })),
      [{ project: 'pulled', rule: 'from-dist', state: 'succeeded', copied: 1, trigger: 'manual' }],
    );
  });
});
