import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScopes, grants } from '../../src/auth/scope.ts';
import { loadConfig, ConfigError } from '../../src/config/load.ts';
import { loadOrCreateSigningKey } from '../../src/auth/keys.ts';
import { TokenService, TokenError } from '../../src/auth/tokens.ts';
import { normalizeHost } from '../../src/http/realm.ts';

test('scopes: Docker and OAuth2 forms, host:port names, merging', () => {
  const s = parseScopes(['repository:team/app:pull,push', 'repository:localhost:5000/x:pull registry:catalog:*', 'repository:team/app:delete', 'garbage', 'repository::pull']);
  assert.deepEqual(s, [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] },
    { type: 'repository', name: 'localhost:5000/x', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  assert.ok(grants(s, 'repository', 'team/app', 'push'));
  assert.ok(!grants(s, 'repository', 'team/other', 'pull'));
  assert.ok(grants(s, 'registry', 'catalog', 'anything'));
});

test('config: defaults, env overrides, YAML file, and errors naming the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-cfg-'));
  try {
    const c = loadConfig({ env: {} });
    assert.equal(c.addr, '0.0.0.0:5000');
    assert.equal(c.dataDir, './data');
    assert.equal(c.auth.anonymousPull, false);
    const file = join(dir, 'berth.yml');
    writeFileSync(file, 'addr: 127.0.0.1:6000\nexternalURL: https://hub.example.com\nauth:\n  tokenTTL: 1h\n');
    const f = loadConfig({ file, env: { BERTH_EXTERNAL_URL: 'https://a.example.com,http://b.lan:5000/', BERTH_ANONYMOUS_PULL: 'yes' }, flags: { addr: '127.0.0.1:7000' } });
    assert.equal(f.addr, '127.0.0.1:7000', 'flags win over the file');
    assert.deepEqual(f.externalURL, ['https://a.example.com', 'http://b.lan:5000'], 'env wins over the file; normalised to origins');
    assert.equal(f.auth.tokenTTL, 3600);
    assert.equal(f.auth.anonymousPull, true);
    const bad: [Record<string, string>, RegExp][] = [
      [{ BERTH_ADDR: 'nope' }, /^[\s\S]*addr: host:port/],
      [{ BERTH_EXTERNAL_URL: 'ftp://x' }, /externalURL\.0: must start with http/],
      [{ BERTH_EXTERNAL_URL: 'https://x/path' }, /externalURL\.0: must be scheme/],
      [{ BERTH_TOKEN_TTL: 'soon' }, /auth\.tokenTTL/],
      [{ BERTH_ANONYMOUS_PULL: 'maybe' }, /BERTH_ANONYMOUS_PULL: expected true or false/],
      [{ BERTH_TLS_CERT: '/x.pem' }, /tls: tls.cert and tls.key must be given together/],
      [{ BERTH_ADMIN_PASSWORD: 'short' }, /adminPassword: at least 8/],
    ];
    for (const [env, message] of bad) assert.throws(() => loadConfig({ env }), (err: unknown) => err instanceof ConfigError && message.test(err.message), String(message));
    writeFileSync(file, 'bogus: 1\n');
    assert.throws(() => loadConfig({ file, env: {} }), /bogus: unknown setting/);
    // Typos inside sections are refused too, naming the key (they were silently ignored).
    writeFileSync(file, 'auth: {tokenTtl: 1h}\nlog: {levle: info}\napi: {session_ttl: 1h}\n');
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('auth.tokenTtl: unknown setting (did you mean "auth.tokenTTL"?)') &&
        err.message.includes('log.levle: unknown setting') &&
        err.message.includes('api.session_ttl: unknown setting (did you mean "api.sessionTTL"?)'),
    );
    assert.throws(() => loadConfig({ file: join(dir, 'missing.yml'), env: {} }), /missing\.yml/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokens: signed with the persisted key, verified, refused when foreign or mistyped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-key-'));
  const other = mkdtempSync(join(tmpdir(), 'berth-key-'));
  try {
    const settings = { issuer: 'berth', service: 'berth', ttl: 60, refreshTTL: 600 };
    const key = loadOrCreateSigningKey(dir);
    assert.equal(loadOrCreateSigningKey(dir).kid, key.kid, 'the key persists');
    const tokens = new TokenService(key, settings);
    const access = [{ type: 'repository', name: 'a', actions: ['pull'] }];
    const claims = await tokens.verifyAccess((await tokens.issueAccess('alice', access)).token);
    assert.equal(claims.subject, 'alice');
    assert.deepEqual(claims.access, access);
    const foreign = new TokenService(loadOrCreateSigningKey(other), settings);
    await assert.rejects(tokens.verifyAccess((await foreign.issueAccess('alice', access)).token), (e: unknown) => e instanceof TokenError && e.reason === 'invalid');
    const refresh = await tokens.issueRefresh('alice', { uid: 'u-3', cred: 'pw:3' });
    assert.deepEqual(await tokens.verifyRefresh(refresh), { subject: 'alice', binding: { uid: 'u-3', cred: 'pw:3' } });
    await assert.rejects(tokens.verifyAccess(refresh), TokenError, 'a refresh token is not an access token');
    const expired = new TokenService(key, { ...settings, ttl: -3600 });
    await assert.rejects(tokens.verifyAccess((await expired.issueAccess('alice', access)).token), (e: unknown) => e instanceof TokenError && e.reason === 'expired');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  }
});

