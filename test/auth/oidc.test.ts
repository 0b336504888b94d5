// The OpenID Connect relying party (src/auth/oidc/) against a real provider (oidc-provider in its
// own process, test/support/oidc-provider.ts): code flow with PKCE, ID token validation (tampered,
// expired, foreign keys), key rotation, the device flow, hostile claims, the userinfo fallback, and
// a provider that is down or silent.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JWK } from 'jose';
import pino from 'pino';
import { IdentitySourceUnavailableError } from '../../src/auth/external.ts';
import { OidcClient, OidcError, type OidcConfig } from '../../src/auth/oidc/client.ts';
import { approveDevice, generateSigningKey, signInWithForm, startOidcProvider, type OidcProviderHandle, type TamperMode } from '../support/oidc-provider.ts';
import { ensurePackages, freePort } from '../support/system.ts';

const REDIRECT = 'http://127.0.0.1:9/api/v1/auth/oidc/callback';
const COOLDOWN_MS = 1_000;
const log = pino({ level: process.env['BERTH_TEST_LOG'] ?? 'silent' });

const users = [
  { sub: 'u-alice', login: 'alice', password: 'alice-pw', claims: { preferred_username: 'alice', email: 'alice@example.test', groups: ['developers', 'berth-admins'] } },
  { sub: 'u-bob', login: 'bob', password: 'bob-pw', claims: { preferred_username: 'bob', groups: 'developers', email: 'not an email' } },
  { sub: 'u-slash', login: 'slash', password: 'pw', claims: { preferred_username: 'eve/../admin', groups: [] } },
  { sub: 'u-ctl', login: 'ctl', password: 'pw', claims: { preferred_username: 'ctl\u0007\nname' } },
  { sub: 'u-nameless', login: 'nameless', password: 'pw', claims: { email: 'n@example.test' } },
  {
    sub: 'u-many',
    login: 'many',
    password: 'pw',
    claims: { preferred_username: 'many', groups: [42, null, { x: 1 }, '', 'x\u0000y', ...Array.from({ length: 10_000 }, (_, i) => `group-${i}`)] },
  },
];

function oidcConfig(issuer: string, overrides: Partial<OidcConfig> = {}): OidcConfig {
  return {
    issuer,
    clientId: 'berth',
    clientSecret: 'berth-secret',
    scopes: ['openid', 'profile', 'email', 'groups'],
    usernameClaim: 'preferred_username',
    groupsClaim: 'groups',
    adminGroup: 'berth-admins',
    autoOnboard: true,
    displayName: 'Test IdP',
    timeout: 5,
    clockTolerance: 30,
    recheckInterval: 300,
    ...overrides,
  };
}

