// Berth signs and verifies its JWTs with node:crypto and remembers verified access tokens until they
// expire. jose (what Berth used before) is the reference here: the tokens must be byte for byte what
// jose signs, and every verdict the one jose's jwtVerify gives with the options Berth used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { SignJWT, CompactSign, jwtVerify, errors } from 'jose';
import { TokenService, TokenError } from '../../src/auth/tokens.ts';
import type { SigningKey } from '../../src/auth/keys.ts';

const settings = { issuer: 'berth', service: 'registry.test', ttl: 300, refreshTTL: 3600 };
const access = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }];

function newKey(kid = 'test-kid-0123456'): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, kid };
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

const now = () => Math.floor(Date.now() / 1000);

/** jose's verdict with the options TokenService used to pass it. */
async function joseVerdict(token: string, key: SigningKey): Promise<'valid' | 'expired' | 'invalid'> {
  try {
    await jwtVerify(token, key.publicKey, { issuer: settings.issuer, audience: settings.service, algorithms: ['EdDSA'], clockTolerance: 30 });
    return 'valid';
  } catch (err) {
    return err instanceof errors.JWTExpired ? 'expired' : 'invalid';
  }
}

async function berthVerdict(tokens: TokenService, token: string): Promise<'valid' | 'expired' | 'invalid'> {
  try {
    await tokens.verifyAccess(token);
    return 'valid';
  } catch (err) {
    assert.ok(err instanceof TokenError, String(err));
    return err.reason;
  }
}

test('access and refresh tokens are byte for byte what jose signs for the same claims', async () => {
  const key = newKey();
  const tokens = new TokenService(key, settings);
  const binding = { uid: randomUUID(), cred: 'pw:7' };
  const issued = await tokens.issueAccess('alice', access, binding);
  const c = claimsOf(issued.token);
  assert.equal(c.iat, Math.floor(issued.issuedAt.getTime() / 1000));
  const reference = await new SignJWT({ access, uid: binding.uid, cred: binding.cred })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })
    .setIssuer(settings.issuer)
    .setAudience(settings.service)
    .setIssuedAt(c.iat as number)
    .setNotBefore((c.iat as number) - 30)
    .setExpirationTime((c.iat as number) + settings.ttl)
    .setJti(c.jti as string)
    .setSubject('alice')
    .sign(key.privateKey);
  assert.equal(issued.token, reference);

  const anonymous = await tokens.issueAccess(undefined, []);
  const a = claimsOf(anonymous.token);
  assert.equal('sub' in a, false, 'anonymous tokens carry no subject');

  const refresh = await tokens.issueRefresh('alice', binding);
  const r = claimsOf(refresh);
  const referenceRefresh = await new SignJWT({ typ: 'refresh', uid: binding.uid, cred: binding.cred })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })
    .setIssuer(settings.issuer)
    .setAudience(settings.service)
    .setSubject('alice')
    .setIssuedAt(r.iat as number)
    .setExpirationTime((r.iat as number) + settings.refreshTTL)
    .setJti(r.jti as string)
    .sign(key.privateKey);
  assert.equal(refresh, referenceRefresh);
  assert.equal(await joseVerdict(issued.token, key), 'valid');
  assert.deepEqual((await tokens.verifyAccess(issued.token)).binding, binding, 'the binding comes back from the token');
});

test('a refresh token from a personal access token never outlives it', async () => {
  const tokens = new TokenService(newKey(), settings);
  const binding = { uid: randomUUID(), cred: 'pat:12' };
  const soon = Date.now() + 600_000;
  const capped = claimsOf(await tokens.issueRefresh('alice', binding, soon));
  assert.equal(capped.exp, Math.floor(soon / 1000), 'expires with the token it came from');
  const uncapped = claimsOf(await tokens.issueRefresh('alice', binding, null));
  assert.equal(uncapped.exp, (uncapped.iat as number) + settings.refreshTTL, 'a token without expiry: the refresh lifetime');
});

