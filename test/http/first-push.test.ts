// What the README promises about pushing into a project that does not exist yet: an administrator's
// first push creates it, private and without quota; anyone else's push is refused and creates nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminBasic, api, basic, expectStatus } from '../support/api.ts';
import { expectError, pushImage, randomBlob, uniqueName } from '../support/oci.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

describe('the first push into a project that does not exist', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test("an administrator's push creates the project, private and without quota", async () => {
    const project = uniqueName('fresh');
    await pushImage(server.url, `${project}/app`, 'v1');
    const created = await expectStatus<{ name: string; public: boolean; quotaBytes: number | null; createdBy: string | null }>(await api(server.url, 'GET', `/projects/${project}`, { auth: adminBasic() }), 200);
    assert.equal(created.public, false);
    assert.equal(created.quotaBytes, null);
    const anonymous = await fetch(`${server.url}/v2/${project}/app/manifests/v1`);
    await expectError(anonymous, 401, 'UNAUTHORIZED');
  });

  test("another user's push into a project that does not exist is refused and creates nothing", async () => {
    const user = uniqueName('dev');
    await expectStatus(await api(server.url, 'POST', '/users', { auth: adminBasic(), body: { username: user, password: 'dev-password-123' } }), 201);
    const project = uniqueName('nothere');
    const scope = `repository:${project}/app:pull,push`;
    const tokenRes = await fetch(`${server.url}/service/token?service=berth&scope=${scope}`, { headers: { Authorization: basic(user, 'dev-password-123') } });
    const { token } = (await tokenRes.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { access: unknown[] };
    assert.deepEqual(claims.access, [], 'the token grants nothing there');
    const start = await fetch(`${server.url}/v2/${project}/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    await expectError(start, 403, 'DENIED');
    const direct = await fetch(`${server.url}/v2/${project}/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: basic(user, 'dev-password-123') }, body: randomBlob(64) });
    await expectError(direct, 403, 'DENIED');
    await expectError(await api(server.url, 'GET', `/projects/${project}`, { auth: adminBasic() }), 404, 'NOT_FOUND');
  });
});
