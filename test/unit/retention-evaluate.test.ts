// Tag retention's evaluation (src/lifecycle/retention/evaluate.ts): every rule shape, Harbor's
// selection semantics (any tag, untagged, excludes, `**`, repositories no rule selects), ties,
// immutability, the policy schema's refusals, and the time for 100,000 artifacts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decisionText, evaluateRetention, type ImmutablePredicate, type RetentionCandidate, type RetentionDecision } from '../../src/lifecycle/retention/evaluate.ts';
import { policySchema, ruleSchema, ruleText, type RetentionRule } from '../../src/lifecycle/retention/rules.ts';
import { immutableBy, type ImmutabilityRule } from '../../src/lifecycle/immutability.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 5, 1);

let serial = 0;
/** An artifact pushed `age` days before NOW (pulled `pulled` days before, or never). */
function art(repository: string, tags: string[], age: number, pulled: number | null = null, digest?: string): RetentionCandidate {
  return { repository, digest: digest ?? `sha256:${(serial++).toString(16).padStart(64, '0')}`, tags, pushedAt: NOW - age * DAY, pulledAt: pulled === null ? null : NOW - pulled * DAY };
}

function rule(retain: RetentionRule['retain'], options: { repo?: string; repoExclude?: boolean; tag?: string; tagExclude?: boolean; untagged?: boolean } = {}): RetentionRule {
  return ruleSchema.parse({
    repositories: { pattern: options.repo ?? '**', exclude: options.repoExclude ?? false },
    tags: { pattern: options.tag ?? '**', exclude: options.tagExclude ?? false },
    untagged: options.untagged ?? false,
    retain,
  });
}

/** Which of `artifacts` are kept, by their first tag (or digest when untagged). */
function kept(artifacts: RetentionCandidate[], rules: RetentionRule[], immutable?: ImmutablePredicate): string[] {
  const decisions = evaluateRetention(artifacts, rules, { now: NOW, ...(immutable ? { immutable } : {}) });
  return artifacts.filter((_, i) => decisions[i]!.retained).map((a) => a.tags[0] ?? a.digest);
}

function decide(artifacts: RetentionCandidate[], rules: RetentionRule[], immutable?: ImmutablePredicate): RetentionDecision[] {
  return evaluateRetention(artifacts, rules, { now: NOW, ...(immutable ? { immutable } : {}) });
}

