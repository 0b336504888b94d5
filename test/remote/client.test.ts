// The outbound registry client (src/remote/) against real registries: CNCF Distribution anonymous
// and with htpasswd (Basic), Berth with its token service (Bearer); and against small real HTTP
// peers that misbehave on purpose (wrong bytes, silence, redirects elsewhere, hostile challenges,
// 503 and 429). Servers are shared within the file and stopped by pid.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ChallengeError, chooseChallenge, parseChallenges } from '../../src/remote/challenge.ts';
import { defaultURL, MANIFEST_ACCEPT, RegistryClient, type ClientOptions } from '../../src/remote/client.ts';
import { RemoteError, type Endpoint } from '../../src/remote/types.ts';
import { artifactManifest, descriptorOf, digestOf, EMPTY_JSON, imageManifest, manifestBytes, MEDIA } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { rememberSecret } from '../support/secrets.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { createTlsMaterial } from '../support/tls.ts';
import { httpPeer, type Peer, rawPeer, startDistribution } from './peers.ts';
import { BreakProxy } from '../replication/break-proxy.ts';

const DIST_USER = 'remote';
const DIST_PASSWORD = `dist-${randomBytes(6).toString('hex')}`;
rememberSecret(DIST_PASSWORD, DIST_USER);

const processes = new ProcessRegistry();
const scratch: string[] = [];
const peers: Peer[] = [];
const clients: RegistryClient[] = [];
const berthLog: Record<string, unknown>[] = [];
let openURL = '';
let basicURL = '';
let berth: TestServer;

before(async () => {
  [openURL, basicURL] = await Promise.all([startDistribution(processes, scratch), startDistribution(processes, scratch, { username: DIST_USER, password: DIST_PASSWORD })]);
  berth = await startTestServer({}, undefined, berthLog);
});

after(async () => {
  for (const c of clients) c.close();
  for (const p of peers) await p.close();
  await berth?.close();
  await processes.stopAllAndClean(scratch, false);
});

function client(endpoint: Partial<Endpoint> & { url: string }, options: ClientOptions = {}): RegistryClient {
  const c = new RegistryClient({ name: 'upstream-test', type: 'distribution', ...endpoint }, { timeoutMs: 10_000, ...options });
  clients.push(c);
  return c;
}

async function peer(start: Promise<Peer>): Promise<Peer> {
  const p = await start;
  peers.push(p);
  return p;
}

/** Awaits a rejection that is a RemoteError of `kind` (and `status`); returns it. */
async function remoteError(promise: Promise<unknown>, kind: RemoteError['kind'], status?: number): Promise<RemoteError> {
  const error = await promise.then(
    () => assert.fail(`expected a RemoteError(${kind})`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof RemoteError, `a RemoteError, not ${String(error)}`);
  assert.equal(error.kind, kind, error.message);
  if (status !== undefined) assert.equal(error.status, status, error.message);
  assert.match(error.message, /^upstream-test: /, 'the message names the endpoint');
  return error;
}

function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const berthAdmin = (): Partial<Endpoint> & { url: string } => ({ url: berth.url, type: 'berth', username: 'admin', password: ADMIN_PASSWORD });
const tokenRequests = (): number => berthLog.filter((l) => l['msg'] === 'request' && l['path'] === '/service/token').length;

/**
 * Pushes an image (a Buffer blob, a streamed blob in one PUT, a streamed blob in PATCH chunks, a
 * manifest), reads all of it back (HEAD and GET manifest, whole and ranged blobs) and mounts a blob
 * into a second repository.
 */
async function roundTrip(c: RegistryClient, repo: string): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
  const small = randomBytes(3000);
  const big = randomBytes(200 * 1024 + 17);
  await c.pushBlob(repo, digestOf(config), config.length, config);
  await c.pushBlob(repo, digestOf(small), small.length, Readable.from(pieces(small, 1000)));
  await c.pushBlob(repo, digestOf(big), big.length, Readable.from(pieces(big, 10_000)));
  const manifest = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociConfig, config), layers: [descriptorOf(MEDIA.ociLayer, small), descriptorOf(MEDIA.ociLayer, big)] }));
  const digest = await c.putManifest(repo, 'v1', manifest, MEDIA.ociManifest);
  assert.equal(digest, digestOf(manifest));

  assert.deepEqual(await c.headManifest(repo, 'v1'), { digest, mediaType: MEDIA.ociManifest, size: manifest.length });
  const byTag = await c.getManifest(repo, 'v1');
  assert.deepEqual({ ...byTag, body: byTag.body.equals(manifest) }, { digest, mediaType: MEDIA.ociManifest, size: manifest.length, body: true });
  assert.ok((await c.getManifest(repo, digest, MANIFEST_ACCEPT)).body.equals(manifest));

  const whole = await c.getBlob(repo, digestOf(big));
  assert.deepEqual([whole.status, whole.length, whole.totalSize], [200, big.length, big.length]);
  assert.ok((await buffer(whole.body)).equals(big));
  const part = await c.getBlob(repo, digestOf(big), { start: 1000, end: 1999 });
  assert.deepEqual([part.status, part.length, part.totalSize], [206, 1000, big.length]);
  assert.ok((await buffer(part.body)).equals(big.subarray(1000, 2000)));
  const tail = await c.getBlob(repo, digestOf(big), { start: big.length - 10 });
  assert.ok((await buffer(tail.body)).equals(big.subarray(big.length - 10)));

  assert.equal(await c.blobExists(repo, digestOf(big)), big.length);
  assert.equal(await c.blobExists(repo, digestOf(randomBytes(16))), undefined);
  const missing = await remoteError(c.getManifest(repo, 'nope'), 'status', 404);
  assert.ok(missing.notFound && !missing.transient);
  assert.equal(missing.code, 'MANIFEST_UNKNOWN');

  // A mount must not read the body: this one fails the push if it is read.
  const unreadable = new Readable({ read() { this.destroy(new Error('the mount read the body')); } });
  await c.pushBlob(`${repo}-copy`, digestOf(big), big.length, unreadable, { mountFrom: repo });
  assert.equal(await c.blobExists(`${repo}-copy`, digestOf(big)), big.length);
}