test('verification gives jose\'s verdict: issuer, audience, algorithm, nbf and exp with 30 s tolerance, types', async () => {
  const key = newKey();
  const foreign = newKey();
  const t = now();
  const base = { access, iss: settings.issuer, aud: settings.service, iat: t, nbf: t - 30, exp: t + 60, jti: randomUUID(), sub: 'alice' };
  const header = { alg: 'EdDSA', typ: 'JWT', kid: key.kid };
  const signRaw = (claims: Record<string, unknown>, h: Record<string, unknown> = header, k = key) =>
    new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(h as { alg: string }).sign(k.privateKey);
  const cases: [string, Promise<string> | string][] = [
    ['valid', signRaw(base)],
    ['other issuer', signRaw({ ...base, iss: 'someone-else' })],
    ['no issuer', signRaw({ ...base, iss: undefined })],
    ['other audience', signRaw({ ...base, aud: 'other' })],
    ['audience list containing the service', signRaw({ ...base, aud: ['other', settings.service] })],
    ['audience list without it', signRaw({ ...base, aud: ['other'] })],
    ['no audience', signRaw({ ...base, aud: undefined })],
    ['nbf 29 s ahead', signRaw({ ...base, nbf: t + 29 })],
    ['nbf 45 s ahead', signRaw({ ...base, nbf: t + 45 })],
    ['nbf a string', signRaw({ ...base, nbf: String(t) })],
    ['iat a string', signRaw({ ...base, iat: 'yesterday' })],
    ['exp 25 s ago (tolerated)', signRaw({ ...base, exp: t - 25 })],
    ['exp 40 s ago', signRaw({ ...base, exp: t - 40 })],
    ['exp a string', signRaw({ ...base, exp: String(t + 60) })],
    ['expired and not yet valid', signRaw({ ...base, nbf: t + 100, exp: t - 100 })],
    ['no exp', signRaw({ ...base, exp: undefined })],
    ['signed by another key', signRaw(base, header, foreign)],
    ['header without typ', signRaw(base, { alg: 'EdDSA' })],
    ['payload an array', new CompactSign(Buffer.from('[1,2]')).setProtectedHeader(header).sign(key.privateKey)],
    ['payload not JSON', new CompactSign(Buffer.from('nope')).setProtectedHeader(header).sign(key.privateKey)],
    ['garbage', 'a.b.c'],
    ['two segments', 'a.b'],
    ['empty', ''],
  ];
  const signed = await Promise.all(cases.map(async ([name, token]) => [name, await token] as const));
  const valid = signed[0]![1];
  const [h, p, s] = valid.split('.') as [string, string, string];
  const tampered = Buffer.from(p, 'base64url').toString('utf8').replace('"alice"', '"admin"');
  const more: [string, string][] = [
    ['payload changed after signing', `${h}.${Buffer.from(tampered).toString('base64url')}.${s}`],
    ['signature changed', `${h}.${p}.${s.slice(0, 40)}${s[40] === 'A' ? 'B' : 'A'}${s.slice(41)}`],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`],
    ['alg HS256 header over the same payload', `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')}.${p}.${s}`],
  ];
  const tokens = new TokenService(key, settings);
  const verdicts: Record<string, string> = {};
  for (const [name, token] of [...signed, ...more]) {
    const expected = await joseVerdict(token, key);
    verdicts[name] = expected;
    assert.equal(await berthVerdict(tokens, token), expected, name);
    // The second time may come from the cache: the same verdict.
    assert.equal(await berthVerdict(tokens, token), expected, `${name} (again)`);
  }
  // The reference itself draws the lines this test is about.
  assert.equal(verdicts['valid'], 'valid');
  assert.equal(verdicts['exp 25 s ago (tolerated)'], 'valid');
  assert.equal(verdicts['exp 40 s ago'], 'expired');
  assert.equal(verdicts['nbf 45 s ahead'], 'invalid');
  assert.equal(verdicts['other audience'], 'invalid');
  assert.equal(verdicts['payload changed after signing'], 'invalid');
  assert.equal(verdicts['signature changed'], 'invalid');
});