test('hosts compare with default ports normalised', () => {
  assert.equal(normalizeHost('Hub.Example.com:443', 'https:'), 'hub.example.com');
  assert.equal(normalizeHost('hub.example.com:80', 'http:'), 'hub.example.com');
  assert.equal(normalizeHost('hub.example.com:443', 'http:'), 'hub.example.com:443');
});

test('config: auth.mode ldap and oidc are validated at start, naming the field', async () => {
  const { openIdentitySources } = await import('../../src/auth/sources.ts');
  const dir = mkdtempSync(join(tmpdir(), 'berth-cfg-'));
  const load = (yaml: string, env: Record<string, string> = {}) => {
    const file = join(dir, 'berth.yml');
    writeFileSync(file, yaml);
    return loadConfig({ file, env });
  };
  const refused = (yaml: string, message: RegExp) => assert.throws(() => load(yaml), (err: unknown) => err instanceof ConfigError && message.test(err.message));
  try {
    refused('auth:\n  mode: ldap\n', /auth\.ldap: auth\.mode ldap needs the auth\.ldap section/);
    refused('auth:\n  mode: oidc\n', /auth\.oidc: auth\.mode oidc needs the auth\.oidc section/);
    refused('auth:\n  mode: sso\n', /auth\.mode/);
    refused('auth:\n  mode: ldap\n  ldap:\n    url: http://ldap.example.com\n    baseDN: dc=x\n', /auth\.ldap\.url: must be an ldap:\/\/ or ldaps:\/\/ URL/);
    refused('auth:\n  mode: ldap\n  ldap:\n    url: ldap://l\n    baseDN: dc=x\n    bindDN: cn=svc\n', /bindDN and auth\.ldap\.bindPassword must be given together/);
    refused('auth:\n  mode: ldap\n  ldap:\n    url: ldaps://l\n    startTLS: true\n    baseDN: dc=x\n', /startTLS is for ldap:\/\/ URLs/);
    refused('auth:\n  mode: ldap\n  ldap:\n    url: ldap://l\n    baseDN: dc=x\n    nestedGroups: deep\n', /auth\.ldap\.nestedGroups/);
    refused('auth:\n  mode: ldap\n  ldap:\n    url: ldap://l\n    baseDN: dc=x\n    groupMemberValue: uid\n    nestedGroups: search\n', /nestedGroups needs groupMemberValue dn/);
    refused('auth:\n  mode: oidc\n  oidc:\n    issuer: ftp://idp\n    clientId: berth\n', /auth\.oidc\.issuer: must be an https:\/\//);
    refused('auth:\n  mode: oidc\n  oidc:\n    issuer: https://idp\n', /auth\.oidc\.clientId/);
    // Secrets from the environment rather than the file.
    const ok = load('auth:\n  mode: ldap\n  ldap:\n    url: ldap://127.0.0.1:1\n    baseDN: dc=x\n    bindDN: cn=svc\n', { BERTH_LDAP_BIND_PASSWORD: 'from-env' });
    assert.equal(ok.auth.ldap?.bindPassword, 'from-env');
    assert.equal(ok.auth.ldap?.cacheTTL, 60);
    // An OIDC redirect URI that cannot be known exactly stops Berth at start.
    const oidc = load('auth:\n  mode: oidc\n  oidc:\n    issuer: https://idp.example.com\n    clientId: berth\n');
    assert.throws(() => openIdentitySources(oidc, undefined as never, undefined as never, () => undefined, undefined as never), (err: unknown) => err instanceof ConfigError && /redirectURL .* or externalURL/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