describe('OpenID Connect relying party', () => {
  let provider: OidcProviderHandle;
  let client: OidcClient;
  let firstKey: JWK;

  /** One sign-in through the provider's pages; resolves to finish()'s outcome. */
  async function signIn(login: string, password: string, tweak: { state?: string } = {}) {
    const started = await client.begin(REDIRECT);
    const callback = await signInWithForm(started.url, login, password);
    return client.finish(callback, { ...started, state: tweak.state ?? started.state, redirectUri: REDIRECT });
  }

  before(async () => {
    firstKey = await generateSigningKey();
    provider = await startOidcProvider({
      clients: [{ clientId: 'berth', clientSecret: 'berth-secret', redirectUris: [REDIRECT] }],
      users,
      keys: [firstKey],
    });
    client = await OidcClient.discover(oidcConfig(provider.issuer), log, { jwksCooldownMs: COOLDOWN_MS });
  });

  after(async () => {
    await client?.close();
    await provider?.stop();
  });

  test('discovery reads the provider metadata', () => {
    assert.equal(client.issuer, provider.issuer);
    assert.equal(client.displayName, 'Test IdP');
    assert.equal(client.supportsDeviceFlow, true);
  });

  test('begin builds an authorization URL with PKCE S256, state, nonce and the scopes', async () => {
    const started = await client.begin(REDIRECT);
    const url = new URL(started.url);
    assert.equal(url.origin, provider.issuer);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('state'), started.state);
    assert.equal(url.searchParams.get('nonce'), started.nonce);
    assert.equal(url.searchParams.get('scope'), 'openid profile email groups');
    assert.equal(url.searchParams.get('redirect_uri'), REDIRECT);
    assert.ok(!started.url.includes(started.codeVerifier), 'the verifier never leaves Berth');
    const again = await client.begin(REDIRECT);
    assert.notEqual(again.state, started.state);
    assert.notEqual(again.nonce, started.nonce);
    await assert.rejects(client.begin('not a url'), OidcError);
  });

  test('the code flow gives the identity with groups and the admin flag', async () => {
    const { refreshToken, ...alice } = await signIn('alice', 'alice-pw');
    assert.equal(typeof refreshToken, 'string', 'the provider issues refresh tokens: kept to ask it again later');
    assert.deepEqual(alice, {
      source: 'oidc',
      externalId: `${provider.issuer} u-alice`,
      username: 'alice',
      email: 'alice@example.test',
      groups: [
        { externalId: 'developers', name: 'developers' },
        { externalId: 'berth-admins', name: 'berth-admins' },
      ],
      admin: true,
    });
    const bob = await signIn('bob', 'bob-pw');
    assert.equal(bob.username, 'bob');
    assert.deepEqual(bob.groups, [{ externalId: 'developers', name: 'developers' }], 'a string claim is one group');
    assert.equal(bob.admin, false);
    assert.equal(bob.email, undefined, 'an email claim that is no address is dropped');
  });

  test('a refresh asks the provider again: the person as it describes them now; refused once it drops them', async () => {
    const first = await signIn('bob', 'bob-pw');
    const again = await client.refresh(first.refreshToken!, first.externalId);
    assert.equal(again.username, 'bob');
    assert.deepEqual(again.groups, first.groups);
    assert.equal(typeof again.refreshToken, 'string');
    // Another person's id with bob's token: refused, never bob's identity under another name.
    await assert.rejects(client.refresh(again.refreshToken!, `${provider.issuer} u-alice`), (error: unknown) => error instanceof OidcError && error.kind === 'id_token');
    await assert.rejects(client.refresh('not-a-refresh-token', first.externalId), (error: unknown) => error instanceof OidcError && error.kind === 'provider');
    // The provider no longer lists bob: his grant's refresh is invalid_grant.
    const fresh = await signIn('bob', 'bob-pw');
    await provider.setUsers(users.filter((u) => u.login !== 'bob'));
    try {
      await assert.rejects(client.refresh(fresh.refreshToken!, fresh.externalId), (error: unknown) => error instanceof OidcError && error.kind === 'provider' && /invalid_grant/.test(error.message));
    } finally {
      await provider.setUsers(users);
    }
  });

  test('a callback whose state differs is refused', async () => {
    await assert.rejects(signIn('alice', 'alice-pw', { state: 'someone-elses-state' }), (error: unknown) => {
      assert.ok(error instanceof OidcError, String(error));
      assert.equal(error.kind, 'callback');
      return true;
    });
  });

  test('a sign-in the person cancels is an OidcError with the provider code', async () => {
    const started = await client.begin(REDIRECT);
    const callback = await signInWithForm(started.url, 'alice', 'alice-pw', { deny: true });
    await assert.rejects(client.finish(callback, { ...started, redirectUri: REDIRECT }), (error: unknown) => {
      assert.ok(error instanceof OidcError, String(error));
      assert.equal(error.kind, 'provider');
      assert.equal(error.providerError, 'access_denied');
      assert.match(error.message, /^Test IdP refused the sign-in: access_denied \(End-User aborted interaction\)$/);
      return true;
    });
  });

  test('a code used twice is refused by the provider (invalid_grant)', async () => {
    const started = await client.begin(REDIRECT);
    const callback = await signInWithForm(started.url, 'alice', 'alice-pw');
    await client.finish(callback, { ...started, redirectUri: REDIRECT });
    await assert.rejects(client.finish(callback, { ...started, redirectUri: REDIRECT }), (error: unknown) => {
      assert.ok(error instanceof OidcError, String(error));
      assert.equal(error.providerError, 'invalid_grant');
      return true;
    });
  });

  const tampered: Array<[TamperMode, RegExp]> = [
    ['wrong-nonce', /not for this sign-in \(nonce\)/],
    ['wrong-audience', /not for this sign-in \(aud\)/],
    ['expired', /expired/],
    ['bad-signature', /signature is not valid/],
    ['foreign-key', /signed with a key Test IdP does not publish/],
  ];
  for (const [mode, message] of tampered) {
    test(`an ID token tampered as ${mode} is refused`, async () => {
      await provider.setTamper(mode);
      try {
        await assert.rejects(signIn('alice', 'alice-pw'), (error: unknown) => {
          assert.ok(error instanceof OidcError, String(error));
          assert.equal(error.kind, 'id_token');
          assert.match(error.message, message);
          assert.doesNotMatch(error.message, /eyJ/, 'no token in the message');
          return true;
        });
      } finally {
        await provider.setTamper(undefined);
      }
    });
  }

  test('tokens signed by unknown keys do not turn into a storm of JWKS fetches', async () => {
    await provider.setTamper('foreign-key');
    try {
      const before = (await provider.stats())['/jwks'] ?? 0;
      const flows = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const started = await client.begin(REDIRECT);
          return { started, callback: await signInWithForm(started.url, 'alice', 'alice-pw') };
        }),
      );
      const results = await Promise.allSettled(flows.map(({ started, callback }) => client.finish(callback, { ...started, redirectUri: REDIRECT })));
      assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof OidcError));
      const fetched = ((await provider.stats())['/jwks'] ?? 0) - before;
      assert.ok(fetched <= 1, `4 unknown-kid tokens fetched the JWKS ${fetched} times`);
    } finally {
      await provider.setTamper(undefined);
    }
  });

  test('key rotation: a new signing key is fetched once, then used from the cache', async () => {
    await sleep(COOLDOWN_MS + 100);
    const secondKey = await generateSigningKey();
    await provider.restart({ keys: [secondKey] });
    for (let i = 0; i < 3; i++) assert.equal((await signIn('alice', 'alice-pw')).username, 'alice');
    assert.equal((await provider.stats())['/jwks'], 1, 'one JWKS fetch for three sign-ins after the rotation');

    await sleep(COOLDOWN_MS + 100);
    const thirdKey = await generateSigningKey();
    await provider.restart({ keys: [thirdKey, secondKey] });
    assert.equal((await signIn('bob', 'bob-pw')).username, 'bob');
    assert.equal((await signIn('alice', 'alice-pw')).username, 'alice');
    assert.equal((await provider.stats())['/jwks'], 1, 'the new key (old one still listed) was fetched once');
    assert.notEqual(firstKey.kid, thirdKey.kid);
  });

  test('the device flow: pending, approved, done', async () => {
    const device = await client.startDevice();
    assert.ok(device.deviceCode && device.userCode);
    assert.ok(device.verificationUriComplete?.startsWith(provider.issuer));
    assert.ok(device.interval >= 1 && device.expiresIn > 0);
    assert.deepEqual(await client.pollDevice(device.deviceCode), { status: 'pending' });
    await approveDevice(device.verificationUriComplete!, 'alice', 'alice-pw');
    const done = await client.pollDevice(device.deviceCode);
    assert.equal(done.status, 'done');
    assert.equal(done.status === 'done' && done.identity.username, 'alice');
    assert.equal(done.status === 'done' && done.identity.admin, true);

    const typed = await client.startDevice();
    await approveDevice({ uri: typed.verificationUri, userCode: typed.userCode }, 'bob', 'bob-pw');
    const bob = await client.pollDevice(typed.deviceCode);
    assert.equal(bob.status === 'done' && bob.identity.username, 'bob');
  });

  test('the device flow: denied, expired, tampered and malformed codes', async () => {
    const denied = await client.startDevice();
    await approveDevice(denied.verificationUriComplete!, 'alice', 'alice-pw', { deny: true });
    assert.deepEqual(await client.pollDevice(denied.deviceCode), { status: 'denied' });

    await provider.setDeviceCodeTTL(1);
    try {
      const expired = await client.startDevice();
      await sleep(2_100);
      assert.deepEqual(await client.pollDevice(expired.deviceCode), { status: 'expired' });
    } finally {
      await provider.setDeviceCodeTTL(600);
    }

    const tamperedCode = await client.startDevice();
    await approveDevice(tamperedCode.verificationUriComplete!, 'alice', 'alice-pw');
    await provider.setTamper('bad-signature');
    try {
      await assert.rejects(client.pollDevice(tamperedCode.deviceCode), (error: unknown) => error instanceof OidcError && error.kind === 'id_token');
    } finally {
      await provider.setTamper(undefined);
    }

    await assert.rejects(client.pollDevice('no such code'), (error: unknown) => error instanceof OidcError && error.kind === 'callback');
    await assert.rejects(client.pollDevice('unknown-code'), (error: unknown) => error instanceof OidcError && error.providerError === 'invalid_grant');
  });

  test('hostile user name claims are refused, naming the claim but not the value', async () => {
    for (const login of ['slash', 'ctl', 'nameless']) {
      await assert.rejects(signIn(login, 'pw'), (error: unknown) => {
        assert.ok(error instanceof OidcError, String(error));
        assert.equal(error.kind, 'claims');
        assert.match(error.message, /"preferred_username" claim/);
        assert.doesNotMatch(error.message, /eve|ctl\u0007/);
        return true;
      });
    }
  });

  test('10 000 groups are capped, non-string values ignored', async () => {
    const many = await signIn('many', 'pw');
    assert.equal(many.groups.length, 500);
    assert.equal(many.groups[0]!.name, 'group-0');
    assert.equal(many.groups[499]!.name, 'group-499');
  });

  test('a provider that keeps claims out of the ID token is completed from userinfo', async () => {
    await provider.restart({ conformIdTokenClaims: true });
    const alice = await signIn('alice', 'alice-pw');
    assert.equal(alice.username, 'alice');
    assert.equal(alice.admin, true);
    assert.equal(alice.email, 'alice@example.test');
    assert.equal((await provider.stats())['/me'], 1);
    await provider.restart({ conformIdTokenClaims: false });
  });

  test('a real browser signs in through the provider pages', async () => {
    await ensurePackages([{ binary: 'chromium', pkg: 'chromium' }]);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium' });
    try {
      const page = await browser.newPage();
      let callback: URL | undefined;
      await page.route(`${REDIRECT}**`, async (route) => {
        callback = new URL(route.request().url());
        await route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at Berth' });
      });
      const started = await client.begin(REDIRECT);
      await page.goto(started.url);
      await page.fill('input[name=login]', 'alice');
      await page.fill('input[name=password]', 'alice-pw');
      await page.click('button[value=login]');
      await page.waitForURL(`${REDIRECT}**`, { timeout: 10_000 });
      assert.ok(callback, 'the browser came back to the redirect URI');
      const alice = await client.finish(callback, { ...started, redirectUri: REDIRECT });
      assert.equal(alice.username, 'alice');
    } finally {
      await browser.close();
    }
  });

  test('a provider that is down is IdentitySourceUnavailableError, quickly', async () => {
    const started = await client.begin(REDIRECT);
    const callback = await signInWithForm(started.url, 'alice', 'alice-pw');
    await provider.stop();
    try {
      const t0 = Date.now();
      await assert.rejects(client.finish(callback, { ...started, redirectUri: REDIRECT }), IdentitySourceUnavailableError);
      await assert.rejects(client.pollDevice('some-code'), IdentitySourceUnavailableError);
      await assert.rejects(OidcClient.discover(oidcConfig(provider.issuer), log), IdentitySourceUnavailableError);
      assert.ok(Date.now() - t0 < 3_000, 'refused connections fail at once');
    } finally {
      await provider.restart();
    }
  });

  test('a provider that accepts but never answers times out within auth.oidc.timeout', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => held.push(socket));
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
    try {
      const t0 = Date.now();
      await assert.rejects(OidcClient.discover(oidcConfig(`http://127.0.0.1:${port}`, { timeout: 1 }), log), (error: unknown) => {
        assert.ok(error instanceof IdentitySourceUnavailableError, String(error));
        assert.match(error.message, /timed out/);
        return true;
      });
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 900 && elapsed < 4_000, `gave up after ${elapsed} ms`);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('an http issuer that is not on this machine is refused before any request', async () => {
    await assert.rejects(OidcClient.discover(oidcConfig('http://idp.example.com/realms/x'), log), (error: unknown) => error instanceof OidcError && error.kind === 'unsupported');
  });
});
