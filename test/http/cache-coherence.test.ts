// Two replicas, A and B, on one PostgreSQL database and one blob storage: a change made through A
// is what B serves at once. Tags and manifests with no staleness at all (B is asked right after
// A answered); cached verdicts on credentials and project settings within a notification's trip
// (the change feed, src/metadata/changes.ts), asserted under a second.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminBasic, api, basic, expectStatus } from '../support/api.ts';
import { MEDIA, expectError, jwtPayload, pushImage, uniqueName } from '../support/oci.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startServerPair, type ServerPair, type TestServer } from '../support/server.ts';

const PASSWORD = 'coherence-password-1';
const ACCEPT = `${MEDIA.ociManifest}, ${MEDIA.dockerManifest}`;

describe('caches across replicas sharing one database', () => {
  let pair: ServerPair;
  let a: TestServer;
  let b: TestServer;
  const admin = adminBasic();

  before(async () => {
    pair = await startServerPair('coherence');
    ({ a, b } = pair);
  });

  after(async () => {
    await pair?.close();
  });

  async function manifestStatus(server: TestServer, repo: string, reference: string): Promise<{ status: number; digest: string | null }> {
    const res = await fetch(`${server.url}/v2/${repo}/manifests/${reference}`, { headers: { Authorization: admin, Accept: ACCEPT } });
    await res.arrayBuffer();
    return { status: res.status, digest: res.headers.get('docker-content-digest') };
  }

  async function tagsOn(server: TestServer, repo: string): Promise<string[]> {
    const res = await fetch(`${server.url}/v2/${repo}/tags/list`, { headers: { Authorization: admin } });
    return ((await expectStatus<{ tags: string[] }>(res, 200)).tags ?? []).sort();
  }

  /** Polls `check` every 10 ms for up to 3 s; the time it took to hold. */
  async function within(check: () => Promise<boolean>): Promise<number> {
    const started = performance.now();
    while (performance.now() - started < 3_000) {
      if (await check()) return performance.now() - started;
      await sleep(10);
    }
    assert.fail('not seen within 3 s');
  }

  test('a tag pushed through A is served by B at once, moved and deleted too', async () => {
    const repo = uniqueName('coherence/tags');
    const first = await pushImage(a.url, repo, 'v1');
    // B has looked it up and listed the tags: whatever it caches is warm now.
    assert.deepEqual(await manifestStatus(b, repo, 'v1'), { status: 200, digest: first.digest });
    assert.deepEqual(await tagsOn(b, repo), ['v1']);

    const second = await pushImage(a.url, repo, 'v2');
    assert.deepEqual(await manifestStatus(b, repo, 'v2'), { status: 200, digest: second.digest });
    assert.deepEqual(await tagsOn(b, repo), ['v1', 'v2']);

    const moved = await pushImage(a.url, repo, 'v1');
    assert.deepEqual(await manifestStatus(b, repo, 'v1'), { status: 200, digest: moved.digest }, 'a moved tag: the new manifest');

    const deleted = await fetch(`${a.url}/v2/${repo}/manifests/v2`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(deleted.status, 202, await deleted.text());
    assert.equal((await manifestStatus(b, repo, 'v2')).status, 404, 'a deleted tag: gone on B at once');
    assert.deepEqual(await tagsOn(b, repo), ['v1']);

    await expectStatus(await api(a.url, 'DELETE', `/repositories/${repo}/artifacts/${moved.digest}`, { auth: admin }), 204);
    assert.equal((await manifestStatus(b, repo, 'v1')).status, 404, 'a deleted manifest takes its tag with it, on B at once');
    assert.equal((await manifestStatus(b, repo, moved.digest)).status, 404);
    assert.deepEqual(await tagsOn(b, repo), []);
  });

  test('a repository deleted through A can be pushed again under its name through B', async () => {
    const repo = uniqueName('coherence/again');
    const old = await pushImage(a.url, repo, 'latest');
    assert.equal((await manifestStatus(b, repo, 'latest')).status, 200);
    assert.deepEqual(await tagsOn(b, repo), ['latest']);

    await expectStatus(await api(a.url, 'DELETE', `/repositories/${repo}`, { auth: admin }), 204);
    assert.equal((await manifestStatus(b, repo, 'latest')).status, 404);
    await expectError(await fetch(`${b.url}/v2/${repo}/tags/list`, { headers: { Authorization: admin } }), 404, 'NAME_UNKNOWN');

    const fresh = await pushImage(b.url, repo, 'latest');
    assert.notEqual(fresh.digest, old.digest);
    for (const server of [b, a]) {
      assert.deepEqual(await manifestStatus(server, repo, 'latest'), { status: 200, digest: fresh.digest });
      assert.deepEqual(await tagsOn(server, repo), ['latest']);
    }

    // Deleted and pushed again through A while B still knows the repository by its old id: B
    // serves the new one at once, whether or not it has heard of the deletion yet.
    await expectStatus(await api(a.url, 'DELETE', `/repositories/${repo}`, { auth: admin }), 204);
    const third = await pushImage(a.url, repo, 'latest');
    for (const server of [b, a]) {
      assert.deepEqual(await manifestStatus(server, repo, 'latest'), { status: 200, digest: third.digest });
      assert.deepEqual(await tagsOn(server, repo), ['latest']);
      const blob = await fetch(`${server.url}/v2/${repo}/blobs/${third.layers[0]!.digest}`, { method: 'HEAD', headers: { Authorization: admin } });
      assert.equal(blob.status, 200);
    }
  });

  test('a personal access token revoked through A: its access tokens are refused by B within a notification', async () => {
    const user = uniqueName('coherent');
    const project = uniqueName('cohproj');
    await expectStatus(await api(a.url, 'POST', '/users', { auth: admin, body: { username: user, password: PASSWORD } }), 201);
    await expectStatus(await api(a.url, 'POST', '/projects', { auth: admin, body: { name: project } }), 201);
    await expectStatus(await api(a.url, 'POST', `/projects/${project}/members`, { auth: admin, body: { username: user, role: 'developer' } }), 201);
    const repo = `${project}/app`;
    await pushImage(a.url, repo, 'v1');
    const pat = (await expectStatus<{ token: string }>(await api(a.url, 'POST', '/users/me/tokens', { auth: basic(user, PASSWORD), body: { name: 'ci' } }), 201)).token;
    rememberSecret(pat, user);

    const issued = await fetch(`${b.url}/service/token?service=berth&scope=repository:${repo}:pull`, { headers: { Authorization: basic(user, pat) } });
    const accessToken = (await expectStatus<{ token: string }>(issued, 200)).token;
    rememberSecret(accessToken);
    const pull = async () => {
      const res = await fetch(`${b.url}/v2/${repo}/manifests/v1`, { headers: { Authorization: `Bearer ${accessToken}`, Accept: ACCEPT } });
      await res.arrayBuffer();
      return res.status;
    };
    // Twice: the second answer comes from B's cached verdict.
    assert.equal(await pull(), 200);
    assert.equal(await pull(), 200);

    await expectStatus(await api(a.url, 'DELETE', '/users/me/tokens/ci', { auth: basic(user, PASSWORD) }), 204);
    const took = await within(async () => (await pull()) === 401);
    assert.ok(took < 1_000, `B refused the revoked token after ${Math.round(took)} ms`);
  });

  test('a project made private through A: B stops granting anonymous pulls within a notification', async () => {
    const project = uniqueName('cohpublic');
    await expectStatus(await api(a.url, 'POST', '/projects', { auth: admin, body: { name: project, public: true } }), 201);
    const repo = `${project}/app`;
    await pushImage(a.url, repo, 'v1');
    const anonymousGrant = async () => {
      const res = await fetch(`${b.url}/service/token?service=berth&scope=repository:${repo}:pull`);
      const token = (await expectStatus<{ token: string }>(res, 200)).token;
      const access = (jwtPayload(token).access ?? []) as { actions: string[] }[];
      return access.flatMap((x) => x.actions);
    };
    assert.deepEqual(await anonymousGrant(), ['pull']);
    assert.deepEqual(await anonymousGrant(), ['pull'], 'from B’s cached project');

    await expectStatus(await api(a.url, 'PATCH', `/projects/${project}`, { auth: admin, body: { public: false } }), 200);
    const took = await within(async () => (await anonymousGrant()).length === 0);
    assert.ok(took < 1_000, `B stopped granting after ${Math.round(took)} ms`);
  });
});
