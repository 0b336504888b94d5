// URL judging and client-family rules of `berth doctor` (pure functions).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grantText, missingActions, tokenAccess } from '../../src/diagnose/doctor/auth.ts';
import { parseChallenges } from '../../src/diagnose/doctor/challenge.ts';
import { redactTokens } from '../../src/diagnose/doctor/recorder.ts';
import { formatSize, parseSize, probeSizes } from '../../src/diagnose/doctor/size.ts';
import { tokenLifetimeFinding } from '../../src/diagnose/doctor/body.ts';
import { canonicalAuthority, familiesDroppingCredentials, judgeNextUrl, judgeRealm, parseTarget, rawOrigin, resolveReference } from '../../src/diagnose/doctor/urls.ts';

const typed = parseTarget('https://hub.example.com');
const from = 'https://hub.example.com/v2/team/app/blobs/uploads/';

describe('parseTarget and raw authorities', () => {
  test('keeps the authority exactly as typed, default scheme https', () => {
    assert.equal(parseTarget('hub.example.com').base, 'https://hub.example.com');
    assert.equal(parseTarget('https://Hub.Example.com:443').authority, 'hub.example.com:443');
    assert.equal(parseTarget('http://127.0.0.1:5000/').port, '5000');
    assert.equal(parseTarget('https://hub.example.com').port, '443');
    assert.throws(() => parseTarget('ftp://x'));
  });
  test('rawOrigin does not drop default ports (WHATWG URL would)', () => {
    assert.equal(new URL('https://h:443/v2/').host, 'h');
    assert.deepEqual(rawOrigin('https://h:443/v2/'), { scheme: 'https', authority: 'h:443' });
    assert.equal(canonicalAuthority('h', 'https'), 'h:443');
    assert.equal(canonicalAuthority('h:8443', 'https'), 'h:8443');
  });
  test('a relative Location keeps the request authority', () => {
    assert.deepEqual(resolveReference('/v2/a/blobs/uploads/x?_state=1', 'https://h:443/v2/a/blobs/uploads/'), { url: 'https://h:443/v2/a/blobs/uploads/x?_state=1', absolute: false });
  });
});

describe('judgeNextUrl: which clients keep their credentials', () => {
  test('relative Location: fine for everyone', () => {
    const j = judgeNextUrl('/v2/team/app/blobs/uploads/abc', from, typed);
    assert.deepEqual(j.mechanisms, []);
    assert.deepEqual(familiesDroppingCredentials(j), []);
  });
  test('absolute Location on the same origin: fine', () => {
    const j = judgeNextUrl('https://hub.example.com/v2/team/app/blobs/uploads/abc', from, typed);
    assert.deepEqual(j.mechanisms, []);
  });
  test('explicit :443 (Host $host:$server_port): only containerd drops credentials', () => {
    const j = judgeNextUrl('https://hub.example.com:443/v2/team/app/blobs/uploads/abc', from, typed);
    assert.deepEqual(j.mechanisms, ['M2']);
    assert.equal(j.sameCanonical, true);
    assert.deepEqual(familiesDroppingCredentials(j), ['containerd']);
  });
  test('typed :443 and Location without it: containerd again', () => {
    const j = judgeNextUrl('https://hub.example.com/v2/x/blobs/uploads/1', 'https://hub.example.com:443/v2/x/blobs/uploads/', parseTarget('https://hub.example.com:443'));
    assert.deepEqual(familiesDroppingCredentials(j), ['containerd']);
  });
  test('port dropped ($host behind a non-default port): containerd and Docker', () => {
    const t = parseTarget('https://hub.example.com:8443');
    const j = judgeNextUrl('https://hub.example.com/v2/x/blobs/uploads/1', 'https://hub.example.com:8443/v2/x/blobs/uploads/', t);
    assert.deepEqual(j.mechanisms, ['M2']);
    assert.equal(j.sameHostname, true);
    assert.deepEqual(familiesDroppingCredentials(j), ['containerd', 'docker']);
  });
  test('upstream address ($proxy_host): containerd and Docker', () => {
    const j = judgeNextUrl('http://127.0.0.1:5000/v2/x/blobs/uploads/1', from, typed);
    assert.deepEqual(j.mechanisms, ['M1', 'M2']);
    assert.deepEqual(familiesDroppingCredentials(j), ['containerd', 'docker']);
  });
  test('scheme lost (X-Forwarded-Proto http): M1, containerd and Docker', () => {
    const j = judgeNextUrl('http://hub.example.com/v2/x/blobs/uploads/1', from, typed);
    assert.deepEqual(j.mechanisms, ['M1']);
    assert.deepEqual(familiesDroppingCredentials(j), ['containerd', 'docker']);
  });
  test('outside /v2/: M4, only classic Docker drops credentials', () => {
    const j = judgeNextUrl('/uploads/1', from, typed);
    assert.deepEqual(j.mechanisms, ['M4']);
    assert.deepEqual(familiesDroppingCredentials(j), ['docker']);
  });
  test('containers/image always attaches credentials', () => {
    const j = judgeNextUrl('https://elsewhere.example.net/up/1', from, typed);
    assert.equal(j.credentialsSentBy['containers-image'], true);
    assert.deepEqual(j.mechanisms, ['M2', 'M4']);
  });
});

