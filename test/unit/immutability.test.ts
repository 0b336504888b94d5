// Tag immutability, the parts without a server: the glob matcher (against an independent oracle, and
// in linear time on the patterns that make a backtracking matcher hang), rule selection, the refusal
// that names the rule, and the CLI's flag handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { matchesPattern, patternProblem } from '../../src/domain/patterns.ts';
import { immutableBy, type ImmutabilityRule } from '../../src/lifecycle/immutability.ts';
import { describeRule, firstImmutable, ImmutableTagError } from '../../src/metadata/immutability.ts';
import { formatSelector, selectorsOf } from '../../src/cli/immutability.ts';
import { CliError } from '../../src/cli/output.ts';

/**
 * The module comment's semantics, written independently: memoised recursion over (pattern, text)
 * positions. `{…}` is expanded into each alternative first (patterns do not nest them), between two
 * marks that match nothing: a wildcard never joins one across the braces (`*{*,a}` is two `*`).
 */
function oracle(pattern: string, text: string): boolean {
  const open = pattern.indexOf('{');
  if (open >= 0) {
    const close = pattern.indexOf('}', open);
    return pattern
      .slice(open + 1, close)
      .split(',')
      .some((alt) => oracle(`${pattern.slice(0, open)}\u0001${alt}\u0001${pattern.slice(close + 1)}`, text));
  }
  const p = [...pattern];
  const t = [...text];
  const memo = new Map<string, boolean>();
  const at = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let result: boolean;
    if (i === p.length) result = j === t.length;
    else if (p[i] === '\u0001') result = at(i + 1, j);
    else if (p[i] === '*' && p[i + 1] === '*' && p[i + 2] === '/') {
      // Nothing, or any run ending in `/`.
      result = at(i + 3, j);
      for (let k = j; !result && k < t.length; k++) if (t[k] === '/') result = at(i + 3, k + 1);
    } else if (p[i] === '*' && p[i + 1] === '*') {
      result = false;
      for (let k = j; !result && k <= t.length; k++) result = at(i + 2, k);
    } else if (p[i] === '*') {
      result = false;
      for (let k = j; !result && k <= t.length; k++) {
        result = at(i + 1, k);
        if (t[k] === '/') break;
      }
    } else if (p[i] === '?') result = j < t.length && t[j] !== '/' && at(i + 1, j + 1);
    else result = j < t.length && t[j] === p[i] && at(i + 1, j + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}

const alphabet = ['a', 'b', '/', '.', '-'];
const patternPiece = fc.constantFrom('a', 'b', '/', '.', '*', '**', '**/', '?', '{a,b*}', '{*/,}', '{,**}');
const patternArb = fc.array(patternPiece, { maxLength: 8 }).map((parts) => parts.join('')).filter((p) => p.length > 0 && patternProblem(p) === undefined);
const textArb = fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }).map((cs) => cs.join(''));

test('globs: matching agrees with an independent oracle on random patterns (both matchers: ≤1 wildcard and more)', () => {
  fc.assert(
    fc.property(patternArb, textArb, (pattern, text) => {
      assert.equal(matchesPattern(pattern, text), oracle(pattern, text), `${JSON.stringify(pattern)} on ${JSON.stringify(text)}`);
    }),
    { numRuns: 5000 },
  );
});

