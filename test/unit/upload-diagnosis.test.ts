// explainRefusal: which view of an upload session a refused request gets. The owner and system
// administrators (identities the request proved) see how the session was opened; anyone else only
// what happened and what to run. The access log (ctx.diagnosis) always has everything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Identity } from '../../src/auth/identity.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import type { Context } from '../../src/http/context.ts';
import { explainRefusal, maySeeSessionOrigin } from '../../src/http/oci/diagnosis.ts';
import type { SessionRecord } from '../../src/registry/uploads.ts';

const SESSION: SessionRecord = {
  id: 'c2Vzc2lvbi1vbmUtdHdvLXRocmVl',
  repository: 'team/app',
  openedBy: 'alice',
  openedAt: Date.now() - 5 * 60_000,
  origin: {
    host: 'registry.lan:5000',
    scheme: 'http',
    via: 'http://registry.lan:5000',
    forwarded: { 'x-forwarded-for': '198.51.100.77', via: '1.1 opener-proxy' },
    client: '198.51.100.77',
    userAgent: 'OpenerClient/7.7',
  },
};
const DEPS = {
  tokenTTL: 1800,
  externalURLs: ['https://hub.example.com'],
  authorizer: { isAdmin: async (identity: Identity) => identity.kind === 'user' && identity.name === 'root' },
};
const OPENER_DETAILS = ['alice', '198.51.100.77', 'opener-proxy', 'OpenerClient', 'registry.lan'];
const CALLER_DETAILS = ['203.0.113.88', 'caller-proxy'];

function context(scheme: 'none' | 'bearer', identity?: Identity): Context {
  const headers = { host: 'hub.example.com:443', 'x-forwarded-for': '203.0.113.88', via: '1.1 caller-proxy', 'user-agent': 'CallerClient/1.0' };
  return { req: { headers }, secure: false, auth: { scheme, identity }, origin: { client: '203.0.113.88' } } as unknown as Context;
}
const challenge = () => new RegistryError('UNAUTHORIZED', 'authentication required', { scope: ['repository:team/app:pull,push'] }, { headers: { 'WWW-Authenticate': 'Bearer realm="x"' } });
const expired = () => new RegistryError('UNAUTHORIZED', 'token expired: request a new one', { token: 'expired' }, { headers: { 'WWW-Authenticate': 'Bearer realm="x",error="invalid_token"' } });
const alice: Identity = { kind: 'user', name: 'alice', isAdmin: false };
const root: Identity = { kind: 'user', name: 'root', isAdmin: false }; // as a token's subject: the flag is looked up
const bob: Identity = { kind: 'user', name: 'bob', isAdmin: false };
const robot: Identity = { kind: 'robot', name: 'alice', id: 1 };

async function explain(ctx: Context, err: RegistryError): Promise<{ error: RegistryError; shown: string }> {
  const error = (await explainRefusal(ctx, err, SESSION, DEPS)) as RegistryError;
  assert.ok(error instanceof RegistryError);
  return { error, shown: JSON.stringify({ message: error.message, detail: error.detail, headers: error.headers }) };
}

test('who may see how a session was opened: its owner and administrators, by a proved identity', async () => {
  assert.equal(await maySeeSessionOrigin(alice, SESSION, DEPS.authorizer), true);
  assert.equal(await maySeeSessionOrigin(root, SESSION, DEPS.authorizer), true);
  assert.equal(await maySeeSessionOrigin(bob, SESSION, DEPS.authorizer), false);
  assert.equal(await maySeeSessionOrigin(robot, SESSION, DEPS.authorizer), false, 'a robot named like the owner is not the owner');
  assert.equal(await maySeeSessionOrigin({ kind: 'anonymous' }, SESSION, DEPS.authorizer), false);
  assert.equal(await maySeeSessionOrigin(undefined, SESSION, DEPS.authorizer), false);
  assert.equal(await maySeeSessionOrigin(alice, { ...SESSION, openedBy: null }, DEPS.authorizer), false);
});

