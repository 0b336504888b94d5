// Registry endpoints on a real server: administrators only; the credential sealed at rest (under
// secrets.key, bound to the endpoint) and never in an answer, a log line or an audit row; hostile
// settings refused by field without echoing them; proxy-cache projects on an endpoint (with their
// retention policy) and the refusal to delete an endpoint in use; the connection test against CNCF
// Distribution with htpasswd, a TLS server of a throw-away CA, a web server that is no registry,
// and a port where nothing listens.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Sealer, SealError } from '../../src/auth/sealed.ts';
import type { RegistryView } from '../../src/cli/registry.ts';
import { adminBasic, api, basic, expectInvalid, expectStatus, type ListPage } from '../support/api.ts';
import { serverQuery } from '../support/backend.ts';
import { expectError } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { startReferenceRegistry, type ReferenceRegistry } from '../support/reference-registry.ts';
import { rememberSecret } from '../support/secrets.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { freePort, tmpDir } from '../support/system.ts';
import { createTlsMaterial, type TlsMaterial } from '../support/tls.ts';

const PASSWORD = 'registries-test-password';
const UPSTREAM_PASSWORD = `upstream-${randomBytes(9).toString('base64url')}`;
const SECRETS_KEY = randomBytes(32);
rememberSecret(UPSTREAM_PASSWORD, 'puller');

type Registry = RegistryView & { usedBy?: string[]; usedByRules?: string[] };
interface TestResult {
  ok: boolean;
  auth: string | null;
  realm: string | null;
  authenticated: boolean;
  elapsedMs: number;
  error?: string;
}
interface Project {
  name: string;
  proxyCache: { registry: string; freshness: number } | null;
}