describe('against CNCF Distribution', { timeout: 120_000 }, () => {
  test('anonymous: ping, push, pull, ranges, mount', async () => {
    const c = client({ url: openURL }, { uploadChunkBytes: 64 * 1024 });
    const ping = await c.ping();
    assert.deepEqual({ ...ping, elapsedMs: 0 }, { auth: 'none', authenticated: true, elapsedMs: 0 });
    await roundTrip(c, 'remote/open');
    assert.deepEqual(await c.tags('remote/open'), ['v1']);
    await remoteError(c.referrers('remote/open', digestOf(Buffer.from('x'))), 'status', 404);
  });

  test('htpasswd: Basic challenge, and a wrong password is a 401 that does not name it', async () => {
    const c = client({ url: basicURL, username: DIST_USER, password: DIST_PASSWORD }, { uploadChunkBytes: 64 * 1024 });
    const ping = await c.ping();
    assert.deepEqual([ping.auth, ping.authenticated], ['basic', true]);
    await roundTrip(c, 'remote/basic');

    const anonymous = await client({ url: basicURL }).ping();
    assert.deepEqual([anonymous.auth, anonymous.authenticated], ['basic', false]);
    const wrong = await remoteError(client({ url: basicURL, username: DIST_USER, password: 'wrong-password-123' }).ping(), 'status', 401);
    assert.ok(!wrong.message.includes('wrong-password-123') && !wrong.transient, wrong.message);
    await remoteError(client({ url: basicURL }).getManifest('remote/basic', 'v1'), 'status', 401);
  });
});

