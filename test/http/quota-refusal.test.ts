// A push refused by its project's quota is told apart from a permission refusal everywhere but on
// the wire (which stays 403 DENIED with the quota's message): its access-log line carries a
// `quota-exceeded` diagnosis with the figures, and the audit log a `quota.exceeded` event.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { api, expectStatus } from '../support/api.ts';
import { MEDIA, descriptorOf, digestOf, expectError, imageManifest, manifestBytes, pushBlob, putManifest, randomBlob, startUpload, withDigest } from '../support/oci.ts';

const AUTH = adminBasic();
const PROJECT = 'quota-log';
const QUOTA = 10_000;

interface AuditItem {
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  project: string | null;
  success: boolean;
  detail?: Record<string, unknown>;
}

describe('quota refusals are logged and audited with their figures', () => {
  let server: TestServer;
  let url: string;
  const lines: Record<string, unknown>[] = [];

  before(async () => {
    server = await startTestServer({}, undefined, lines);
    url = server.url;
    await expectStatus(await api(url, 'POST', '/projects', { auth: AUTH, body: { name: PROJECT, quotaBytes: QUOTA } }), 201);
  });
  after(async () => {
    await server.close();
  });

  async function usage(): Promise<number> {
    return (await expectStatus<{ usageBytes: number }>(await api(url, 'GET', `/projects/${PROJECT}`, { auth: AUTH }), 200)).usageBytes;
  }

  /** The access-log line of the request that got `requestId`, once it is written. */
  async function accessLine(requestId: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 100; i++) {
      const line = lines.find((l) => l.msg === 'request' && l.reqId === requestId);
      if (line) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no access-log line for request ${requestId}`);
  }

  async function audited(digest: string): Promise<AuditItem[]> {
    const page = await expectStatus<{ items: AuditItem[] }>(await api(url, 'GET', `/audit?action=quota.exceeded&project=${PROJECT}`, { auth: AUTH }), 200);
    return page.items.filter((e) => e.detail?.digest === digest);
  }

  test('a blob over the quota: 403 DENIED for the client; diagnosis on the log line and an audit event, with exact figures', async () => {
    const repository = `${PROJECT}/app`;
    await pushBlob(url, repository, randomBlob(6_000));
    const used = await usage();
    assert.equal(used, 6_000);
    const big = randomBlob(5_000);
    const digest = digestOf(big);
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
      method: 'POST',
      headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream', 'X-Request-Id': 'quota-blob-1' },
      body: big,
    });
    const message = `quota exceeded: project "${PROJECT}" uses ${used} of ${QUOTA} bytes; storing ${digest} (5000 bytes) would bring it to ${used + 5_000}`;
    const env = await expectError(res, 403, 'DENIED');
    assert.equal(env.errors[0]!.message, message, 'the client still gets the quota message');

    const line = await accessLine('quota-blob-1');
    assert.equal(line.error, 'DENIED');
    assert.deepEqual(line.diagnosis, { code: 'quota-exceeded', message, project: PROJECT, quotaBytes: QUOTA, usageBytes: used, sizeBytes: 5_000 });

    const events = await audited(digest);
    assert.equal(events.length, 1, JSON.stringify(events));
    const event = events[0]!;
    assert.equal(event.action, 'quota.exceeded');
    assert.equal(event.success, false);
    assert.equal(event.actor, 'admin');
    assert.equal(event.project, PROJECT);
    assert.equal(event.resourceType, 'blob');
    assert.equal(event.resource, `${repository}@${digest}`);
    assert.deepEqual(event.detail, { digest, quotaBytes: QUOTA, usageBytes: used, sizeBytes: 5_000 });
    assert.equal(await usage(), used, 'nothing was counted');
  });

  test('the same for a chunked upload completed over the quota', async () => {
    const repository = `${PROJECT}/chunked`;
    const used = await usage();
    const big = randomBlob(QUOTA - used + 1);
    const digest = digestOf(big);
    const location = await startUpload(url, repository);
    const res = await fetch(withDigest(location, digest), { method: 'PUT', headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream', 'X-Request-Id': 'quota-chunked-1' }, body: big });
    await expectError(res, 403, 'DENIED');
    const line = await accessLine('quota-chunked-1');
    assert.deepEqual(
      { ...(line.diagnosis as Record<string, unknown>), message: undefined },
      { code: 'quota-exceeded', message: undefined, project: PROJECT, quotaBytes: QUOTA, usageBytes: used, sizeBytes: big.length },
    );
    const [event] = await audited(digest);
    assert.ok(event, 'audited');
    assert.deepEqual(event.detail, { digest, quotaBytes: QUOTA, usageBytes: used, sizeBytes: big.length });
  });

  test('a manifest over the quota: the log line and the audit event name the manifest, its tag and the figures', async () => {
    const repository = `${PROJECT}/image`;
    const config = Buffer.from('{}');
    await pushBlob(url, repository, config);
    const manifest = manifestBytes(
      imageManifest({ config: descriptorOf(MEDIA.ociConfig, config), layers: [], annotations: { pad: 'x'.repeat(Math.max(0, QUOTA - (await usage()))) } }),
    );
    const used = await usage();
    assert.ok(used + manifest.length > QUOTA);
    const digest = digestOf(manifest);
    const res = await putManifest(url, repository, 'v1', manifest, MEDIA.ociManifest, AUTH);
    await expectError(res, 403, 'DENIED');
    const requestId = res.headers.get('x-request-id')!;
    const line = await accessLine(requestId);
    assert.deepEqual(line.diagnosis, {
      code: 'quota-exceeded',
      message: `quota exceeded: project "${PROJECT}" uses ${used} of ${QUOTA} bytes; storing ${digest} (${manifest.length} bytes) would bring it to ${used + manifest.length}`,
      project: PROJECT,
      quotaBytes: QUOTA,
      usageBytes: used,
      sizeBytes: manifest.length,
    });
    const [event] = await audited(digest);
    assert.ok(event, 'audited');
    assert.equal(event.resourceType, 'artifact');
    assert.equal(event.resource, `${repository}@${digest}`);
    assert.deepEqual(event.detail, { digest, quotaBytes: QUOTA, usageBytes: used, sizeBytes: manifest.length, tag: 'v1' });
  });

  test('a permission refusal is not a quota refusal: no diagnosis, no quota.exceeded event', async () => {
    await expectStatus(await api(url, 'POST', '/users', { auth: AUTH, body: { username: 'nobody', password: 'nobody-password-1' } }), 201);
    const bytes = randomBlob(10);
    const res = await fetch(`${url}/v2/${PROJECT}/app/blobs/uploads/?digest=${encodeURIComponent(digestOf(bytes))}`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('nobody:nobody-password-1').toString('base64')}`, 'X-Request-Id': 'not-quota-1' },
      body: bytes,
    });
    await expectError(res, 403, 'DENIED');
    const line = await accessLine('not-quota-1');
    assert.equal(line.error, 'DENIED');
    assert.equal(line.diagnosis, undefined);
    assert.deepEqual(await audited(digestOf(bytes)), []);
  });
});