/** Listens on a random loopback port; resolves to the port. */
function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('registry endpoints', { timeout: 180_000 }, () => {
  let server: TestServer;
  let url: string;
  let upstream: ReferenceRegistry;
  let tlsMaterial: TlsMaterial;
  let tlsPort: number;
  let notRegistryPort: number;
  let deadPort: number;
  let silentPort: number;
  const silent: { server?: TcpServer; sockets: Socket[] } = { sockets: [] };
  let dir: string;
  const processes = new ProcessRegistry();
  const servers: Server[] = [];
  const logLines: Record<string, unknown>[] = [];
  const admin = adminBasic();
  const user = basic('user', PASSWORD);
  let robot: string;

  /** Every answer of the suite, as text: none may hold the upstream password. */
  const answers: string[] = [];
  async function call<T = Record<string, unknown>>(method: string, p: string, status: number, body?: unknown, auth = admin): Promise<T> {
    const res = await api(url, method, p, { auth, ...(body !== undefined ? { body } : {}) });
    const text = await res.clone().text();
    answers.push(text);
    return expectStatus<T>(res, status, `${method} ${p}`);
  }
  const add = (body: Record<string, unknown>) => call<Registry>('POST', '/registries', 201, body);
  const testSettings = (body: Record<string, unknown>) => call<TestResult>('POST', '/registries/test', 200, body);

  before(async () => {
    dir = await tmpDir('berth-registries-test');
    server = await startTestServer({ secrets: { key: SECRETS_KEY.toString('hex') }, projects: { userCreation: true }, proxy: { timeout: '2s' } }, undefined, logLines);
    url = server.url;
    upstream = await startReferenceRegistry({ port: await freePort(), username: 'puller', password: UPSTREAM_PASSWORD, registry: processes });
    await call('POST', '/users', 201, { username: 'user', password: PASSWORD });
    const created = await call<{ name: string; secret: string }>('POST', '/robots', 201, { name: 'sys', permissions: [{ project: '*', actions: ['pull', 'push'] }] });
    robot = basic(created.name, created.secret);

    // A TLS server of a throw-away CA that answers /v2/ like a registry without authentication.
    tlsMaterial = await createTlsMaterial({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const tlsServer = createHttpsServer({ cert: readFileSync(tlsMaterial.serverCert), key: readFileSync(tlsMaterial.serverKey) }, (req, res) => {
      res.writeHead(req.url === '/v2/' ? 200 : 404, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
    });
    servers.push(tlsServer);
    tlsPort = await listen(tlsServer);
    // A web server that is not a registry.
    const web = createHttpServer((_req, res) => res.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>not here</h1>'));
    servers.push(web);
    notRegistryPort = await listen(web);
    deadPort = await freePort();
    // A server that accepts connections and never answers.
    silent.server = createTcpServer((socket) => silent.sockets.push(socket));
    silentPort = await new Promise<number>((resolve) => silent.server!.listen(0, '127.0.0.1', () => resolve((silent.server!.address() as { port: number }).port)));
  });

  after(async () => {
    for (const s of servers) s.close();
    for (const socket of silent.sockets) socket.destroy();
    silent.server?.close();
    await processes.stopAll();
    await server?.close();
    for (const d of [dir, tlsMaterial?.dir, upstream?.dir]) if (d) await rm(d, { recursive: true, force: true });
    for (const text of answers) assert.ok(!text.includes(UPSTREAM_PASSWORD), 'no answer holds the upstream password');
    for (const line of logLines) assert.ok(!JSON.stringify(line).includes(UPSTREAM_PASSWORD), 'no log line holds the upstream password');
  });

  test('system administrators only: anonymous callers get 401, users and robots 403, on every route', async () => {
    await add({ name: 'guarded', type: 'distribution', url: upstream.url });
    const routes: [string, string, unknown?][] = [
      ['GET', '/registries'],
      ['POST', '/registries', { name: 'x', type: 'distribution', url: upstream.url }],
      ['POST', '/registries/test', { type: 'distribution', url: upstream.url }],
      ['GET', '/registries/guarded'],
      ['PATCH', '/registries/guarded', { description: 'mine now' }],
      ['DELETE', '/registries/guarded'],
      ['POST', '/registries/guarded/test', {}],
    ];
    for (const [method, p, body] of routes) {
      await expectError(await api(url, method, p, body === undefined ? {} : { body }), 401, 'UNAUTHORIZED');
      await expectError(await api(url, method, p, { auth: user, ...(body === undefined ? {} : { body }) }), 403, 'DENIED');
      await expectError(await api(url, method, p, { auth: robot, ...(body === undefined ? {} : { body }) }), 403, 'DENIED');
    }
    // A user may create ordinary projects here (projects.userCreation), but not proxy-cache ones.
    await expectError(await api(url, 'POST', '/projects', { auth: user, body: { name: 'sneaky', proxyCache: { registry: 'guarded' } } }), 403, 'DENIED');
    assert.equal((await call<Registry>('GET', '/registries/guarded', 200)).description, null, 'nothing changed');
    await call('DELETE', '/registries/guarded', 204);
  });

  test('create, list, show, update, delete: the credential goes in, never comes out, and is audited by name only', async () => {
    const created = await add({ name: 'dist', type: 'distribution', url: `${upstream.url}/`, username: 'puller', password: UPSTREAM_PASSWORD, description: 'the reference' });
    assert.deepEqual(
      { ...created, createdAt: undefined, updatedAt: undefined },
      { name: 'dist', type: 'distribution', url: upstream.url, username: 'puller', hasCredential: true, caFile: null, insecure: false, description: 'the reference', createdBy: 'admin', createdAt: undefined, updatedAt: undefined, usedBy: [], usedByRules: [] },
    );
    await expectError(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'dist', type: 'quay' } }), 409, 'CONFLICT');
    const hub = await add({ name: 'hub', type: 'dockerhub' });
    assert.match(hub.url, /^https:\/\/[a-z0-9.-]+$/, 'dockerhub has a default URL');
    assert.equal(hub.hasCredential, false);

    const page = await call<ListPage<Registry>>('GET', '/registries?pageSize=1', 200);
    assert.equal(page.total, 2);
    assert.deepEqual(page.items.map((r) => r.name), ['dist']);
    assert.deepEqual((await call<ListPage<Registry>>('GET', '/registries?q=hu', 200)).items.map((r) => r.name), ['hub']);

    // A new password alone keeps the username; a description changes alone; username null drops the credential.
    const rotated = await call<Registry>('PATCH', '/registries/dist', 200, { password: `${UPSTREAM_PASSWORD}-next` });
    assert.deepEqual([rotated.username, rotated.hasCredential], ['puller', true]);
    assert.equal((await call<Registry>('PATCH', '/registries/hub', 200, { description: 'Docker Hub' })).description, 'Docker Hub');
    const anonymous = await call<Registry>('PATCH', '/registries/hub', 200, { username: null });
    assert.deepEqual([anonymous.username, anonymous.hasCredential], [null, false]);
    await expectInvalid(await api(url, 'PATCH', '/registries/hub', { auth: admin, body: { username: 'someone' } }), 'password');
    await expectInvalid(await api(url, 'PATCH', '/registries/hub', { auth: admin, body: { name: 'renamed' } }), 'name');
    await expectError(await api(url, 'PATCH', '/registries/nope', { auth: admin, body: { description: 'x' } }), 404, 'NOT_FOUND');
    await call('PATCH', '/registries/dist', 200, { password: UPSTREAM_PASSWORD });

    await call('DELETE', '/registries/hub', 204);
    await expectError(await api(url, 'DELETE', '/registries/hub', { auth: admin }), 404, 'NOT_FOUND');

    const audit = await call<ListPage<{ action: string; resource: string; detail: Record<string, unknown> | null }>>('GET', '/audit?resource=hub&pageSize=50', 200);
    assert.deepEqual(audit.items.map((e) => e.action).sort(), ['registry.create', 'registry.delete', 'registry.update', 'registry.update']);
    const updates = await call<ListPage<{ detail: Record<string, unknown> }>>('GET', '/audit?resource=dist&action=registry.update&pageSize=50', 200);
    assert.ok(updates.items.every((e) => JSON.stringify(e.detail) === JSON.stringify({ changed: ['password'] })), JSON.stringify(updates.items));
  });

  test('the credential at rest: sealed, not the password, opened only by this key for this endpoint', async () => {
    const [row] = await serverQuery(server.dataDir, 'select credential from registries where name = ?', ['dist']);
    const sealed = String(row!.credential);
    assert.ok(!sealed.includes(UPSTREAM_PASSWORD) && !sealed.includes(Buffer.from(UPSTREAM_PASSWORD).toString('base64')), 'not stored in the clear');
    assert.equal(new Sealer(SECRETS_KEY).open(sealed, 'registry:dist'), UPSTREAM_PASSWORD, 'sealed under secrets.key, bound to its endpoint');
    assert.throws(() => new Sealer(randomBytes(32)).open(sealed, 'registry:dist'), SealError, 'another key does not open it');
    assert.throws(() => new Sealer(SECRETS_KEY).open(sealed, 'registry:other'), SealError, 'copied to another endpoint it does not open');
  });

  test('hostile settings are refused by field, without repeating them', async () => {
    const marker = 'zz-marker-zz';
    const badURLs = [
      `not a url ${marker}`,
      `file:///etc/${marker}`,
      `ftp://${marker}.example`,
      `https://user:${marker}@registry.example`,
      `https://${marker}@registry.example`,
      `https://registry.example/${marker}`,
      `https://registry.example/v2/`,
      `https://registry.example?${marker}=1`,
      `https://registry.example#${marker}`,
      `javascript:${marker}`,
      `https://${'a'.repeat(2100)}.example`,
    ];
    for (const bad of badURLs) {
      const env = await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'distribution', url: bad } }), 'url');
      assert.ok(!JSON.stringify(env).includes(marker), `the refusal does not echo the URL: ${JSON.stringify(env)}`);
      await expectInvalid(await api(url, 'POST', '/registries/test', { auth: admin, body: { type: 'distribution', url: bad } }), 'url');
    }
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'distribution' } }), 'url');
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'docker' } }), 'type');
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'Bad/Name', type: 'quay' } }), 'name');
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'quay', username: 'u' } }), 'password');
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'quay', password: 'p4ssw0rd-alone' } }), 'username');
    await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'quay', token: 'x' } }), 'token');
    await expectInvalid(await api(url, 'GET', '/registries/Bad..Name!', { auth: admin }), 'name');
    // CA files: an absolute path of a readable PEM file of certificates, nothing else.
    const notPem = path.join(dir, 'not-a-ca.txt');
    await writeFile(notPem, `${marker}\n`);
    for (const caFile of ['relative/ca.pem', path.join(dir, 'missing.pem'), notPem, dir]) {
      const env = await expectInvalid(await api(url, 'POST', '/registries', { auth: admin, body: { name: 'bad', type: 'quay', caFile } }), 'caFile');
      assert.ok(!JSON.stringify(env).includes(marker) && !JSON.stringify(env).includes(dir), JSON.stringify(env));
    }
    // Bodies larger than the API's limit are refused before they are parsed.
    const huge = await api(url, 'POST', '/registries', { auth: admin, body: { name: 'huge', type: 'quay', description: 'x'.repeat(200_000) } });
    assert.equal(huge.status, 413);
    await huge.arrayBuffer();
    assert.equal((await call<ListPage<Registry>>('GET', '/registries?q=bad', 200)).total, 0, 'nothing was created');
  });

  test('proxy-cache projects: created on an endpoint with a retention policy, freshness changeable, endpoint in use kept', async () => {
    await expectInvalid(await api(url, 'POST', '/projects', { auth: admin, body: { name: 'cache', proxyCache: { registry: 'nowhere' } } }), 'proxyCache.registry');
    const created = await call<Project>('POST', '/projects', 201, { name: 'cache', proxyCache: { registry: 'dist', freshness: 600 } });
    assert.deepEqual(created.proxyCache, { registry: 'dist', freshness: 600 });
    const policy = await call<{ rules: unknown[]; descriptions: string[]; cron: string }>('GET', '/projects/cache/retention', 200);
    assert.equal(policy.cron, '0 4 * * *');
    assert.deepEqual(policy.descriptions, [
      'retain those pulled within 7 days of repositories matching ** with tags matching ** (and untagged artifacts)',
      'retain those pushed within 7 days of repositories matching ** with tags matching ** (and untagged artifacts)',
    ]);
    const ordinary = await call<Project>('POST', '/projects', 201, { name: 'plain' });
    assert.equal(ordinary.proxyCache, null);

    assert.equal((await call<Project>('PATCH', '/projects/cache', 200, { proxyCache: { freshness: 30 } })).proxyCache?.freshness, 30);
    assert.equal((await call<Project>('PATCH', '/projects/cache', 200, { proxyCache: { freshness: null } })).proxyCache?.freshness, 300, 'null: proxy.freshness');
    await expectInvalid(await api(url, 'PATCH', '/projects/cache', { auth: admin, body: { proxyCache: { registry: 'other' } } }), 'proxyCache.registry');
    await expectInvalid(await api(url, 'PATCH', '/projects/plain', { auth: admin, body: { proxyCache: { freshness: 10 } } }), 'proxyCache');
    assert.equal((await call<Project>('GET', '/projects/cache', 200)).proxyCache?.registry, 'dist');

    assert.deepEqual((await call<Registry>('GET', '/registries/dist', 200)).usedBy, ['cache']);
    const refused = await expectError(await api(url, 'DELETE', '/registries/dist', { auth: admin }), 409, 'CONFLICT');
    assert.match(refused.errors[0]!.message, /"cache"/);
    assert.deepEqual((refused.errors[0]!.detail as { projects: string[] }).projects, ['cache']);
    await call('DELETE', '/projects/cache', 204);
    await call('DELETE', '/projects/plain', 204);
    assert.deepEqual((await call<Registry>('GET', '/registries/dist', 200)).usedBy, []);
  });

  test('test: the real Basic flow against CNCF Distribution with htpasswd, and the Bearer flow against Berth — right, wrong and no password', async () => {
    const saved = await call<TestResult>('POST', '/registries/dist/test', 200, {});
    assert.deepEqual([saved.ok, saved.auth, saved.authenticated, saved.error], [true, 'basic', true, undefined]);
    assert.ok(Number.isInteger(saved.elapsedMs) && saved.elapsedMs >= 0);

    const wrong = await call<TestResult>('POST', '/registries/dist/test', 200, { password: 'not-the-password-at-all' });
    assert.deepEqual([wrong.ok, wrong.authenticated], [false, false]);
    assert.match(wrong.error ?? '', /^credentials refused\b/);
    assert.ok(!wrong.error!.includes('not-the-password-at-all'));

    const unsavedWrong = await testSettings({ type: 'distribution', url: upstream.url, username: 'puller', password: 'wrong-password-again' });
    assert.deepEqual([unsavedWrong.ok, unsavedWrong.authenticated], [false, false]);
    assert.match(unsavedWrong.error ?? '', /^credentials refused\b/);
    const unsavedRight = await testSettings({ type: 'distribution', url: upstream.url, username: 'puller', password: UPSTREAM_PASSWORD });
    assert.deepEqual([unsavedRight.ok, unsavedRight.auth, unsavedRight.authenticated], [true, 'basic', true]);
    const none = await testSettings({ type: 'distribution', url: upstream.url });
    assert.equal(none.ok, false);
    assert.match(none.error ?? '', /^authentication required\b/);
    // Berth itself as the upstream: the Bearer flow through its token service.
    const bearer = await testSettings({ type: 'berth', url, username: 'admin', password: ADMIN_PASSWORD });
    assert.deepEqual([bearer.ok, bearer.auth, bearer.authenticated], [true, 'bearer', true]);
    assert.match(bearer.realm ?? '', /\/service\/token$/);
    const bearerWrong = await testSettings({ type: 'berth', url, username: 'admin', password: 'not-the-admin-password' });
    assert.match(bearerWrong.error ?? '', /^credentials refused\b/);
    // The saved endpoint was not changed by the tests with other settings.
    assert.equal((await call<TestResult>('POST', '/registries/dist/test', 200, {})).ok, true);
    await expectError(await api(url, 'POST', '/registries/nope/test', { auth: admin, body: {} }), 404, 'NOT_FOUND');
  });

  test('test: unreachable, silent, not a registry, and TLS — refused without the CA, verified with caFile, skipped with insecure', async () => {
    const dead = await testSettings({ type: 'distribution', url: `http://127.0.0.1:${deadPort}` });
    assert.equal(dead.ok, false);
    assert.match(dead.error ?? '', /^unreachable\b/);
    assert.equal(dead.auth, null);

    const mute = await testSettings({ type: 'distribution', url: `http://127.0.0.1:${silentPort}` });
    assert.equal(mute.ok, false);
    assert.match(mute.error ?? '', /^timeout: http:\/\/127\.0\.0\.1:\d+ did not answer within 2s$/);

    const web = await testSettings({ type: 'generic', url: `http://127.0.0.1:${notRegistryPort}` });
    assert.equal(web.ok, false);
    assert.match(web.error ?? '', /^not a registry\b/);

    // TLS spoken to a plain-HTTP port, and a certificate of an unknown CA.
    const plain = await testSettings({ type: 'distribution', url: upstream.url.replace('http:', 'https:') });
    assert.match(plain.error ?? '', /^TLS\b/);
    const unknownCA = await testSettings({ type: 'generic', url: `https://127.0.0.1:${tlsPort}` });
    assert.match(unknownCA.error ?? '', /^TLS\b/);
    const trusted = await testSettings({ type: 'generic', url: `https://127.0.0.1:${tlsPort}`, caFile: tlsMaterial.caCert });
    assert.deepEqual([trusted.ok, trusted.auth, trusted.error], [true, 'none', undefined]);
    const skipped = await testSettings({ type: 'generic', url: `https://127.0.0.1:${tlsPort}`, insecure: true });
    assert.equal(skipped.ok, true);

    // Saved with its CA file, the endpoint tests well; and its view shows the path, never the PEM.
    const tlsEndpoint = await add({ name: 'tls', type: 'generic', url: `https://127.0.0.1:${tlsPort}`, caFile: tlsMaterial.caCert });
    assert.equal(tlsEndpoint.caFile, tlsMaterial.caCert);
    assert.equal((await call<TestResult>('POST', '/registries/tls/test', 200, {})).ok, true);
    assert.match((await call<TestResult>('POST', '/registries/tls/test', 200, { caFile: null })).error ?? '', /^TLS\b/, 'unsaved changes are tested');
    await call('DELETE', '/registries/tls', 204);
  });

  test('another secrets key: the saved password does not open — the test says so, and setting it again mends it', async () => {
    await server.close(true);
    server = await startTestServer({ secrets: { key: randomBytes(32).toString('hex') }, proxy: { timeout: '2s' } }, server.dataDir, logLines);
    url = server.url;
    const broken = await call<TestResult>('POST', '/registries/dist/test', 200, {});
    assert.equal(broken.ok, false);
    assert.match(broken.error ?? '', /^unusable: registry endpoint "dist": its saved password does not open with this server's secrets key/);
    // Unsaved new credentials test well over it; saved, they mend it.
    assert.equal((await call<TestResult>('POST', '/registries/dist/test', 200, { password: UPSTREAM_PASSWORD })).ok, true);
    await call('PATCH', '/registries/dist', 200, { password: UPSTREAM_PASSWORD });
    assert.equal((await call<TestResult>('POST', '/registries/dist/test', 200, {})).ok, true);
  });
});