test('credentials dropped, no identity: what happened, causes and doctor; nothing of either request\'s origin; the log has it all', async () => {
  const ctx = context('none');
  const { error, shown } = await explain(ctx, challenge());
  for (const secret of [...OPENER_DETAILS, ...CALLER_DETAILS]) assert.ok(!shown.includes(secret), `shows "${secret}": ${shown}`);
  assert.match(error.message, /upload session c2Vzc2lvbi1vbmUtdHdvLXRocmVl was opened with credentials, but this request arrived without an Authorization header/);
  assert.match(error.message, /berth doctor <your registry URL>/, 'an unconfigured URL of the opener is not shown');
  const detail = error.detail as Record<string, any>;
  assert.equal(detail.diagnosis, 'credentials-dropped');
  assert.deepEqual(detail.received, { host: 'hub.example.com:443', scheme: 'http' });
  assert.match(detail.likelyCauses[0], /reached Berth as http:\/\/hub\.example\.com:443, not as the session's first request did/);
  assert.equal(detail.likelyCauses.length, 3);
  assert.deepEqual(error.headers, { 'WWW-Authenticate': 'Bearer realm="x"' }, 'the challenge is kept');
  assert.equal(ctx.diagnosis?.code, 'credentials-dropped');
  assert.equal(ctx.diagnosis?.openedBy, 'alice');
  assert.deepEqual(ctx.diagnosis?.openedFrom, SESSION.origin);
  assert.match(ctx.diagnosis!.message, /opened by "alice" via http:\/\/registry\.lan:5000/);
});

test('a configured external URL may be named in the doctor command to anyone', async () => {
  const session = { ...SESSION, origin: { ...SESSION.origin!, via: 'https://hub.example.com' } };
  const error = (await explainRefusal(context('none'), challenge(), session, DEPS)) as RegistryError;
  assert.match(error.message, /Run `berth doctor https:\/\/hub\.example\.com` from the client's machine/);
});

test('the owner or an administrator sees everything', async () => {
  for (const who of [alice, root]) {
    const { error } = await explain(context('none', who), challenge());
    const detail = error.detail as Record<string, any>;
    assert.match(error.message, /opened by "alice" via http:\/\/registry\.lan:5000/, who.kind);
    assert.match(error.message, /berth doctor http:\/\/registry\.lan:5000/);
    assert.deepEqual(detail.session.via, SESSION.origin);
    assert.equal(detail.session.openedBy, 'alice');
    assert.equal(detail.received.client, '203.0.113.88');
    assert.equal(detail.received.forwarded.via, '1.1 caller-proxy');
    assert.match(detail.likelyCauses[0], /the session's first request as http:\/\/registry\.lan:5000/);

    const expiredView = await explain(context('bearer', who), expired());
    assert.match(expiredView.error.message, /opened 5 min ago by "alice"\); tokens live auth\.tokenTTL = 1800 s/);
    assert.deepEqual((expiredView.error.detail as Record<string, any>).session.via, SESSION.origin);
  }
});

test('an expired token of anyone else, or of no proved identity: "expired", without the opener', async () => {
  for (const who of [bob, robot, undefined]) {
    const ctx = context('bearer', who);
    const { error, shown } = await explain(ctx, expired());
    for (const secret of [...OPENER_DETAILS, ...CALLER_DETAILS]) assert.ok(!shown.includes(secret), `shows "${secret}": ${shown}`);
    assert.match(error.message, /access token expired during upload session c2Vzc2lvbi1vbmUtdHdvLXRocmVl \(opened 5 min ago\); tokens live auth\.tokenTTL = 1800 s/);
    assert.deepEqual(error.detail, { diagnosis: 'token-expired', token: 'expired', session: { id: SESSION.id, openedAt: new Date(SESSION.openedAt).toISOString() }, tokenTTLSeconds: 1800 });
    assert.equal(ctx.diagnosis?.openedBy, 'alice');
    assert.match(ctx.diagnosis!.message, /by "alice"/);
  }
});

test('other refusals pass through unchanged', async () => {
  const plain = challenge();
  assert.equal(await explainRefusal(context('bearer', bob), plain, SESSION, DEPS), plain, 'a token lacking the scope');
  assert.equal(await explainRefusal(context('none'), plain, undefined, DEPS), plain, 'no such session');
  assert.equal(await explainRefusal(context('none'), plain, { ...SESSION, openedBy: null }, DEPS), plain, 'a session opened anonymously');
  const denied = new RegistryError('DENIED', 'denied');
  assert.equal(await explainRefusal(context('none'), denied, SESSION, DEPS), denied);
});