describe('retention evaluation', () => {
  test('latestPushed keeps the N most recently pushed per repository; the rest of a selected repository goes', () => {
    const artifacts = [art('p/a', ['a1'], 5), art('p/a', ['a2'], 4), art('p/a', ['a3'], 3), art('p/b', ['b1'], 9), art('p/b', ['b2'], 1)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'latestPushed', count: 2 })]), ['a2', 'a3', 'b1', 'b2']);
    const d = decide(artifacts, [rule({ kind: 'latestPushed', count: 1 })]);
    assert.deepEqual(d.map((x) => [x.retained, x.basis, x.rule]), [
      [false, 'unretained', null],
      [false, 'unretained', null],
      [true, 'rule', 1],
      [false, 'unretained', null],
      [true, 'rule', 1],
    ]);
  });

  test('latestPushed counts among the artifacts the tag selector selects; unselected tags in the repository are deleted', () => {
    const artifacts = [art('p/a', ['release-1'], 9), art('p/a', ['release-2'], 8), art('p/a', ['dev-1'], 1), art('p/a', ['release-3'], 7)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'latestPushed', count: 2 }, { tag: 'release-*' })]), ['release-2', 'release-3']);
  });

  test('latestPulled: most recent pulls first; never-pulled artifacts fill what is left of N, newest push first', () => {
    const artifacts = [art('p/a', ['x'], 9, 1), art('p/a', ['y'], 1, 5), art('p/a', ['z'], 2, null), art('p/a', ['w'], 3, null), art('p/a', ['v'], 8, 0)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'latestPulled', count: 2 })]), ['x', 'v']);
    assert.deepEqual(kept(artifacts, [rule({ kind: 'latestPulled', count: 4 })]), ['x', 'y', 'z', 'v']);
  });

  test('pushedWithinDays and pulledWithinDays: the boundary is included; never pulled is never within', () => {
    const artifacts = [art('p/a', ['old'], 8), art('p/a', ['edge'], 7, 7), art('p/a', ['new'], 1), art('p/a', ['pulled'], 30, 2)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'pushedWithinDays', days: 7 })]), ['edge', 'new']);
    assert.deepEqual(kept(artifacts, [rule({ kind: 'pulledWithinDays', days: 7 })]), ['edge', 'pulled']);
    const late = { ...artifacts[1]!, pushedAt: NOW - 7 * DAY - 1 };
    assert.deepEqual(kept([late], [rule({ kind: 'pushedWithinDays', days: 7 })]), []);
  });

  test('always keeps every artifact the rule selects', () => {
    const artifacts = [art('p/a', ['v1'], 900), art('p/a', ['latest'], 1), art('p/a', [], 2)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'always' }, { tag: 'v*' })]), ['v1']);
    assert.deepEqual(kept(artifacts, [rule({ kind: 'always' })]), ['v1', 'latest']);
  });

  test('rules are OR-combined; the first rule that retains an artifact is the one that decided', () => {
    const artifacts = [art('p/a', ['release-1'], 100), art('p/a', ['dev-9'], 1), art('p/a', ['dev-8'], 2), art('p/a', ['dev-7'], 3)];
    const rules = [rule({ kind: 'always' }, { tag: 'release-*' }), rule({ kind: 'latestPushed', count: 2 }), rule({ kind: 'pushedWithinDays', days: 2 })];
    const d = decide(artifacts, rules);
    assert.deepEqual(d.map((x) => x.rule), [1, 2, 2, null]);
    assert.equal(d[3]!.retained, false);
    const texts = rules.map(ruleText);
    assert.equal(decisionText(d[1]!, texts), 'rule 2: retain the 2 most recently pushed of repositories matching ** with tags matching **');
    assert.equal(decisionText(d[3]!, texts), 'no rule retains it');
  });

  test('rules act on artifacts: one selected tag keeps the artifact with all its tags', () => {
    const artifacts = [art('p/a', ['dev-1', 'release-1'], 50), art('p/a', ['dev-2'], 40)];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'always' }, { tag: 'release-*' })]), ['dev-1']);
  });

  test('a tag selector that excludes selects artifacts with any tag not matching (Harbor), so a shared tag does not protect', () => {
    const artifacts = [art('p/a', ['latest'], 10), art('p/a', ['latest', 'v2'], 9), art('p/a', ['v1'], 8)];
    // "tags not matching latest": the first artifact is not selected; the second has v2, which is.
    assert.deepEqual(kept(artifacts, [rule({ kind: 'always' }, { tag: 'latest', tagExclude: true })]), ['latest', 'v1']);
    assert.equal(kept(artifacts, [rule({ kind: 'always' }, { tag: 'latest', tagExclude: true })])[0], 'latest');
    const d = decide(artifacts, [rule({ kind: 'always' }, { tag: 'latest', tagExclude: true })]);
    assert.deepEqual(d.map((x) => x.retained), [false, true, true]);
  });

  test('untagged artifacts: selected only by rules that include them, whatever the tag pattern or its sense', () => {
    const artifacts = [art('p/a', [], 1), art('p/a', [], 2), art('p/a', [], 3), art('p/a', ['v1'], 4)];
    assert.deepEqual(decide(artifacts, [rule({ kind: 'always' })]).map((x) => x.retained), [false, false, false, true]);
    assert.deepEqual(decide(artifacts, [rule({ kind: 'always' }, { untagged: true })]).map((x) => x.retained), [true, true, true, true]);
    assert.deepEqual(decide(artifacts, [rule({ kind: 'always' }, { tag: 'nothing-matches', tagExclude: false, untagged: true })]).map((x) => x.retained), [true, true, true, false]);
    assert.deepEqual(decide(artifacts, [rule({ kind: 'always' }, { tag: '**', tagExclude: true, untagged: true })]).map((x) => x.retained), [true, true, true, false]);
    // Untagged ones compete for the N slots like the others.
    assert.deepEqual(decide(artifacts, [rule({ kind: 'latestPushed', count: 2 }, { untagged: true })]).map((x) => x.retained), [true, true, false, false]);
  });

  test('repository selectors match the path within the project: *, **, {a,b}, ?, and excludes', () => {
    const artifacts = [art('team/web', ['w'], 1), art('team/app/api', ['a'], 1), art('team/app/db/x', ['d'], 1), art('team/tools', ['t'], 1)];
    const deleteAllOf = (repo: string, repoExclude = false) =>
      decide(artifacts, [rule({ kind: 'always' }, { repo, repoExclude, tag: 'nothing' })]).map((x) => (x.retained ? x.basis : 'deleted'));
    assert.deepEqual(deleteAllOf('*'), ['deleted', 'unselected', 'unselected', 'deleted']);
    assert.deepEqual(deleteAllOf('**'), ['deleted', 'deleted', 'deleted', 'deleted']);
    assert.deepEqual(deleteAllOf('app/**'), ['unselected', 'deleted', 'deleted', 'unselected']);
    assert.deepEqual(deleteAllOf('app/*'), ['unselected', 'deleted', 'unselected', 'unselected']);
    assert.deepEqual(deleteAllOf('{web,tools}'), ['deleted', 'unselected', 'unselected', 'deleted']);
    assert.deepEqual(deleteAllOf('t??ls'), ['unselected', 'unselected', 'unselected', 'deleted']);
    assert.deepEqual(deleteAllOf('app/**', true), ['deleted', 'unselected', 'unselected', 'deleted']);
    // A repository of the `library` project has one segment: its path is itself.
    assert.deepEqual(decide([art('nginx', ['1'], 1)], [rule({ kind: 'always' }, { repo: 'nginx', tag: 'x' })]).map((x) => x.basis), ['unretained']);
  });

  test('a repository no rule selects is left alone, untagged artifacts included', () => {
    const artifacts = [art('p/kept', [], 500), art('p/kept', ['old'], 900), art('p/cleaned', [], 500)];
    const d = decide(artifacts, [rule({ kind: 'latestPushed', count: 5 }, { repo: 'cleaned' })]);
    assert.deepEqual(d.map((x) => [x.retained, x.basis]), [
      [true, 'unselected'],
      [true, 'unselected'],
      [false, 'unretained'],
    ]);
    assert.equal(decisionText(d[0]!, []), 'no rule selects its repository');
  });

  test('a rule applies only in the repositories it selects, even beside rules that select others', () => {
    const artifacts = [art('p/a', ['1'], 3), art('p/a', ['2'], 2), art('p/b', ['1'], 3), art('p/b', ['2'], 2)];
    const rules = [rule({ kind: 'latestPushed', count: 1 }, { repo: 'a' }), rule({ kind: 'always' }, { repo: 'b' })];
    assert.deepEqual(decide(artifacts, rules).map((x) => x.rule), [null, 1, 2, 2]);
  });

  test('ties in push time are broken by digest, whatever the input order', () => {
    const same = (digest: string, tag: string) => art('p/a', [tag], 1, null, digest);
    const artifacts = [same('sha256:c', 'c'), same('sha256:a', 'a'), same('sha256:b', 'b')];
    assert.deepEqual(kept(artifacts, [rule({ kind: 'latestPushed', count: 2 })]), ['a', 'b']);
    assert.deepEqual(kept([...artifacts].reverse(), [rule({ kind: 'latestPushed', count: 2 })]), ['b', 'a']);
    const pulledTie = [{ ...same('sha256:f', 'f'), pulledAt: NOW }, { ...same('sha256:e', 'e'), pulledAt: NOW }, same('sha256:d', 'd')];
    assert.deepEqual(kept(pulledTie, [rule({ kind: 'latestPulled', count: 1 })]), ['e']);
  });

  test('immutable artifacts are always kept, decided by the immutability rule, and still rank', () => {
    const rules: ImmutabilityRule[] = [{ id: 7, repositories: { pattern: '**', exclude: false }, tags: { pattern: 'v*', exclude: false }, disabled: false }];
    const immutable: ImmutablePredicate = (repository, tag) => immutableBy(rules, repository, tag);
    const artifacts = [art('p/a', ['v1'], 9), art('p/a', ['dev'], 8), art('p/a', ['dev2'], 1), art('p/a', ['v2'], 0)];
    const d = decide(artifacts, [rule({ kind: 'latestPushed', count: 2 })], immutable);
    assert.deepEqual(d.map((x) => [x.retained, x.basis, x.rule]), [
      [true, 'immutable', 7],
      [false, 'unretained', null],
      [true, 'rule', 1],
      [true, 'immutable', 7],
    ]);
    assert.equal(decisionText(d[0]!, []), 'immutable (rule 7)');
  });

  test('an empty policy and an empty project decide nothing away', () => {
    assert.deepEqual(decide([art('p/a', ['x'], 1)], []).map((x) => x.basis), ['unselected']);
    assert.deepEqual(decide([], [rule({ kind: 'always' })]), []);
  });

  test('100,000 artifacts in 100 repositories under 15 rules: well under a second', () => {
    const artifacts: RetentionCandidate[] = [];
    for (let i = 0; i < 100_000; i++) {
      const tags = i % 5 === 0 ? [] : [`${i % 3 === 0 ? 'release' : 'dev'}-${i}`, ...(i % 7 === 0 ? ['latest'] : [])];
      artifacts.push({ repository: `team/app-${i % 100}`, digest: `sha256:${i.toString(16).padStart(64, '0')}`, tags, pushedAt: NOW - (i % 997) * 3_600_000, pulledAt: i % 4 === 0 ? null : NOW - (i % 89) * 3_600_000 });
    }
    const shapes: RetentionRule['retain'][] = [{ kind: 'latestPushed', count: 10 }, { kind: 'latestPulled', count: 5 }, { kind: 'pushedWithinDays', days: 7 }, { kind: 'pulledWithinDays', days: 1 }, { kind: 'always' }];
    const rules = Array.from({ length: 15 }, (_, i) => rule(shapes[i % 5]!, { repo: i % 2 === 0 ? 'app-*' : '**', tag: i % 3 === 0 ? 'release-*' : i % 3 === 1 ? 'dev-{1,2,3}*' : 'latest', untagged: i === 4 }));
    const started = performance.now();
    const decisions = evaluateRetention(artifacts, rules, { now: NOW });
    const ms = performance.now() - started;
    assert.equal(decisions.length, 100_000);
    assert.ok(decisions.some((d) => d.retained) && decisions.some((d) => !d.retained));
    // The issue's budget is 10 s for the whole run; the evaluation itself must be a small part of it.
    assert.ok(ms < 3_000, `evaluation took ${Math.round(ms)} ms`);
    process.stdout.write(`# evaluated 100,000 artifacts under 15 rules in ${Math.round(ms)} ms\n`);
  });
});

