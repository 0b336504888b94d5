// Tag immutability against a real server: the rules API (who may, validation, limits, other
// projects' rule ids), and enforcement — the same digest pushed again succeeds, another digest is
// DENIED naming the rule, deleting an immutable tag, its artifact or its repository is refused,
// exclusions and disabled rules, and concurrent pushes of two digests to a new immutable tag.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { MEDIA, expectError, pushImage, pushManifest, putManifest, type PushedImage } from '../support/oci.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';

const PASSWORD = 'immutability-test-password';

interface Rule {
  id: number;
  repositories: { pattern: string; exclude: boolean };
  tags: { pattern: string; exclude: boolean };
  disabled: boolean;
  createdBy: string | null;
  createdAt: string;
}

describe('tag immutability', () => {
  let server: TestServer;
  let url: string;
  const admin = adminBasic();
  const owner = basic('imm-owner', PASSWORD);
  const dev = basic('imm-dev', PASSWORD);
  const outsider = basic('imm-outsider', PASSWORD);

  const addRule = async (project: string, body: Record<string, unknown>, auth = admin) =>
    expectStatus<Rule>(await api(url, 'POST', `/projects/${project}/immutability`, { auth, body }), 201, `add rule to ${project}`);
  const rulesOf = async (project: string, auth = admin) => (await expectStatus<ListPage<Rule>>(await api(url, 'GET', `/projects/${project}/immutability`, { auth }), 200)).items;
  /** The digest a tag points at now. */
  const digestOf = async (name: string, tag: string): Promise<string | null> => {
    const res = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: 'HEAD', headers: { Authorization: admin, Accept: MEDIA.ociManifest } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  };
  /** Asserts a DENIED that names `rule` (id and patterns), the repository and the tag. */
  const expectDenied = async (res: Response, rule: Rule, repository: string, tag: string): Promise<string> => {
    const env = await expectError(res, 403, 'DENIED');
    const { message, detail } = env.errors[0]!;
    for (const part of [`rule ${rule.id}`, JSON.stringify(rule.tags.pattern), JSON.stringify(rule.repositories.pattern), `"${repository}"`, `"${tag}"`]) {
      assert.ok(message.includes(part), `the message names ${part}: ${message}`);
    }
    assert.deepEqual((detail as { rule: unknown }).rule, { id: rule.id, repositories: rule.repositories, tags: rule.tags });
    return message;
  };

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const username of ['imm-owner', 'imm-dev', 'imm-outsider']) await expectStatus(await api(url, 'POST', '/users', { auth: admin, body: { username, password: PASSWORD } }), 201);
    for (const name of ['rules', 'limits', 'other', 'imm', 'excl']) await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name } }), 201);
    for (const project of ['rules', 'imm']) {
      await expectStatus(await api(url, 'POST', `/projects/${project}/members`, { auth: admin, body: { username: 'imm-owner', role: 'projectAdmin' } }), 201);
      await expectStatus(await api(url, 'POST', `/projects/${project}/members`, { auth: admin, body: { username: 'imm-dev', role: 'developer' } }), 201);
    }
  });
  after(() => server.close());

  test('API: project administrators change rules, members read them, others see nothing; changes are audited', async () => {
    const created = await addRule('rules', { tags: { pattern: 'v*' } }, owner);
    assert.deepEqual({ ...created, id: 0, createdAt: '' }, { id: 0, repositories: { pattern: '**', exclude: false }, tags: { pattern: 'v*', exclude: false }, disabled: false, createdBy: 'imm-owner', createdAt: '' });
    assert.deepEqual((await rulesOf('rules', dev)).map((r) => r.id), [created.id], 'a developer reads the rules');
    const denied = await expectError(await api(url, 'POST', '/projects/rules/immutability', { auth: dev, body: { tags: { pattern: 'x' } } }), 403, 'DENIED');
    assert.equal(denied.errors[0]!.message, 'project.update needed in project "rules"');
    await expectError(await api(url, 'PATCH', `/projects/rules/immutability/${created.id}`, { auth: dev, body: { disabled: true } }), 403, 'DENIED');
    await expectError(await api(url, 'DELETE', `/projects/rules/immutability/${created.id}`, { auth: dev }), 403, 'DENIED');
    // Not a member of a private project: as if it did not exist.
    await expectError(await api(url, 'GET', '/projects/rules/immutability', { auth: outsider }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'POST', '/projects/rules/immutability', { auth: outsider, body: { tags: { pattern: 'x' } } }), 404, 'NOT_FOUND');
    await expectError(await api(url, 'GET', '/projects/rules/immutability'), 401, 'UNAUTHORIZED');

    const updated = await expectStatus<Rule>(
      await api(url, 'PATCH', `/projects/rules/immutability/${created.id}`, { auth: owner, body: { repositories: { pattern: 'app/**' }, tags: { exclude: true }, disabled: true } }),
      200,
    );
    assert.deepEqual([updated.repositories, updated.tags, updated.disabled], [{ pattern: 'app/**', exclude: false }, { pattern: 'v*', exclude: true }, true]);
    await expectError(await api(url, 'POST', '/projects/rules/immutability', { auth: owner, body: { repositories: { pattern: 'app/**' }, tags: { pattern: 'v*', exclude: true } } }), 409, 'CONFLICT');

    const audit = async (action: string) =>
      (await expectStatus<ListPage<{ actor: string; resource: string; project: string; detail: Record<string, unknown> }>>(await api(url, 'GET', `/audit?action=${action}&project=rules`, { auth: admin }), 200)).items;
    const [createdEvent] = await audit('immutability.create');
    assert.deepEqual([createdEvent!.actor, createdEvent!.resource, createdEvent!.detail], ['imm-owner', String(created.id), { repositories: { pattern: '**', exclude: false }, tags: { pattern: 'v*', exclude: false }, disabled: false }]);
    const [updatedEvent] = await audit('immutability.update');
    assert.deepEqual(updatedEvent!.detail.previous, { repositories: { pattern: '**', exclude: false }, tags: { pattern: 'v*', exclude: false }, disabled: false });
    await expectStatus(await api(url, 'DELETE', `/projects/rules/immutability/${created.id}`, { auth: owner }), 204);
    assert.equal((await audit('immutability.delete')).length, 1);
    assert.deepEqual(await rulesOf('rules'), []);
  });

  test('API: hostile input is refused naming the field, never echoed', async () => {
    const post = (body: unknown) => api(url, 'POST', '/projects/rules/immutability', { auth: owner, body });
    const bell = `v\u0007${'x'.repeat(10)}`;
    const cases: [unknown, string][] = [
      [{ tags: { pattern: 'v'.repeat(256) } }, 'tags.pattern'],
      [{ tags: { pattern: bell } }, 'tags.pattern'],
      [{ tags: { pattern: '{a,{b,c}}' } }, 'tags.pattern'],
      [{ tags: { pattern: 'a}' } }, 'tags.pattern'],
      [{ tags: { pattern: '' } }, 'tags.pattern'],
      [{ tags: { pattern: 'v*' }, repositories: { pattern: '{x' } }, 'repositories.pattern'],
      [{ tags: { pattern: 42 } }, 'tags.pattern'],
      [{ tags: { pattern: 'v*', exclude: 'yes' } }, 'tags.exclude'],
      [{ tags: { pattern: 'v*' }, priority: 1 }, 'priority'],
      [{ repositories: { pattern: '**' } }, 'tags'],
    ];
    for (const [body, field] of cases) {
      const env = await expectInvalid(await post(body), field);
      assert.ok(!env.errors[0]!.message.includes('\u0007') && !env.errors[0]!.message.includes('v'.repeat(256)), `not echoed: ${env.errors[0]!.message}`);
    }
    // The body limit is 64 KiB: a pattern of 60 000 characters is read, and refused by length.
    await expectInvalid(await post({ tags: { pattern: '*'.repeat(60_000) } }), 'tags.pattern');
    for (const id of ['abc', '0', '-1', '1.5', '9'.repeat(20), '1%00']) {
      await expectInvalid(await api(url, 'PATCH', `/projects/rules/immutability/${id}`, { auth: owner, body: { disabled: true } }), 'id');
    }
    await expectError(await api(url, 'PATCH', '/projects/rules/immutability/999999', { auth: owner, body: { disabled: true } }), 404, 'NOT_FOUND');
    assert.deepEqual(await rulesOf('rules'), []);
  });

  test("API: a rule id of another project is not found through this one (nor changed, nor deleted); 15 rules at most, also when added at once", async () => {
    const foreign = await addRule('other', { tags: { pattern: 'release-*' } });
    for (const [method, body] of [['PATCH', { disabled: true }], ['DELETE', undefined]] as const) {
      await expectError(await api(url, method, `/projects/rules/immutability/${foreign.id}`, { auth: owner, ...(body ? { body } : {}) }), 404, 'NOT_FOUND');
      await expectError(await api(url, method, `/projects/other/immutability/${foreign.id}`, { auth: owner, ...(body ? { body } : {}) }), 404, 'NOT_FOUND');
    }
    assert.deepEqual(await rulesOf('other'), [foreign], 'the rule of "other" is untouched');

    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => api(url, 'POST', '/projects/limits/immutability', { auth: admin, body: { tags: { pattern: `t${i}-*` } } })));
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(15).fill(201), ...Array(5).fill(409)]);
    for (const res of answers.filter((r) => r.status === 409)) assert.match((await expectError(res, 409, 'CONFLICT')).errors[0]!.message, /15 immutability rules/);
    assert.equal((await rulesOf('limits')).length, 15);
  });

  test('push: the same digest again succeeds (CI re-runs), another digest is DENIED naming the rule; other tags move', async () => {
    const rule = await addRule('imm', { tags: { pattern: 'v*' } }, owner);
    const a = await pushImage(url, 'imm/app', 'v1');
    await pushManifest(url, 'imm/app', 'v1', a.bytes, a.mediaType);
    await pushManifest(url, 'imm/app', 'v1', a.bytes, a.mediaType, dev);
    const b = await pushImage(url, 'imm/app', 'latest');
    const message = await expectDenied(await putManifest(url, 'imm/app', 'v1', b.bytes, b.mediaType), rule, 'imm/app', 'v1');
    assert.match(message, /cannot be moved to another digest/);
    await expectDenied(await putManifest(url, 'imm/app', 'v1', b.bytes, b.mediaType, dev), rule, 'imm/app', 'v1');
    assert.equal(await digestOf('imm/app', 'v1'), a.digest, 'v1 still points at the first image');
    // Tags no rule covers move as ever; one pushed by digest is untouched by rules.
    await pushManifest(url, 'imm/app', 'latest', a.bytes, a.mediaType);
    assert.equal(await digestOf('imm/app', 'latest'), a.digest);
    await pushManifest(url, 'imm/app', b.digest, b.bytes, b.mediaType);
    // A new immutable tag on an existing artifact is created once.
    await pushManifest(url, 'imm/app', 'v2', b.bytes, b.mediaType);
    await expectDenied(await putManifest(url, 'imm/app', 'v2', a.bytes, a.mediaType), rule, 'imm/app', 'v2');
  });

  test('a hostile but valid pattern does not stall pushes (patterns match in linear time)', async () => {
    const hostile = await addRule('imm', { tags: { pattern: `${'*a'.repeat(60)}*b` } }, owner);
    const tag = 'a'.repeat(128);
    const image = await pushImage(url, 'imm/hostile', undefined);
    const res = await fetch(`${url}/v2/imm/hostile/manifests/${tag}`, {
      method: 'PUT',
      headers: { Authorization: admin, 'Content-Type': image.mediaType },
      body: image.bytes,
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 201, await res.text());
    await expectStatus(await api(url, 'DELETE', `/projects/imm/immutability/${hostile.id}`, { auth: owner }), 204);
  });

  test('deletions: an immutable tag, an artifact carrying one, its repository — refused naming the rule; other tags and artifacts go', async () => {
    const [rule] = (await rulesOf('imm')).filter((r) => r.tags.pattern === 'v*');
    assert.ok(rule);
    const c = await pushImage(url, 'imm/del', 'v5');
    await pushManifest(url, 'imm/del', 'extra', c.bytes, c.mediaType);
    const oci = (reference: string) => fetch(`${url}/v2/imm/del/manifests/${reference}`, { method: 'DELETE', headers: { Authorization: admin } });
    await expectDenied(await oci('v5'), rule, 'imm/del', 'v5');
    await expectDenied(await api(url, 'DELETE', '/repositories/imm/del/tags/v5', { auth: owner }), rule, 'imm/del', 'v5');
    const byDigest = await expectDenied(await oci(c.digest), rule, 'imm/del', 'v5');
    assert.match(byDigest, /artifact/);
    await expectDenied(await api(url, 'DELETE', `/repositories/imm%2Fdel/artifacts/${c.digest}`, { auth: owner }), rule, 'imm/del', 'v5');
    const repo = await expectDenied(await api(url, 'DELETE', '/repositories/imm%2Fdel', { auth: owner }), rule, 'imm/del', 'v5');
    assert.match(repo, /repository "imm\/del" holds/);
    assert.equal(await digestOf('imm/del', 'v5'), c.digest, 'the tag is still there');
    // Another tag of the same artifact is deletable (as in Harbor); so is an artifact without immutable tags.
    await expectStatus(await api(url, 'DELETE', '/repositories/imm/del/tags/extra', { auth: owner }), 204);
    const d = await pushImage(url, 'imm/del', 'latest');
    assert.equal((await oci(d.digest)).status, 202);
    // A repository without immutable tags is deleted as ever.
    await pushImage(url, 'imm/free', 'latest');
    await expectStatus(await api(url, 'DELETE', '/repositories/imm%2Ffree', { auth: owner }), 204);
    // The refusals removed nothing: the artifact is still listed with its immutable tag.
    const artifacts = await expectStatus<ListPage<{ digest: string; tags: string[] }>>(await api(url, 'GET', '/repositories/imm%2Fdel/artifacts', { auth: owner }), 200);
    assert.deepEqual(artifacts.items.map((x) => [x.digest, x.tags]), [[c.digest, ['v5']]]);
  });

  test('exclusions and disabled rules: excluded repositories and tags stay mutable; a disabled rule protects nothing until enabled', async () => {
    const notScratch = await addRule('excl', { repositories: { pattern: 'scratch*', exclude: true }, tags: { pattern: 'release-*' } });
    const toolsButDev = await addRule('excl', { repositories: { pattern: 'tools' }, tags: { pattern: 'dev-*', exclude: true } });
    const move = async (name: string, tag: string): Promise<[PushedImage, Response]> => {
      await pushImage(url, name, tag);
      const other = await pushImage(url, name, undefined);
      return [other, await putManifest(url, name, tag, other.bytes, other.mediaType)];
    };
    assert.equal((await move('excl/scratch-1', 'release-1'))[1].status, 201, 'an excluded repository');
    await expectDenied((await move('excl/app', 'release-1'))[1], notScratch, 'excl/app', 'release-1');
    await expectDenied((await move('excl/tools', 'stable'))[1], toolsButDev, 'excl/tools', 'stable');
    assert.equal((await move('excl/tools', 'dev-1'))[1].status, 201, 'an excluded tag');

    await expectStatus(await api(url, 'PATCH', `/projects/excl/immutability/${notScratch.id}`, { auth: admin, body: { disabled: true } }), 200);
    const [moved, res] = await move('excl/app', 'release-1');
    assert.equal(res.status, 201, 'the rule is disabled');
    assert.equal(await digestOf('excl/app', 'release-1'), moved.digest);
    await expectStatus(await api(url, 'PATCH', `/projects/excl/immutability/${notScratch.id}`, { auth: admin, body: { disabled: false } }), 200);
    const again = await pushImage(url, 'excl/app', undefined);
    await expectDenied(await putManifest(url, 'excl/app', 'release-1', again.bytes, again.mediaType), notScratch, 'excl/app', 'release-1');

    await expectStatus(await api(url, 'DELETE', `/projects/excl/immutability/${toolsButDev.id}`, { auth: admin }), 204);
    assert.equal((await move('excl/tools', 'stable'))[1].status, 201, 'the rule is gone');
  });

  test('concurrent pushes of two digests to a new immutable tag: exactly one wins, the other is DENIED', async () => {
    const [rule] = (await rulesOf('imm')).filter((r) => r.tags.pattern === 'v*');
    assert.ok(rule);
    for (let round = 0; round < 6; round++) {
      const tag = `v-race-${round}`;
      const [x, y] = [await pushImage(url, 'imm/race', undefined), await pushImage(url, 'imm/race', undefined)];
      const [rx, ry] = await Promise.all([putManifest(url, 'imm/race', tag, x.bytes, x.mediaType), putManifest(url, 'imm/race', tag, y.bytes, y.mediaType)]);
      assert.deepEqual([rx.status, ry.status].sort(), [201, 403], `round ${round}: ${rx.status} ${ry.status}`);
      const [winner, loser] = rx.status === 201 ? [x, ry] : [y, rx];
      await expectDenied(loser, rule, 'imm/race', tag);
      assert.equal(await digestOf('imm/race', tag), winner.digest);
    }
    // The same digest pushed twice at once to a new immutable tag: both succeed.
    const z = await pushImage(url, 'imm/race', undefined);
    const both = await Promise.all([1, 2].map(() => putManifest(url, 'imm/race', 'v-same', z.bytes, z.mediaType)));
    assert.deepEqual(both.map((r) => r.status), [201, 201]);
  });

  test('a deletion racing a push of an immutable tag never takes the tag the push was acknowledged for', async () => {
    for (let round = 0; round < 6; round++) {
      const name = round % 2 === 0 ? 'imm/race-del' : `imm/race-repo-${round}`;
      const tag = `v-del-${round}`;
      const e = await pushImage(url, name, undefined);
      // Even rounds delete the artifact by digest, odd rounds the whole repository.
      const deletion = round % 2 === 0
        ? fetch(`${url}/v2/${name}/manifests/${e.digest}`, { method: 'DELETE', headers: { Authorization: admin } })
        : api(url, 'DELETE', `/repositories/${encodeURIComponent(name)}`, { auth: admin });
      const [pushed, deleted] = await Promise.all([putManifest(url, name, tag, e.bytes, e.mediaType), deletion]);
      const pushText = await pushed.text();
      const deleteText = await deleted.text();
      assert.ok([201, 404].includes(pushed.status), `round ${round} push: ${pushed.status} ${pushText}`);
      assert.ok([202, 204, 403].includes(deleted.status), `round ${round} deletion: ${deleted.status} ${deleteText}`);
      if (pushed.status === 201) assert.equal(await digestOf(name, tag), e.digest, `round ${round}: the acknowledged tag is there (deletion ${deleted.status})`);
      if (deleted.status === 403) assert.match(deleteText, /immutable/);
    }
  });
});