test('globs: the documented examples', () => {
  const cases: [string, string, boolean][] = [
    ['**', 'app/web', true],
    ['*', 'app/web', false],
    ['*', 'app', true],
    ['app/**', 'app/web/x', true],
    ['app/**', 'app', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['v*', 'v1.2.3', true],
    ['v?', 'v10', false],
    ['{v,release-}*', 'release-2', true],
    ['{v,release-}*', 'x1', false],
    ['1.*.*', '1.2.3', true],
    ['1.*.*', '1.2', false],
  ];
  for (const [pattern, text, expected] of cases) assert.equal(matchesPattern(pattern, text), expected, `${pattern} on ${text}`);
  // Invalid patterns match nothing.
  assert.equal(matchesPattern('{a', 'a'), false);
  assert.equal(matchesPattern('', ''), false);
});

test('globs: hostile patterns run in linear time (a backtracking regular expression takes minutes on these)', () => {
  const tag = 'a'.repeat(128);
  const hostile = [
    `${'*a'.repeat(60)}*b`,
    `${'**a'.repeat(40)}**b`,
    `{${'*a'.repeat(50)}*b,x}`,
    `${'*'.repeat(200)}b`,
    `${'{*,**}'.repeat(30)}b`,
  ];
  for (const pattern of hostile) {
    assert.equal(patternProblem(pattern), undefined, `${pattern.slice(0, 20)}… is a valid pattern`);
    const started = performance.now();
    for (let i = 0; i < 20; i++) assert.equal(matchesPattern(pattern, tag), false);
    const ms = performance.now() - started;
    // 20 runs over 128 characters: milliseconds. A generous bound, so a slow machine never fails it,
    // but far below what exponential backtracking takes (it does not finish in minutes).
    assert.ok(ms < 5_000, `${pattern.slice(0, 20)}…: ${ms.toFixed(0)} ms for 20 matches`);
  }
  assert.equal(matchesPattern(`${'*a'.repeat(60)}*`, 'a'.repeat(128)), true);
});

const rule = (id: number, repositories: string, tags: string, extra: Partial<ImmutabilityRule> = {}): ImmutabilityRule => ({
  id,
  repositories: { pattern: repositories, exclude: false },
  tags: { pattern: tags, exclude: false },
  disabled: false,
  ...extra,
});

test('rules: repository selectors see the path within the project; exclusions; disabled rules never apply; the first enabled match is named', () => {
  const rules = [
    rule(1, 'app/**', 'v*', { disabled: true }),
    rule(2, 'app/**', 'v*'),
    rule(3, '**', 'release-*', { repositories: { pattern: 'scratch', exclude: true } }),
    rule(4, 'tools', 'dev-*', { tags: { pattern: 'dev-*', exclude: true } }),
  ];
  assert.equal(immutableBy(rules, 'team/app/web', 'v1')?.id, 2);
  assert.equal(immutableBy(rules, 'team/app', 'v1'), undefined, 'app/** needs a path below app/');
  assert.equal(immutableBy(rules, 'team/web', 'v1'), undefined);
  assert.equal(immutableBy(rules, 'team/web', 'release-1')?.id, 3);
  assert.equal(immutableBy(rules, 'team/scratch', 'release-1'), undefined, 'excluded repository');
  assert.equal(immutableBy(rules, 'team/tools', 'stable')?.id, 4, 'every tag but dev-*');
  assert.equal(immutableBy(rules, 'team/tools', 'dev-3'), undefined);
  assert.equal(immutableBy([rule(5, 'app', 'v1')], 'app', 'v1')?.id, 5, 'a one-component name (library) is its own path');
  const check = (tag: string) => immutableBy(rules, 'team/app/web', tag);
  assert.deepEqual(firstImmutable(check, ['latest', 'v2', 'v3']), { tag: 'v2', rule: rules[1] });
  assert.equal(firstImmutable(check, ['latest']), undefined);
  assert.equal(firstImmutable(undefined, ['v2']), undefined);
});

test('the refusal is DENIED naming the rule (id and patterns, quoted), the repository and the tag', () => {
  const r = rule(7, '**', 'v"*', { tags: { pattern: 'v"*', exclude: true } });
  assert.equal(describeRule(r), 'rule 7 (repositories matching "**", tags not matching "v\\"*")');
  for (const action of ['move', 'delete-tag', 'delete-artifact', 'delete-repository'] as const) {
    const err = new ImmutableTagError(r, 'team/app', 'v1', action);
    assert.equal(err.code, 'DENIED');
    assert.equal(err.status, 403);
    assert.ok(err.message.includes('rule 7') && err.message.includes('"team/app"') && err.message.includes('"v1"'), err.message);
    assert.deepEqual(err.detail, { reason: 'immutable-tag', repository: 'team/app', tag: 'v1', rule: { id: 7, repositories: { pattern: '**', exclude: false }, tags: { pattern: 'v"*', exclude: true } } });
  }
  assert.match(new ImmutableTagError(r, 'team/app', 'v1', 'move').message, /cannot be moved to another digest/);
});

test('CLI: --repo/--tag with their exclusions; an exclusion without its pattern is refused', () => {
  assert.deepEqual(selectorsOf({ tag: 'v*' }), { tags: { pattern: 'v*', exclude: false } });
  assert.deepEqual(selectorsOf({ repo: 'app/**', repoExclude: true, tag: 'dev-*', tagExclude: true }), {
    repositories: { pattern: 'app/**', exclude: true },
    tags: { pattern: 'dev-*', exclude: true },
  });
  assert.throws(() => selectorsOf({ tagExclude: true }), CliError);
  assert.throws(() => selectorsOf({ repoExclude: true, tag: 'x' }), CliError);
  assert.equal(formatSelector({ pattern: 'v*', exclude: false }), 'v*');
  assert.equal(formatSelector({ pattern: 'dev-*', exclude: true }), 'except dev-*');
});
