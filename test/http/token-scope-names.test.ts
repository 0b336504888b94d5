// The token service validates repository names in `scope` as /v2 does: a scope naming something
// that is not a valid repository name is dropped — granted nothing (not even to an administrator,
// who may push into projects that do not exist yet) and never echoed back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ADMIN_PASSWORD, adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { jwtPayload, uniqueName } from '../support/oci.ts';

type Access = { type: string; name: string; actions: string[] }[];

const INVALID = [
  '../x',
  'team/../../etc',
  'A/B',
  'a//b',
  'a:b',
  'localhost:5000',
  'a'.repeat(300),
  'team/a\u0001pp',
  'team/app\nx',
  'team/a\u001bpp',
  'team/a\u202epp',
];

describe('token service: repository names in scope validated as /v2 does', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  async function getToken(scopes: string[]): Promise<{ text: string; access: Access }> {
    const query = new URLSearchParams({ service: 'berth' });
    for (const s of scopes) query.append('scope', s);
    const res = await fetch(`${server.url}/service/token?${query}`, { headers: { Authorization: adminBasic() } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    return { text, access: jwtPayload((JSON.parse(text) as { token: string }).token).access as Access };
  }

  async function postToken(scopes: string[]): Promise<{ text: string; access: Access; scope: string }> {
    const form = new URLSearchParams({ grant_type: 'password', username: 'admin', password: ADMIN_PASSWORD, service: 'berth', client_id: 'test', scope: scopes.join(' ') });
    const res = await fetch(`${server.url}/service/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const body = JSON.parse(text) as { access_token: string; scope: string };
    return { text, access: jwtPayload(body.access_token).access as Access, scope: body.scope };
  }

  function assertNotEchoed(text: string, name: string, what: string): void {
    assert.ok(!text.includes(name) && !text.includes(JSON.stringify(name).slice(1, -1)), `${what}: ${JSON.stringify(name)} echoed in ${text}`);
  }

  test('an invalid name is never granted, even to an administrator, and never echoed (GET and POST)', async () => {
    for (const name of INVALID) {
      for (const scope of [`repository:${name}:pull,push`, `registry:${name}:*`]) {
        const got = await getToken([scope]);
        assert.deepEqual(got.access, [], `GET ${JSON.stringify(scope)}`);
        const posted = await postToken([scope]);
        assert.deepEqual(posted.access, [], `POST ${JSON.stringify(scope)}`);
        assert.equal(posted.scope, '');
        assertNotEchoed(posted.text, name, `POST ${JSON.stringify(scope)}`);
      }
    }
  });

  test('valid scopes next to invalid ones are still granted', async () => {
    const name = uniqueName('valid');
    const scopes = [`repository:${name}:pull,push`, 'repository:../x:pull', 'registry:catalog:*', 'repository:A/B:push', `repository:localhost:5000/${name}:pull`, 'repository:a//b:pull'];
    const got = await getToken(scopes);
    assert.deepEqual(got.access, [
      { type: 'repository', name, actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
      { type: 'repository', name: `localhost:5000/${name}`, actions: ['pull'] },
    ]);
    const posted = await postToken(scopes);
    assert.equal(posted.scope, `repository:${name}:pull,push registry:catalog:* repository:localhost:5000/${name}:pull`);
    for (const bad of ['../x', 'A/B', 'a//b']) assertNotEchoed(posted.text, bad, 'POST');
  });

  test('only known actions are granted: names of Object.prototype members are not actions', async () => {
    const name = uniqueName('actions');
    const got = await getToken([`repository:${name}:pull,constructor,toString,__proto__,hasOwnProperty`]);
    assert.deepEqual(got.access, [{ type: 'repository', name, actions: ['pull'] }]);
  });
});