describe('against Berth (token service)', { timeout: 120_000 }, () => {
  test('Bearer flow: ping, push, pull, ranges, mount; a wrong password is a 401', async () => {
    const c = client(berthAdmin(), { uploadChunkBytes: 64 * 1024 });
    const ping = await c.ping();
    assert.deepEqual(ping.auth, 'bearer');
    assert.equal(ping.realm, `${berth.url}/service/token`);
    assert.equal(ping.authenticated, true);
    const patches = (): number => berthLog.filter((l) => l['msg'] === 'request' && l['method'] === 'PATCH').length;
    const patchesBefore = patches();
    await roundTrip(c, `remote/bearer-${randomBytes(3).toString('hex')}`);
    assert.equal(patches() - patchesBefore, 4, 'the 200 KiB stream went in four PATCH chunks of at most 64 KiB');

    const wrong = await remoteError(client({ ...berthAdmin(), password: 'not-the-admin-password' }).ping(), 'status', 401);
    assert.ok(!wrong.message.includes('not-the-admin-password'), wrong.message);
    const anonymous = await client({ url: berth.url }).ping();
    assert.equal(anonymous.auth, 'bearer');
  });

  test('tokens are cached per scope set, and concurrent requests share one token request', async () => {
    const c = client(berthAdmin());
    const repo = `remote/cache-${randomBytes(3).toString('hex')}`;
    const other = `${repo}-other`;
    const image = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON) }));
    await c.pushBlob(repo, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
    await c.putManifest(repo, 'v1', image, MEDIA.ociManifest);
    await c.pushBlob(other, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
    await c.putManifest(other, 'v1', image, MEDIA.ociManifest);

    const reader = client(berthAdmin());
    const before = tokenRequests();
    await Promise.all(Array.from({ length: 8 }, () => reader.headManifest(repo, 'v1')));
    assert.equal(tokenRequests() - before, 1, 'eight concurrent first requests: one token');
    for (let i = 0; i < 3; i++) await reader.getManifest(repo, 'v1');
    assert.equal(tokenRequests() - before, 1, 'the pull token is reused');
    await reader.headManifest(other, 'v1');
    assert.equal(tokenRequests() - before, 2, 'another repository: another scope, another token');
  });

  test('tags follow Link pagination; referrers come back as an index', async () => {
    const c = client(berthAdmin());
    const repo = `remote/tags-${randomBytes(3).toString('hex')}`;
    const subject = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON) }));
    await c.pushBlob(repo, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
    const names = ['a1', 'a2', 'b1', 'b2', 'c1'];
    for (const tag of names) await c.putManifest(repo, tag, subject, MEDIA.ociManifest);
    const pages = (): number => berthLog.filter((l) => l['msg'] === 'request' && l['route'] === 'tags' && String(l['path']).includes(repo)).length;
    const seenBefore = pages();
    assert.deepEqual((await c.tags(repo, { pageSize: 2 })).sort(), names);
    assert.equal(pages() - seenBefore, 3, 'three pages of two');

    const layer = Buffer.from('signature');
    await c.pushBlob(repo, digestOf(layer), layer.length, layer);
    const referrer = manifestBytes(artifactManifest({ artifactType: 'application/vnd.test.sig', layers: [descriptorOf('application/octet-stream', layer)], subject: descriptorOf(MEDIA.ociManifest, subject) }));
    const referrerDigest = await c.putManifest(repo, digestOf(referrer), referrer, MEDIA.ociManifest);
    const index = await c.referrers(repo, digestOf(subject));
    assert.equal(index.mediaType, MEDIA.ociIndex);
    const listed = (JSON.parse(index.body.toString()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
    assert.deepEqual(listed, [referrerDigest]);
  });
});

