// The authorization matrix: every role × every action × a public and a private project, asserted
// through the real token service + /v2 and the real management API. The expected table is written
// out here from Harbor's "User Permissions By Role", independently of src/auth/roles.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serverQuery } from '../support/backend.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { jwtPayload, pushImage, randomBlob, digestOf } from '../support/oci.ts';

type Who = 'admin' | 'projectAdmin' | 'maintainer' | 'developer' | 'guest' | 'limitedGuest' | 'outsider' | 'anonymous';
type Action = 'pull' | 'push' | 'delete' | 'list-members' | 'manage-members' | 'read-logs' | 'list-robots' | 'manage-robots' | 'update-project';

/** ✓ per role for a PRIVATE project (Harbor's matrix). */
const PRIVATE: Record<Action, Who[]> = {
  pull: ['admin', 'projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'],
  push: ['admin', 'projectAdmin', 'maintainer', 'developer'],
  delete: ['admin', 'projectAdmin', 'maintainer'],
  'list-members': ['admin', 'projectAdmin', 'maintainer', 'developer', 'guest'],
  'manage-members': ['admin', 'projectAdmin'],
  'read-logs': ['admin', 'projectAdmin', 'maintainer', 'developer', 'guest'],
  'list-robots': ['admin', 'projectAdmin', 'maintainer'],
  'manage-robots': ['admin', 'projectAdmin'],
  'update-project': ['admin', 'projectAdmin'],
};
/** A public project adds pull (and seeing it) for everyone, anonymous callers included. */
const PUBLIC: Record<Action, Who[]> = { ...PRIVATE, pull: [...PRIVATE.pull, 'outsider', 'anonymous'] };

const PASSWORD = 'matrix-password-1';
const ROLES = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const;
const EVERYONE: Who[] = ['admin', ...ROLES, 'outsider', 'anonymous'];