describe('judgeRealm', () => {
  test('another public host is fine; http under https and internal addresses are not', () => {
    assert.deepEqual(judgeRealm('https://auth.example.com/token', typed).mechanisms, []);
    assert.deepEqual(judgeRealm('https://hub.example.com:443/service/token', typed).mechanisms, []);
    assert.deepEqual(judgeRealm('http://hub.example.com/service/token', typed).mechanisms, ['M1']);
    assert.deepEqual(judgeRealm('http://registry:5000/service/token', typed).mechanisms, ['M1', 'M2']);
    assert.deepEqual(judgeRealm('/service/token', typed).mechanisms, ['M11']);
    assert.deepEqual(judgeRealm('http://127.0.0.1:5000/token', parseTarget('http://127.0.0.1:5000')).mechanisms, []);
  });
});

describe('challenges and sizes', () => {
  test('parses Bearer and Basic challenges with quoted commas', () => {
    const [c] = parseChallenges('Bearer realm="https://h/service/token",service="h",scope="repository:a/b:pull,push",error="invalid_token"');
    assert.equal(c!.scheme, 'bearer');
    assert.equal(c!.params['scope'], 'repository:a/b:pull,push');
    assert.equal(c!.params['error'], 'invalid_token');
    assert.deepEqual(parseChallenges('Basic realm="x", Bearer realm="y"').map((x) => x.scheme), ['basic', 'bearer']);
    assert.deepEqual(parseChallenges(undefined), []);
  });
  test('sizes', () => {
    assert.equal(parseSize('4MiB'), 4 * 1024 ** 2);
    assert.equal(parseSize('110MB'), 110_000_000);
    assert.equal(parseSize('512k'), 512 * 1024);
    assert.throws(() => parseSize('lots'));
    assert.equal(formatSize(1024 ** 2 + 1), '1MiB+1');
    assert.deepEqual(probeSizes(4 * 1024 ** 2), [512 * 1024, 1024 ** 2 + 1, 2 * 1024 ** 2 + 1, 4 * 1024 ** 2]);
    assert.equal(probeSizes(110 * 1000 ** 2).at(-2), 100 * 1024 ** 2 + 1);
  });
});

describe('report hygiene', () => {
  test('tokens are redacted from recorded bodies', () => {
    const ex = { method: 'GET', url: 'https://h/service/token', auth: 'basic' as const, bodyBytes: 0, chunked: false, status: 200, headers: {}, durationMs: 1, body: '{"token":"abc.def","access_token":"abc.def","expires_in":300}' };
    const red = redactTokens(ex);
    assert.doesNotMatch(red.body!, /abc\.def/);
    assert.match(red.body!, /"expires_in":300/);
  });
});

describe('what a token grants (for "may not push")', () => {
  const jwt = (claims: object): string => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  test('reads the access claim without verifying; opaque tokens say nothing', () => {
    const access = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    assert.deepEqual(tokenAccess(jwt({ access })), access);
    assert.deepEqual(tokenAccess(jwt({ access: [] })), []);
    assert.equal(tokenAccess('opaque-token'), undefined);
    assert.equal(tokenAccess(jwt({ sub: 'x' })), undefined, 'no access claim');
  });
  test('names missing actions', () => {
    const pullOnly = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
    assert.equal(missingActions(pullOnly, 'repository:team/app:pull,push'), true);
    assert.equal(missingActions(pullOnly, 'repository:team/app:pull'), false);
    assert.equal(missingActions([{ type: 'repository', name: 'team/app', actions: ['*'] }], 'repository:team/app:pull,push'), false);
    assert.equal(missingActions([], 'repository:team/app:pull'), true);
    assert.equal(missingActions(undefined, 'repository:team/app:pull'), false, 'unknown is not missing');
    assert.equal(grantText([]), 'the token grants nothing');
    assert.equal(grantText(pullOnly), 'the token grants repository:team/app:pull');
  });
});

test('M9: a token that expires before a 10 GiB layer uploads at the measured speed, and only then', () => {
  const slow = tokenLifetimeFinding(10, 135.9e6, true);
  assert.equal(slow?.severity, 'warning');
  assert.equal(slow?.title, 'tokens live 10s; a 10GiB layer at the measured 135.9 MB/s takes 79s');
  assert.match(slow!.fix, /auth\.tokenTTL\` \(now 10s\)/);
  assert.match(tokenLifetimeFinding(10, 135.9e6, false)!.fix, /token_expiration/);
  assert.equal(tokenLifetimeFinding(1800, 135.9e6, true), undefined, '79 s fit in 30 minutes');
  assert.equal(tokenLifetimeFinding(10, 2e9, true), undefined, 'at 2 GB/s the layer takes 5 s');
});