describe('against misbehaving peers', { timeout: 120_000 }, () => {
  const manifest = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}');
  const digest = digestOf(manifest);

  test('a body that does not match its digest is a protocol error', async () => {
    const p = await peer(httpPeer((req, res) => {
      const wrongHeader = req.url!.includes('/manifests/v1');
      res.writeHead(200, { 'Content-Type': MEDIA.ociManifest, 'Docker-Content-Digest': wrongHeader ? digestOf(Buffer.from('other')) : digest });
      res.end(req.url!.includes(digest) ? Buffer.from(manifest.toString().replace('2', '3')) : manifest);
    }));
    const c = client({ url: p.url });
    assert.match((await remoteError(c.getManifest('app', digest), 'protocol')).message, /does not match the digest asked for/);
    assert.match((await remoteError(c.getManifest('app', 'v1'), 'protocol')).message, /Docker-Content-Digest/);
    assert.deepEqual((await c.getManifest('app', 'v2')).digest, digest);
  });

  test('silence is a timeout: no answer at all, and a body that stops', async () => {
    const silent = await peer(rawPeer(() => undefined));
    const started = Date.now();
    const error = await remoteError(client({ url: silent.url }, { timeoutMs: 400 }).headManifest('app', 'v1'), 'timeout');
    assert.ok(error.transient);
    assert.ok(Date.now() - started < 3000, 'a timeout is not retried');
    assert.equal(silent.seen.length, 1);

    const stalling = await peer(rawPeer(() => 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n' + 'x'.repeat(100)));
    const blob = await client({ url: stalling.url }, { timeoutMs: 400 }).getBlob('app', digest);
    const failure = await buffer(blob.body).then(() => undefined, (e: unknown) => e);
    assert.ok(failure instanceof RemoteError && failure.kind === 'timeout', String(failure));
  });

  test('a redirect to another origin drops Authorization; a cross-origin http realm gets no password', async () => {
    const denied = digestOf(Buffer.from('denied'));
    const token = await peer(httpPeer((_req, res) => res.end(JSON.stringify({ token: 'tok-123456' }))));
    const storage = await peer(httpPeer((req, res) => {
      if (req.url!.includes('deny')) res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${token.url}/storage-realm"` }).end();
      else res.end('blob-bytes');
    }));
    const registry = await peer(httpPeer((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${token.url}/token",service="svc",scope="repository:app:pull"` });
        res.end();
      } else {
        res.writeHead(307, { Location: `${storage.url}/bucket/${req.url!.includes(denied) ? 'deny' : 'object'}?sig=1` });
        res.end();
      }
    }));
    const c = client({ url: registry.url, username: 'u', password: 'redirect-secret' });
    const blob = await c.getBlob('app', digest);
    assert.equal((await buffer(blob.body)).toString(), 'blob-bytes');
    assert.equal(registry.seen.at(-1)!.headers.authorization, 'Bearer tok-123456');
    assert.equal(storage.seen.length, 1);
    assert.equal(storage.seen[0]!.headers.authorization, undefined, 'no Authorization to the storage origin');
    assert.equal(token.seen[0]!.headers.authorization, undefined, 'no password to a plain-http realm on another origin');
    assert.match(token.seen[0]!.url, /^\/token\?service=svc&scope=repository%3Aapp%3Apull$/);
    // A challenge from the storage host is not answered: it must not choose where credentials go.
    await remoteError(c.getBlob('app', denied), 'status', 401);
    assert.deepEqual(token.seen.map((r) => r.url.split('?')[0]), ['/token']);
  });

  test('hostile WWW-Authenticate headers are protocol errors', async () => {
    const hostile = [
      'Bearer realm="http://127.0.0.1:1/unterminated',
      'Bearer realm="javascript:alert(1)"',
      'Bearer realm=""',
      'Bearer service="x"',
      'Bearer realm="http://user:pw@127.0.0.1/t"',
      'Bearer realm="http://127.0.0.1/t",scope="' + 'repository:a:pull '.repeat(40) + '"',
      'Negotiate abc==',
      'Bearer realm="http://127.0.0.1/\x01t"',
      'Bearer realm=\xff',
      '=====, ,,,',
      '"',
      'Bearer ' + 'a=b,'.repeat(3000),
      'Bearer realm="' + 'x'.repeat(20_000) + '"',
    ];
    let i = 0;
    const p = await peer(rawPeer(() => Buffer.from(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ${hostile[i++ % hostile.length]}\r\nContent-Length: 0\r\n\r\n`, 'latin1')));
    for (const header of hostile) {
      const error = await remoteError(client({ url: p.url, username: 'u', password: 'hostile-secret' }).ping(), 'protocol');
      assert.ok(!error.message.includes('hostile-secret') && !error.message.includes('javascript'), `${JSON.stringify(header.slice(0, 40))}: ${error.message}`);
    }
  });

  test('a garbage token response is a protocol error; a refused token is a 401', async () => {
    const answers = ['not json', JSON.stringify({ token: 'bad token with spaces' }), JSON.stringify({ expires_in: 60 }), JSON.stringify({ access_token: 'good-token' })];
    let n = 0;
    const token = await peer(httpPeer((_req, res) => res.end(answers[n++])));
    const registry = await peer(httpPeer((_req, res) => {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${token.url}/token"`, 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `token good-token refused\n${'z'.repeat(1000)}` }] }));
    }));
    for (let k = 0; k < 3; k++) await remoteError(client({ url: registry.url }).headManifest('app', 'v1'), 'protocol');
    const refused = await remoteError(client({ url: registry.url }).getManifest('app', 'v1'), 'status', 401);
    assert.equal(refused.code, 'UNAUTHORIZED');
    assert.ok(!refused.message.includes('good-token') && refused.message.length < 400, refused.message);
  });

  test('502-504 and resets are retried for reads, 429 is not', async () => {
    let calls = 0;
    const flaky = await peer(httpPeer((_req, res) => {
      calls++;
      if (calls <= 2) res.writeHead(503).end();
      else res.writeHead(200, { 'Content-Type': MEDIA.ociManifest }).end(manifest);
    }));
    assert.equal((await client({ url: flaky.url }).getManifest('app', digest)).digest, digest);
    assert.equal(calls, 3);

    const limited = await peer(httpPeer((_req, res) => res.writeHead(429, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}')));
    const error = await remoteError(client({ url: limited.url }).getManifest('app', 'v1'), 'status', 429);
    assert.ok(error.transient);
    assert.equal(error.code, 'TOOMANYREQUESTS');
    assert.equal(limited.seen.length, 1);

    let resets = 0;
    const ok = `HTTP/1.1 200 OK\r\nContent-Type: ${MEDIA.ociManifest}\r\nContent-Length: ${manifest.length}\r\n\r\n${manifest.toString()}`;
    const resetting = await peer(rawPeer(() => (resets++ < 2 ? null : ok)));
    assert.equal((await client({ url: resetting.url }).getManifest('app', digest)).digest, digest);
    assert.equal(resetting.seen.length, 3, 'two connections closed without an answer, then the answer');
  });

  test('TLS: the endpoint CA adds to the system roots; insecure covers the endpoint only, not where it redirects', async () => {
    const material = await createTlsMaterial({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    scratch.push(material.dir);
    const tls = { key: await readFile(material.serverKey, 'utf8'), cert: await readFile(material.serverCert, 'utf8') };
    const ca = await readFile(material.caCert, 'utf8');
    const storage = await peer(httpPeer((_req, res) => res.end('stored'), tls));
    const registry = await peer(httpPeer((req, res) => {
      if (req.url === '/v2/') res.end('{}');
      else res.writeHead(302, { Location: `${storage.url}/object` }).end();
    }, tls));
    assert.match((await remoteError(client({ url: registry.url }).ping(), 'unreachable')).message, /TLS verification failed/);
    assert.equal((await client({ url: registry.url, ca }).ping()).auth, 'none');
    const insecure = client({ url: registry.url, insecure: true });
    assert.equal((await insecure.ping()).authenticated, true);
    await remoteError(insecure.getBlob('app', digest), 'unreachable');
    assert.equal(storage.seen.length, 0);
    const trusted = await client({ url: registry.url, ca }).getBlob('app', digest);
    assert.equal((await buffer(trusted.body)).toString(), 'stored');
  });

  test('names, references and digests are checked before anything is sent', async () => {
    const p = await peer(httpPeer((_req, res) => res.writeHead(500).end()));
    const c = client({ url: p.url });
    for (const name of ['../etc', 'a/../../b', 'UPPER', 'a//b', '', 'a?b', 'a%2fb']) await remoteError(c.getManifest(name, 'v1'), 'protocol');
    for (const reference of ['..', 'a/b', 'sha256:abc', 'md5:' + 'a'.repeat(32), '-x', 'x'.repeat(200)]) await remoteError(c.getManifest('app', reference), 'protocol');
    await remoteError(c.getBlob('app', 'v1'), 'protocol');
    await remoteError(c.pushBlob('app', digest, 5, Buffer.from('four')), 'protocol');
    assert.equal(p.seen.length, 0);
    assert.throws(() => new RegistryClient({ name: 'x', type: 'generic', url: 'ftp://example' }), RemoteError);
    assert.equal(defaultURL('dockerhub'), 'https://registry-1.docker.io');
    assert.equal(defaultURL('generic'), undefined);
  });
});

describe('catalog, deletes and resumable pushes', { timeout: 120_000 }, () => {
  test('catalog follows Link pages; a registry without one is notFound', async () => {
    const c = client({ url: openURL });
    const names = ['cat/a', 'cat/b', 'cat/c'];
    for (const name of names) await c.pushBlob(name, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
    // Distribution lists a repository once it holds a blob.
    const listed = await c.catalog({ pageSize: 1 });
    for (const name of names) assert.ok(listed.includes(name), `${name} in ${listed.join(' ')}`);
    assert.equal(new Set(listed).size, listed.length);
    const bearer = client(berthAdmin());
    const repo = `remote/catalog-${randomBytes(3).toString('hex')}`;
    await bearer.pushBlob(repo, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
    await bearer.putManifest(repo, 'v1', manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON) })), MEDIA.ociManifest);
    assert.ok((await bearer.catalog({ pageSize: 2 })).includes(repo));

    const none = await peer(httpPeer((_req, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND","message":"no"}]}')));
    assert.ok((await remoteError(client({ url: none.url }).catalog(), 'status', 404)).notFound);
    const garbage = await peer(httpPeer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"repositories":"all"}')));
    await remoteError(client({ url: garbage.url }).catalog(), 'protocol');
  });

  test('deleteManifest: deleted, already gone, and deletes disabled', async () => {
    for (const c of [client({ url: openURL }), client(berthAdmin())]) {
      const repo = `remote/delete-${randomBytes(3).toString('hex')}`;
      const manifest = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociEmpty, EMPTY_JSON) }));
      await c.pushBlob(repo, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON);
      const digest = await c.putManifest(repo, 'v1', manifest, MEDIA.ociManifest);
      await c.deleteManifest(repo, digest);
      await remoteError(c.headManifest(repo, digest), 'status', 404);
      await c.deleteManifest(repo, digest);
    }
    const disabled = await peer(httpPeer((_req, res) => res.writeHead(405, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}')));
    const error = await remoteError(client({ url: disabled.url }).deleteManifest('app', digestOf(EMPTY_JSON)), 'status', 405);
    assert.match(error.message, /deletes are disabled at the registry/);
  });

  test('a chunked push given an opener resumes after a PATCH breaks mid-chunk', async () => {
    const blob = randomBytes(300 * 1024 + 5);
    const digest = digestOf(blob);
    for (const target of [openURL, berth.url]) {
      const proxy = await BreakProxy.start(target);
      peers.push({ url: proxy.url, seen: [], close: () => proxy.close() });
      const c = client(target === berth.url ? { ...berthAdmin(), url: proxy.url } : { url: proxy.url }, { uploadChunkBytes: 64 * 1024 });
      const repo = `remote/resume-${randomBytes(3).toString('hex')}`;
      const offsets: number[] = [];
      const open = async (offset: number): Promise<Readable> => {
        offsets.push(offset);
        return Readable.from(pieces(blob.subarray(offset), 16 * 1024));
      };
      await c.pushBlob(repo, digestOf(EMPTY_JSON), EMPTY_JSON.length, EMPTY_JSON); // a token for the repository first
      proxy.seen.length = 0;
      proxy.breakNext('PATCH', 40_000, 2); // the third chunk, 40 000 bytes in
      const sent = await c.pushBlob(repo, digest, blob.length, open);
      assert.equal(await c.blobExists(repo, digest), blob.length);
      const back = await c.getBlob(repo, digest);
      assert.equal(digestOf(await buffer(back.body)), digest, 'the stored blob verifies');
      assert.ok(offsets.length >= 2 && offsets[0] === 0, `reopened at ${offsets.join(', ')}`);
      // Berth keeps the bytes of a broken chunk and says so; Distribution drops a session whose
      // size no longer matches its signed state, so the push starts over there.
      if (target === berth.url) assert.ok(offsets[1]! > 2 * 64 * 1024, `resumed at ${offsets[1]}`);
      assert.ok(proxy.bodyBytes() < 2 * blob.length, `${proxy.bodyBytes()} body bytes for a ${blob.length}-byte blob\n${proxy.seen.map((r) => `${r.method} ${r.path} ${r.bodyBytes} → ${r.status ?? 'cut'}`).join('\n')}`);
      assert.ok(sent >= blob.length && sent < 2 * blob.length, `sent ${sent}`);
    }
  });

  test('an opener push gives up after five resumes; a stream push is never resumed', async () => {
    const proxy = await BreakProxy.start(openURL);
    peers.push({ url: proxy.url, seen: [], close: () => proxy.close() });
    const c = client({ url: proxy.url }, { uploadChunkBytes: 16 * 1024 });
    const blob = randomBytes(40 * 1024);
    for (let i = 0; i < 6; i++) proxy.breakNext('PATCH', 100);
    let opened = 0;
    await remoteError(c.pushBlob('remote/give-up', digestOf(blob), blob.length, async (offset) => (opened++, Readable.from([blob.subarray(offset)]))), 'unreachable');
    assert.equal(opened, 6);
    proxy.breakNext('PATCH', 100);
    await remoteError(c.pushBlob('remote/give-up', digestOf(blob), blob.length, Readable.from([blob])), 'unreachable');
  });
});

test('the challenge parser only ever throws ChallengeError', () => {
  assert.deepEqual(parseChallenges(['Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull repository:c:pull,push"', 'Basic realm="x\\"y", charset=UTF-8']), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull repository:c:pull,push' } },
    { scheme: 'basic', params: { realm: 'x"y', charset: 'UTF-8' } },
  ].map((c) => ({ ...c, params: Object.assign(Object.create(null) as object, c.params) })));
  const chosen = chooseChallenge(parseChallenges(['Basic realm="b", Bearer realm="https://a/t", scope="s1 s2"']));
  assert.equal(chosen.scheme, 'bearer');
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 3 }), (values) => {
      try {
        chooseChallenge(parseChallenges(values));
      } catch (error) {
        if (!(error instanceof ChallengeError)) throw error;
      }
    }),
    { numRuns: 2000 },
  );
});