describe('authorization matrix: roles × actions × public/private', () => {
  let server: TestServer;
  let url: string;
  const prefix = `m${Date.now().toString(36)}`;
  const users: Record<string, string> = {}; // role → username

  const basic = (who: Who) => (who === 'admin' ? adminBasic() : who === 'anonymous' ? undefined : `Basic ${Buffer.from(`${users[who]}:${PASSWORD}`).toString('base64')}`);

  async function api(method: string, path: string, who: Who, body?: unknown): Promise<Response> {
    const auth = basic(who);
    return fetch(`${url}/api/v1${path}`, {
      method,
      headers: { ...(auth ? { Authorization: auth } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  }

  async function must(res: Response, status: number, what: string): Promise<unknown> {
    const text = await res.text();
    assert.equal(res.status, status, `${what}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** The actions a docker-style token request grants `who` on `repository`. */
  async function granted(who: Who, repository: string, actions: string): Promise<string[]> {
    const auth = basic(who);
    const res = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:${actions}`, { headers: auth ? { Authorization: auth } : {} });
    const body = (await must(res, 200, `token for ${who}`)) as { token: string };
    const access = (jwtPayload(body.token).access ?? []) as { name: string; actions: string[] }[];
    return access.find((a) => a.name === repository)?.actions ?? [];
  }

  async function tokenFor(who: Who, repository: string, actions: string): Promise<string> {
    const auth = basic(who);
    const res = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:${actions}`, { headers: auth ? { Authorization: auth } : {} });
    return `Bearer ${((await res.json()) as { token: string }).token}`;
  }

  before(async () => {
    server = await startTestServer();
    url = server.url;
    for (const who of [...ROLES, 'outsider'] as const) {
      users[who] = `${prefix}-${who.toLowerCase()}`;
      await must(await api('POST', '/users', 'admin', { username: users[who], password: PASSWORD }), 201, `create ${who}`);
    }
    for (const visibility of ['private', 'public'] as const) {
      const project = `${prefix}-${visibility}`;
      await must(await api('POST', '/projects', 'admin', { name: project, public: visibility === 'public' }), 201, `create ${project}`);
      for (const role of ROLES) await must(await api('POST', `/projects/${project}/members`, 'admin', { username: users[role], role }), 201, `add ${role}`);
      await pushImage(url, `${project}/app`, 'v1');
    }
  });
  after(() => server.close());

  for (const visibility of ['private', 'public'] as const) {
    const table = visibility === 'public' ? PUBLIC : PRIVATE;
    describe(`${visibility} project`, () => {
      const project = () => `${prefix}-${visibility}`;

      for (const who of EVERYONE) {
        test(`${who}: token scopes are the intersection of what is asked and what the role allows`, async () => {
          const actions = await granted(who, `${project()}/app`, 'pull,push,delete');
          const expected = (['pull', 'push', 'delete'] as const).filter((a) => table[a].includes(who));
          assert.deepEqual([...actions].sort(), [...expected].sort());
        });

        test(`${who}: /v2 pull, push and delete do exactly what the matrix says`, async () => {
          const repository = `${project()}/app`;
          const token = await tokenFor(who, repository, 'pull,push,delete');
          const pull = await fetch(`${url}/v2/${repository}/manifests/v1`, { headers: { Authorization: token, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
          await pull.arrayBuffer();
          assert.equal(pull.status, table.pull.includes(who) ? 200 : who === 'anonymous' ? 401 : 403, `pull by ${who}`);

          const blob = randomBlob(64);
          const push = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', headers: { Authorization: token }, body: blob });
          await push.arrayBuffer();
          const canPush = table.push.includes(who);
          assert.equal(push.status, canPush ? 201 : who === 'anonymous' ? 401 : 403, `push by ${who}`);

          if (table.delete.includes(who)) {
            // Deleting a tag of its own so the next test still finds v1.
            const tag = `del-${who}`;
            await pushImage(url, repository, tag);
            const del = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { method: 'DELETE', headers: { Authorization: token } });
            assert.equal(del.status, 202, `delete by ${who}`);
          } else {
            const del = await fetch(`${url}/v2/${repository}/manifests/v1`, { method: 'DELETE', headers: { Authorization: token } });
            await del.arrayBuffer();
            assert.equal(del.status, who === 'anonymous' ? 401 : 403, `delete by ${who}`);
          }
        });

        test(`${who}: management API permissions`, async () => {
          const p = project();
          const status = async (res: Response) => {
            await res.arrayBuffer();
            return res.status;
          };
          // Who may not even see a private project gets 404 (its name is not leaked); otherwise 403.
          const sees = visibility === 'public' || table.pull.includes(who);
          const refused = who === 'anonymous' && visibility === 'private' ? [401, 404] : sees ? [403] : [404];
          const check = (action: Action, got: number, ok: number) =>
            table[action].includes(who)
              ? assert.equal(got, ok, `${action} by ${who}`)
              : assert.ok(refused.includes(got) || (who === 'anonymous' && got === 401), `${action} by ${who}: got ${got}, expected ${refused.join('/')}`);

          check('list-members', await status(await api('GET', `/projects/${p}/members`, who)), 200);
          check('read-logs', await status(await api('GET', `/audit?project=${p}`, who)), 200);
          check('list-robots', await status(await api('GET', `/robots?project=${p}`, who)), 200);
          check('update-project', await status(await api('PATCH', `/projects/${p}`, who, { quotaBytes: null })), 200);
          const robotName = `r${who.toLowerCase().slice(0, 6)}${Math.floor(Math.random() * 1e6)}`;
          const robot = await api('POST', '/robots', who, { name: robotName, project: p, permissions: [{ project: p, actions: ['pull'] }] });
          check('manage-robots', await status(robot), 201);
          const add = await api('POST', `/projects/${p}/members`, who, { username: users.outsider, role: 'guest' });
          check('manage-members', await status(add), 201);
          if (add.status === 201) await must(await api('DELETE', `/projects/${p}/members/${users.outsider}`, 'admin'), 204, 'undo member');
        });
      }
    });
  }

  test('scope escalation: a pull-only caller asking for push gets a pull-only token, and the push is DENIED', async () => {
    const repository = `${prefix}-private/app`;
    const token = await tokenFor('guest', repository, 'pull,push');
    const access = (jwtPayload(token.slice(7)).access as { actions: string[] }[])[0]!.actions;
    assert.deepEqual(access, ['pull']);
    const blob = randomBlob(32);
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', headers: { Authorization: token }, body: blob });
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.equal(res.status, 403);
    assert.equal(body.errors[0]!.code, 'DENIED');
  });

  test('the catalog shows only what the caller may see', async () => {
    const names = async (who: Who) => {
      const token = await (async () => {
        const auth = basic(who);
        const res = await fetch(`${url}/service/token?service=berth&scope=registry:catalog:*`, { headers: auth ? { Authorization: auth } : {} });
        return ((await res.json()) as { token: string }).token;
      })();
      const res = await fetch(`${url}/v2/_catalog?n=10000`, { headers: { Authorization: `Bearer ${token}` } });
      if (res.status !== 200) return res.status;
      return ((await res.json()) as { repositories: string[] }).repositories.filter((n) => n.startsWith(prefix));
    };
    assert.deepEqual(await names('admin'), [`${prefix}-private/app`, `${prefix}-public/app`]);
    assert.deepEqual(await names('developer'), [`${prefix}-private/app`, `${prefix}-public/app`]);
    assert.deepEqual(await names('outsider'), [`${prefix}-public/app`]);
    assert.equal(await names('anonymous'), 401);
    // The API's project list follows the same rule.
    const listed = async (who: Who) => ((await (await api('GET', `/projects?q=${prefix}`, who)).json()) as { items: { name: string }[] }).items.map((p) => p.name);
    assert.deepEqual(await listed('outsider'), [`${prefix}-public`]);
    assert.deepEqual(await listed('anonymous'), [`${prefix}-public`]);
    assert.deepEqual(await listed('guest'), [`${prefix}-private`, `${prefix}-public`]);
  });

  describe('robots and personal access tokens', () => {
    const login = (name: string, secret: string) => `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
    async function robotToken(name: string, secret: string, repository: string, actions: string): Promise<Response> {
      return fetch(`${url}/service/token?service=berth&scope=repository:${repository}:${actions}`, { headers: { Authorization: login(name, secret) } });
    }
    async function createRobot(name: string, actions: string[]): Promise<{ name: string; secret: string }> {
      const p = `${prefix}-private`;
      return (await must(await api('POST', '/robots', 'projectAdmin', { name, project: p, permissions: [{ project: p, actions }] }), 201, `robot ${name}`)) as { name: string; secret: string };
    }

    test('a pull-only robot pulls, and its push is DENIED', async () => {
      const robot = await createRobot('puller', ['pull']);
      assert.match(robot.name, /^robot\$.+\+puller$/);
      const repository = `${prefix}-private/app`;
      const res = await robotToken(robot.name, robot.secret, repository, 'pull,push');
      const token = ((await must(res, 200, 'robot token')) as { token: string }).token;
      assert.deepEqual((jwtPayload(token).access as { actions: string[] }[])[0]!.actions, ['pull']);
      const pull = await fetch(`${url}/v2/${repository}/manifests/v1`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(pull.status, 200);
      const blob = randomBlob(16);
      const push = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: blob });
      assert.equal(push.status, 403);
    });

    test('a push robot pushes an image; disabled, it cannot log in; refreshed, only the new secret works', async () => {
      const robot = await createRobot('pusher', ['pull', 'push']);
      const repository = `${prefix}-private/ci`;
      await pushImage(url, repository, 'build-1', { auth: login(robot.name, robot.secret) });
      const encoded = encodeURIComponent(robot.name);
      await must(await api('PATCH', `/robots/${encoded}`, 'projectAdmin', { disabled: true }), 200, 'disable');
      assert.equal((await robotToken(robot.name, robot.secret, repository, 'pull')).status, 401);
      await must(await api('PATCH', `/robots/${encoded}`, 'projectAdmin', { disabled: false }), 200, 'enable');
      const refreshed = (await must(await api('POST', `/robots/${encoded}/refresh`, 'projectAdmin'), 200, 'refresh')) as { secret: string };
      assert.equal((await robotToken(robot.name, robot.secret, repository, 'pull')).status, 401, 'the old secret stops working');
      assert.equal((await robotToken(robot.name, refreshed.secret, repository, 'pull')).status, 200);
      // The audit log says which robot pushed.
      const audit = (await must(await api('GET', `/audit?project=${prefix}-private&actor=${encoded}`, 'projectAdmin'), 200, 'audit')) as { items: { action: string; resource: string }[] };
      assert.ok(audit.items.some((e) => e.action === 'push' && e.resource.startsWith(`${repository}:build-1`)), JSON.stringify(audit.items));
    });

    test('an expired robot cannot log in', async () => {
      const robot = await createRobot('shortlived', ['pull']);
      const repository = `${prefix}-private/app`;
      assert.equal((await robotToken(robot.name, robot.secret, repository, 'pull')).status, 200);
      // Time travel: its expiry (days at the least through the API) set into the past in the database.
      await serverQuery(server.dataDir, 'UPDATE robots SET expires_at = ? WHERE name = ?', [Date.now() - 1000, robot.name]);
      assert.equal((await robotToken(robot.name, robot.secret, repository, 'pull')).status, 401);
    });

    test('a personal access token works in place of the password until revoked', async () => {
      const dev = `Basic ${Buffer.from(`${users.developer}:${PASSWORD}`).toString('base64')}`;
      const created = await fetch(`${url}/api/v1/users/me/tokens`, { method: 'POST', headers: { Authorization: dev, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'laptop', expiresInDays: 30 }) });
      const { token } = (await must(created, 201, 'create token')) as { token: string };
      assert.match(token, /^berth_pat_/);
      const repository = `${prefix}-private/app`;
      const res = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:pull,push`, { headers: { Authorization: login(users.developer!, token) } });
      const jwt = ((await must(res, 200, 'token with PAT')) as { token: string }).token;
      assert.deepEqual([...(jwtPayload(jwt).access as { actions: string[] }[])[0]!.actions].sort(), ['pull', 'push']);
      await must(await fetch(`${url}/api/v1/users/me/tokens/laptop`, { method: 'DELETE', headers: { Authorization: dev } }), 204, 'revoke');
      const after = await fetch(`${url}/service/token?service=berth&scope=repository:${repository}:pull`, { headers: { Authorization: login(users.developer!, token) } });
      assert.equal(after.status, 401);
    });
  });
});
