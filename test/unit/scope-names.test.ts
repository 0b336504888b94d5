// Scope parsing validates resource names as /v2 does (plus the token spec's optional
// `hostname[:port]/` prefix): an entry naming something no /v2 request can name is dropped, so it
// is never granted and never echoed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isScopeResourceName, parseScopes } from '../../src/auth/scope.ts';
import { isRepositoryName } from '../../src/domain/names.ts';

const INVALID_NAMES = [
  '../x',
  '..',
  'team/../x',
  'A/B',
  'Team/app',
  'a//b',
  '/a',
  'a/',
  'a:b',
  'a:b/c:d',
  ':5000/x',
  'localhost:/x',
  'localhost:5000',
  'localhost:5000/',
  'localhost:5000/X',
  'a'.repeat(256),
  'a'.repeat(300),
  `localhost:5000/${'a'.repeat(250)}`,
  'team/a\u0000pp',
  'team/a\u0001pp',
  'team/app\u007f',
  'team/a\u202epp',
  'tëam/app',
  '-a',
  'a-',
  'a..b',
  'a b',
  '_a',
];

test('resource names in scopes: /v2 names, optionally after a hostname[:port]/ prefix, 255 characters at most', () => {
  for (const ok of ['a', 'team/app', 'a/b/c/d', 'a.b_c__d--e', 'x0/y-1', 'catalog', 'localhost:5000/x', 'localhost/team/app', 'registry.example.com:443/team/app', 'Registry.Example.com/x', 'a'.repeat(255)]) {
    assert.ok(isScopeResourceName(ok), ok);
  }
  for (const bad of INVALID_NAMES) assert.ok(!isScopeResourceName(bad), JSON.stringify(bad));
  assert.ok(isRepositoryName('team/app') && !isRepositoryName('localhost:5000/x') && !isRepositoryName('a'.repeat(256)));
});

test('parseScopes drops entries whose name or type is invalid, keeps the valid ones', () => {
  const valid = ['repository:team/app:pull,push', 'repository:localhost:5000/x:pull', 'registry:catalog:*', 'repository(plugin):team/plug:pull'];
  const invalid = [
    ...INVALID_NAMES.map((name) => `repository:${name}:pull`),
    'registry:../catalog:*',
    'registry:a:b:*',
    'Repository:team/app:pull',
    're\u0001po:team/app:pull',
    'repository(:team/app:pull',
  ];
  const parsed = parseScopes([...valid, ...invalid]);
  assert.deepEqual(parsed, [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'localhost:5000/x', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
    { type: 'repository(plugin)', name: 'team/plug', actions: ['pull'] },
  ]);
  // The same, several per value (OAuth2 form).
  assert.deepEqual(parseScopes([`repository:../x:pull repository:team/app:pull repository:A/B:push`]), [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
});