describe('retention policy schema', () => {
  const one = { repositories: { pattern: '**' }, tags: { pattern: '**' }, retain: { kind: 'latestPushed', count: 3 } };
  const problems = (input: unknown) => {
    const result = policySchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  test('defaults: exclude false, untagged false, no cron', () => {
    const parsed = policySchema.parse({ rules: [one] });
    assert.deepEqual(parsed.rules[0], { repositories: { pattern: '**', exclude: false }, tags: { pattern: '**', exclude: false }, untagged: false, retain: { kind: 'latestPushed', count: 3 } });
    assert.equal(parsed.cron, undefined);
  });

  test('refusals name the field', () => {
    assert.deepEqual(problems({ rules: Array.from({ length: 16 }, () => one) }), ['rules: at most 15 rules']);
    assert.deepEqual(problems({ rules: [{ ...one, retain: { kind: 'latestPushed', count: 0 } }] }), ['rules.0.retain.count: must be at least 1']);
    assert.deepEqual(problems({ rules: [{ ...one, retain: { kind: 'pulledWithinDays', days: 36_501 } }] }), ['rules.0.retain.days: must be at most 36500']);
    assert.deepEqual(problems({ rules: [{ ...one, retain: { kind: 'pushedWithinDays', days: 1.5 } }] }), ['rules.0.retain.days: must be a whole number']);
    assert.match(problems({ rules: [{ ...one, retain: { kind: 'keepSome' } }] })[0]!, /^rules\.0\.retain\.kind: kind must be one of latestPushed/);
    assert.deepEqual(problems({ rules: [{ ...one, tags: { pattern: '' } }] }), ['rules.0.tags.pattern: must not be empty']);
    assert.deepEqual(problems({ rules: [{ ...one, repositories: { pattern: 'a/{b' } }] }), ['rules.0.repositories.pattern: has a { without its }']);
    assert.deepEqual(problems({ rules: [{ ...one, extra: 1 }] }).length, 1);
    assert.deepEqual(problems({ rules: [], cron: 'not a cron' }), ['cron: is not a cron expression (5 or 6 space-separated fields, e.g. "0 3 * * *")']);
    assert.deepEqual(problems({ rules: [], cron: '*/5 * * * *' }), ['cron: fires more often than once an hour']);
    assert.deepEqual(problems({ rules: [], cron: '0 0 30 2 *' }), ['cron: never fires']);
    assert.deepEqual(problems({ rules: [], cron: '0 3 * * *' }), []);
    assert.deepEqual(problems({ rules: [], cron: null }), []);
  });
});
