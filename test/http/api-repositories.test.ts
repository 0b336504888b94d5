// The management API (/api/v1), part 3: repositories and artifacts (tags, platforms of an index,
// sizes, who pushed, last pull), tag/artifact/repository deletion, audit search — and the token
// service giving robots and personal tokens the right /v2 access for a real push and pull.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../support/server.ts';
import { expectError, indexManifest, jwtPayload, manifestBytes, pushImage, pushManifest, MEDIA, type PushedImage } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, nextLink, type ListPage } from '../support/api.ts';

const PASSWORD = 'repositories-test-password';

interface Artifact {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  tags: string[];
  platforms: { os: string; architecture: string; variant?: string }[];
  pushedBy: string | null;
  pushedAt: string;
  lastPulledAt: string | null;
}
interface AuditItem {
  time: string;
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  project: string | null;
  success: boolean;
  detail: Record<string, unknown> | null;
}

/** Bytes an image occupies: manifest, config and layers. */
function imageSize(img: PushedImage): number {
  return img.bytes.length + img.config.size + img.layers.reduce((n, l) => n + l.size, 0);
}

describe('management API: repositories, artifacts, audit, token service', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const dev = basic('dev', PASSWORD);
  const guest = basic('guest', PASSWORD);
  const outsider = basic('outsider', PASSWORD);

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const username of ['dev', 'guest', 'outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    for (const name of ['team', 'other']) await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/team/members', { auth: admin, body: { username: 'dev', role: 'developer' } }), 201);
    await expectStatus(await api(url, 'POST', '/projects/team/members', { auth: admin, body: { username: 'guest', role: 'guest' } }), 201);
  });
  after(() => server.close());

  test('artifacts of an index: platforms (attestations left out), total size, tags, pushed by, last pulled', async () => {
    const amd64 = await pushImage(url, 'team/multi', undefined);
    const arm64 = await pushImage(url, 'team/multi', undefined, { layerCount: 2 });
    const attestation = await pushImage(url, 'team/multi', undefined);
    const index = manifestBytes(
      indexManifest({
        manifests: [
          { ...amd64.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm64.descriptor, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } as { os: string; architecture: string } },
          { ...attestation.descriptor, platform: { os: 'unknown', architecture: 'unknown' } },
        ],
      }),
    );
    const digest = await pushManifest(url, 'team/multi', 'latest', index, MEDIA.ociIndex);

    const list = await expectStatus<ListPage<Artifact>>(await api(url, 'GET', '/repositories/team/multi/artifacts', { auth: dev }), 200);
    assert.equal(list.total, 1, 'platform images show under their index');
    const artifact = list.items[0]!;
    assert.equal(artifact.digest, digest);
    assert.equal(artifact.mediaType, MEDIA.ociIndex);
    assert.equal(artifact.artifactType, null);
    assert.deepEqual(artifact.tags, ['latest']);
    assert.deepEqual(artifact.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    assert.equal(artifact.size, index.length + imageSize(amd64) + imageSize(arm64) + imageSize(attestation));
    assert.equal(artifact.pushedBy, 'admin');
    assert.ok(Math.abs(Date.parse(artifact.pushedAt) - Date.now()) < 60_000);
    assert.equal(artifact.lastPulledAt, null);

    // A child image by digest, and the index by tag, with a pull recorded.
    const child = await expectStatus<Artifact>(await api(url, 'GET', `/repositories/team/multi/artifacts/${arm64.digest}`, { auth: dev }), 200);
    assert.equal(child.size, imageSize(arm64));
    assert.deepEqual(child.platforms, []);
    const pull = await fetch(`${url}/v2/team/multi/manifests/latest`, { headers: { Authorization: admin, Accept: MEDIA.ociIndex } });
    assert.equal(pull.status, 200);
    await pull.arrayBuffer();
    let pulled: Artifact | undefined;
    for (let i = 0; i < 50 && !pulled?.lastPulledAt; i++) {
      if (i > 0) await sleep(50);
      pulled = await expectStatus<Artifact>(await api(url, 'GET', '/repositories/team/multi/artifacts/latest', { auth: dev }), 200);
    }
    assert.ok(pulled?.lastPulledAt && Math.abs(Date.parse(pulled.lastPulledAt) - Date.now()) < 60_000, 'the pull is recorded');
    await expectError(await api(url, 'GET', '/repositories/team/multi/artifacts/nope', { auth: dev }), 404, 'NOT_FOUND');
    await expectInvalid(await api(url, 'GET', '/repositories/team/multi/artifacts/sha256:xyz', { auth: dev }), 'reference');
  });

  test('repositories list: per project or everything visible, with artifact counts; artifacts paginate with Link', async () => {
    for (const tag of ['a', 'b', 'c']) await pushImage(url, 'team/many', tag);
    await pushImage(url, 'other/secret', 'v1');
    const inTeam = await expectStatus<ListPage<{ name: string; project: string; artifactCount: number; createdAt: string }>>(await api(url, 'GET', '/repositories?project=team', { auth: guest }), 200);
    const counts = Object.fromEntries(inTeam.items.map((r) => [r.name, r.artifactCount]));
    assert.equal(counts['team/many'], 3);
    assert.equal(counts['team/multi'], 1);
    assert.ok(inTeam.items.every((r) => r.project === 'team'));
    const visible = await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/repositories', { auth: dev }), 200);
    assert.ok(!visible.items.some((r) => r.name.startsWith('other/')), 'no repositories of projects dev cannot see');
    assert.ok((await expectStatus<ListPage<{ name: string }>>(await api(url, 'GET', '/repositories?q=secret', { auth: admin }), 200)).items.some((r) => r.name === 'other/secret'));
    await expectError(await api(url, 'GET', '/repositories?project=other', { auth: dev }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/repositories/other/secret/artifacts', { auth: dev }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/repositories/other/secret/artifacts'), 401, 'UNAUTHORIZED');
    await expectError(await api(url, 'GET', '/repositories/team/none/artifacts', { auth: dev }), 404, 'NOT_FOUND');

    const first = await api(url, 'GET', '/repositories/team/many/artifacts?pageSize=2', { auth: dev });
    const next = nextLink(first);
    const page1 = await expectStatus<ListPage<Artifact>>(first, 200);
    assert.equal(page1.total, 3);
    assert.equal(page1.items.length, 2);
    assert.ok(next, 'a Link to the next page');
    const second = await fetch(`${url}${next}`, { headers: { Authorization: dev } });
    assert.equal(nextLink(second), undefined, 'no Link on the last page');
    const page2 = await expectStatus<ListPage<Artifact>>(second, 200);
    assert.deepEqual([...page1.items, ...page2.items].map((a) => a.tags[0]).sort(), ['a', 'b', 'c']);
  });

  test('deleting tags, artifacts and repositories needs repository.delete and is audited', async () => {
    const img = await pushImage(url, 'team/del', 'keep');
    await pushManifest(url, 'team/del', 'drop', img.bytes, img.mediaType);
    await expectError(await api(url, 'DELETE', '/repositories/team/del/tags/drop', { auth: dev }), 403, 'DENIED');
    await expectError(await api(url, 'DELETE', '/repositories/team/del/tags/drop', { auth: outsider }), 404, 'NOT_FOUND');
    assert.equal((await api(url, 'DELETE', '/repositories/team/del/tags/drop', { auth: admin })).status, 204);
    await expectError(await api(url, 'DELETE', '/repositories/team/del/tags/drop', { auth: admin }), 404, 'NOT_FOUND');
    assert.deepEqual((await expectStatus<Artifact>(await api(url, 'GET', `/repositories/team/del/artifacts/${img.digest}`, { auth: dev }), 200)).tags, ['keep']);

    await expectInvalid(await api(url, 'DELETE', '/repositories/team/del/artifacts/keep', { auth: admin }), 'reference');
    assert.equal((await api(url, 'DELETE', `/repositories/team/del/artifacts/${img.digest}`, { auth: admin })).status, 204);
    const gone = await fetch(`${url}/v2/team/del/manifests/${img.digest}`, { headers: { Authorization: admin } });
    assert.equal(gone.status, 404);
    await gone.arrayBuffer();
    await expectError(await api(url, 'DELETE', `/repositories/team/del/artifacts/${img.digest}`, { auth: admin }), 404, 'NOT_FOUND');

    await pushImage(url, 'team/del', 'again');
    // The repository name may also come percent-encoded.
    assert.equal((await api(url, 'DELETE', '/repositories/team%2Fdel', { auth: admin })).status, 204);
    await expectError(await api(url, 'GET', '/repositories/team/del/artifacts', { auth: admin }), 404, 'NOT_FOUND');

    const events = await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', '/audit?action=delete&project=team&resource=team/del', { auth: admin }), 200);
    assert.deepEqual(
      events.items.map((e) => [e.resourceType, e.resource]),
      [['repository', 'team/del'], ['artifact', `team/del@${img.digest}`], ['tag', 'team/del:drop']],
    );
    assert.deepEqual(events.items[1]!.detail, { digest: img.digest, tags: ['keep'] });
  });

  test('audit search: filters by actor, action, project, resource and time; non-admins see only their projects', async () => {
    const all = await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', '/audit?action=push&project=team&pageSize=500', { auth: admin }), 200);
    assert.ok(all.total > 0 && all.items.every((e) => e.action === 'push' && e.project === 'team' && e.success));
    const times = all.items.map((e) => Date.parse(e.time));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');

    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.equal((await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', `/audit?from=${future}`, { auth: admin }), 200)).total, 0);
    const since = await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', `/audit?action=push&project=team&from=${Date.now() - 3_600_000}&to=${encodeURIComponent(future)}&pageSize=500`, { auth: admin }), 200);
    assert.equal(since.total, all.total, 'milliseconds and ISO times both work');
    await expectInvalid(await api(url, 'GET', '/audit?from=yesterday', { auth: admin }), 'from');

    // dev (developer: log.list in team) sees team's events only — not other's, not logins.
    const forDev = await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', '/audit?pageSize=500', { auth: dev }), 200);
    assert.ok(forDev.total > 0);
    assert.ok(forDev.items.every((e) => e.project === 'team'), JSON.stringify(forDev.items.find((e) => e.project !== 'team')));
    assert.ok((await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', '/audit?project=other', { auth: admin }), 200)).total > 0);
    await expectError(await api(url, 'GET', '/audit?project=other', { auth: dev }), 404, 'NOT_FOUND');
    assert.equal((await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', '/audit', { auth: outsider }), 200)).total, 0);
    await expectError(await api(url, 'GET', '/audit'), 401, 'UNAUTHORIZED');
  });

  test('token service: a robot secret and a personal token get the right /v2 access for a real push and pull', async () => {
    const robot = await expectStatus<{ name: string; secret: string }>(
      await api(url, 'POST', '/robots', { auth: admin, body: { name: 'builder', project: 'team', permissions: [{ project: 'team', actions: ['pull', 'push'] }] } }),
      201,
    );
    const tokenFor = async (auth: string, scope: string) => {
      const res = await fetch(`${url}/service/token?service=berth&scope=${encodeURIComponent(scope)}`, { headers: { Authorization: auth } });
      const token = (await expectStatus<{ token: string }>(res, 200)).token;
      return { bearer: `Bearer ${token}`, actions: (jwtPayload(token).access as { actions: string[] }[])[0]?.actions ?? [] };
    };
    // The robot: asked for pull,push,delete on team, granted pull,push; nothing in "other".
    const asRobot = await tokenFor(basic(robot.name, robot.secret), 'repository:team/robot-built:pull,push,delete');
    assert.deepEqual([...asRobot.actions].sort(), ['pull', 'push']);
    const pushed = await pushImage(url, 'team/robot-built', 'v1', { auth: asRobot.bearer });
    const pull = await fetch(`${url}/v2/team/robot-built/manifests/v1`, { headers: { Authorization: asRobot.bearer, Accept: MEDIA.ociManifest } });
    assert.equal(pull.status, 200);
    assert.equal(Buffer.from(await pull.arrayBuffer()).toString(), pushed.bytes.toString());
    assert.deepEqual((await tokenFor(basic(robot.name, robot.secret), 'repository:other/secret:pull')).actions, []);
    const artifact = await expectStatus<Artifact>(await api(url, 'GET', '/repositories/team/robot-built/artifacts/v1', { auth: dev }), 200);
    assert.equal(artifact.pushedBy, 'robot$team+builder');

    // A developer's personal token: pull and push, never delete.
    const pat = await expectStatus<{ token: string }>(await api(url, 'POST', '/users/me/tokens', { auth: dev, body: { name: 'docker' } }), 201);
    const asDev = await tokenFor(basic('dev', pat.token), 'repository:team/dev-built:pull,push,delete');
    assert.deepEqual([...asDev.actions].sort(), ['pull', 'push']);
    const devImage = await pushImage(url, 'team/dev-built', 'v1', { auth: asDev.bearer });
    const devPull = await fetch(`${url}/v2/team/dev-built/manifests/${devImage.digest}`, { headers: { Authorization: asDev.bearer, Accept: MEDIA.ociManifest } });
    assert.equal(devPull.status, 200);
    await devPull.arrayBuffer();
    const del = await fetch(`${url}/v2/team/dev-built/manifests/${devImage.digest}`, { method: 'DELETE', headers: { Authorization: asDev.bearer } });
    await expectError(del, 403, 'DENIED');

    const pushes = await expectStatus<ListPage<AuditItem>>(await api(url, 'GET', `/audit?action=push&actor=${encodeURIComponent(robot.name)}`, { auth: admin }), 200);
    assert.deepEqual(pushes.items.map((e) => e.resource), ['team/robot-built:v1']);
  });
});