test('a remembered access token expires on time', async (t) => {
  const key = newKey();
  const start = Date.now();
  t.mock.timers.enable({ apis: ['Date'], now: start });
  const tokens = new TokenService(key, { ...settings, ttl: 60 });
  const { token } = await tokens.issueAccess('alice', access);
  const iat = Math.floor(start / 1000);
  assert.equal((await tokens.verifyAccess(token)).subject, 'alice');
  t.mock.timers.tick(60_000 + 29_000 - (start % 1000));
  assert.equal((await tokens.verifyAccess(token)).subject, 'alice', 'still within the 30 s tolerance');
  assert.equal(Math.floor(Date.now() / 1000), iat + 60 + 29);
  t.mock.timers.tick(1_000);
  await assert.rejects(tokens.verifyAccess(token), (e: unknown) => e instanceof TokenError && e.reason === 'expired');
  await assert.rejects(tokens.verifyAccess(token), (e: unknown) => e instanceof TokenError && e.reason === 'expired', 'and stays expired');
});

test('a refresh token is never accepted as an access token, cached or not; an access token never as a refresh token', async () => {
  const key = newKey();
  const tokens = new TokenService(key, settings);
  const { token: accessToken } = await tokens.issueAccess('alice', access);
  const binding = { uid: 'u-1', cred: 'pw:1' };
  const refresh = await tokens.issueRefresh('alice', binding);
  assert.deepEqual(await tokens.verifyRefresh(refresh), { subject: 'alice', binding });
  await tokens.verifyAccess(accessToken);
  await tokens.verifyAccess(accessToken);
  for (let i = 0; i < 3; i++) {
    await assert.rejects(tokens.verifyAccess(refresh), (e: unknown) => e instanceof TokenError && e.reason === 'invalid' && /refresh token/.test(e.message));
    await assert.rejects(tokens.verifyRefresh(accessToken), (e: unknown) => e instanceof TokenError && e.reason === 'invalid');
  }
  assert.deepEqual(await tokens.verifyRefresh(refresh), { subject: 'alice', binding });
});

test('the cache is keyed by the whole token: a cached token\'s subject or signature changed is refused', async () => {
  const key = newKey();
  const tokens = new TokenService(key, settings);
  const { token } = await tokens.issueAccess('alice', access);
  assert.equal((await tokens.verifyAccess(token)).subject, 'alice');
  const [h, p, s] = token.split('.') as [string, string, string];
  const forged = Buffer.from(Buffer.from(p, 'base64url').toString('utf8').replace('"alice"', '"admin"')).toString('base64url');
  await assert.rejects(tokens.verifyAccess(`${h}.${forged}.${s}`), TokenError);
  // (A character in the middle: the last one of an Ed25519 signature carries only 2 of its 6 bits.)
  const flipped = `${s.slice(0, 40)}${s[40] === 'A' ? 'B' : 'A'}${s.slice(41)}`;
  await assert.rejects(tokens.verifyAccess(`${h}.${p}.${flipped}`), TokenError);
  await assert.rejects(tokens.verifyAccess(`${token}x`), TokenError);
  // Another service's key never validates this one's tokens, whatever this one has cached.
  const other = new TokenService(newKey(), settings);
  await assert.rejects(other.verifyAccess(token), TokenError);
});

test('the cache stays bounded and keeps working past its size', async () => {
  const key = newKey();
  const tokens = new TokenService(key, settings, 100);
  const issued: string[] = [];
  for (let i = 0; i < 250; i++) issued.push((await tokens.issueAccess(`user${i}`, access)).token);
  for (const token of issued) await tokens.verifyAccess(token);
  const size = (tokens as unknown as { verified: Map<string, unknown> }).verified.size;
  assert.ok(size > 0 && size <= 100, `at most 100 remembered (${size})`);
  assert.equal((await tokens.verifyAccess(issued[0]!)).subject, 'user0', 'a forgotten token is verified again');
  assert.equal((await tokens.verifyAccess(issued.at(-1)!)).subject, 'user249');
});
