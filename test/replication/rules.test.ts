// Replication rules without I/O: the schema's refusals, repository and tag selection, artifact
// types, destination names (keep, replace, flatten), the marks events make, and rules in words.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OutboxEvent } from '../../src/metadata/events.ts';
import { marksFor } from '../../src/replication/events.ts';
import { isTransient } from '../../src/replication/execution.ts';
import {
  artifactKindOf,
  bytesText,
  destinationName,
  destinationSchema,
  filtersSchema,
  literalRepositories,
  ruleText,
  scheduleProblem,
  selectsArtifact,
  selectsRepository,
  selectsTag,
  settingProblems,
  type RuleSettings,
} from '../../src/replication/rules.ts';
import { RemoteError } from '../../src/remote/types.ts';

const filters = (value: unknown) => filtersSchema.parse(value);
const destination = (value: unknown) => destinationSchema.parse(value);

describe('replication rules', () => {
  test('filters: every pattern of a list must agree; exclude inverts; empty selects all', () => {
    const f = filters({ repositories: [{ pattern: 'team/**' }, { pattern: 'team/tmp-*', exclude: true }], tags: [{ pattern: 'v{1,2}.*' }] });
    assert.equal(selectsRepository(f, 'team/app'), true);
    assert.equal(selectsRepository(f, 'team/a/b'), true);
    assert.equal(selectsRepository(f, 'team/tmp-1'), false);
    assert.equal(selectsRepository(f, 'other/app'), false);
    assert.equal(selectsTag(f, 'v1.0'), true);
    assert.equal(selectsTag(f, 'v3.0'), false);
    assert.equal(selectsTag(f, 'latest'), false);
    const all = filters({});
    assert.equal(selectsRepository(all, 'x/y'), true);
    assert.equal(selectsTag(all, 'anything'), true);
  });

  test('hostile patterns are refused without echo, and matching stays linear', () => {
    const bad = filtersSchema.safeParse({ repositories: [{ pattern: 'a{b{c}}' }], tags: [{ pattern: '\u0000' }] });
    assert.equal(bad.success, false);
    const text = JSON.stringify(bad.error!.issues);
    assert.ok(!text.includes('a{b{c}}'), 'the pattern is not echoed');
    assert.equal(filtersSchema.safeParse({ repositories: [{ pattern: 'x'.repeat(300) }] }).success, false);
    assert.equal(filtersSchema.safeParse({ repositories: Array.from({ length: 11 }, () => ({ pattern: '*' })) }).success, false);
    assert.equal(filtersSchema.safeParse({ repositories: [{ pattern: '*', extra: 1 }] }).success, false);
    const evil = filters({ tags: [{ pattern: '*a*a*a*a*a*a*a*a*a*a*a*b' }] });
    const started = performance.now();
    assert.equal(selectsTag(evil, 'a'.repeat(120)), false);
    assert.ok(performance.now() - started < 500, 'no catastrophic backtracking');
  });

  test('literal repository names need no catalog', () => {
    assert.deepEqual(literalRepositories(filters({ repositories: [{ pattern: 'library/alpine' }] })), ['library/alpine']);
    assert.deepEqual(literalRepositories(filters({ repositories: [{ pattern: 'library/alpine' }, { pattern: 'library/*', exclude: true }] })), []);
    assert.equal(literalRepositories(filters({ repositories: [{ pattern: 'library/*' }] })), undefined);
    assert.equal(literalRepositories(filters({})), undefined);
  });

  test('destination names: keep, replace the first segment, flatten N (never the last)', () => {
    assert.equal(destinationName(destination({}), 'team/app'), 'team/app');
    assert.equal(destinationName(destination({ mode: 'replace', namespace: 'mirror' }), 'team/app/web'), 'mirror/app/web');
    assert.equal(destinationName(destination({ mode: 'replace', namespace: 'mirror' }), 'app'), 'mirror/app');
    assert.equal(destinationName(destination({ mode: 'flatten', levels: 1 }), 'a/b/c'), 'b/c');
    assert.equal(destinationName(destination({ mode: 'flatten', levels: 5 }), 'a/b/c'), 'c');
    assert.equal(destinationName(destination({ mode: 'flatten', levels: 2, namespace: 'site/b' }), 'a/b/c'), 'site/b/c');
    assert.equal(destinationName(destination({ mode: 'replace', namespace: 'x' }), 'team/' + 'y'.repeat(260)), undefined, 'a name too long maps to nothing');
    assert.equal(destinationSchema.safeParse({ mode: 'replace' }).success, false, 'replace needs a namespace');
    assert.equal(destinationSchema.safeParse({ mode: 'flatten' }).success, false, 'flatten needs levels');
    assert.equal(destinationSchema.safeParse({ mode: 'keep', namespace: 'x' }).success, false);
    assert.equal(destinationSchema.safeParse({ mode: 'replace', namespace: '../etc' }).success, false);
    assert.equal(destinationSchema.safeParse({ mode: 'replace', namespace: 'UPPER' }).success, false);
  });

  test('artifact types: image, index, or a config media type / artifactType', () => {
    const image = artifactKindOf(Buffer.from(JSON.stringify({ config: { mediaType: 'application/vnd.oci.image.config.v1+json' } })), 'application/vnd.oci.image.manifest.v1+json');
    const sbom = artifactKindOf(Buffer.from(JSON.stringify({ artifactType: 'application/spdx+json', config: { mediaType: 'application/vnd.oci.empty.v1+json' } })), 'application/vnd.oci.image.manifest.v1+json');
    const index = { mediaType: 'application/vnd.oci.image.index.v1+json' };
    assert.equal(selectsArtifact(undefined, sbom), true);
    assert.equal(selectsArtifact(['image'], image), true);
    assert.equal(selectsArtifact(['image'], sbom), false);
    assert.equal(selectsArtifact(['index'], index), true);
    assert.equal(selectsArtifact(['index'], image), false);
    assert.equal(selectsArtifact(['application/spdx+json'], sbom), true);
    assert.equal(artifactKindOf(Buffer.from('not json'), 'x/y').mediaType, 'x/y');
  });

  test('combinations, schedules and the rule in words', () => {
    const base: RuleSettings = {
      name: 'r',
      description: null,
      registry: 'mirror',
      direction: 'push',
      filters: filters({ repositories: [{ pattern: 'team/**' }] }),
      destination: destination({ mode: 'replace', namespace: 'copy' }),
      trigger: 'event',
      cron: null,
      replicateDeletes: true,
      override: false,
      bandwidth: 10 * 1024 * 1024,
      concurrency: 4,
      enabled: true,
    };
    assert.deepEqual(settingProblems(base), []);
    assert.deepEqual(settingProblems({ ...base, direction: 'pull' }).map((p) => p.path), ['trigger']);
    assert.deepEqual(settingProblems({ ...base, trigger: 'schedule' }).map((p) => p.path), ['cron', 'replicateDeletes']);
    assert.deepEqual(settingProblems({ ...base, trigger: 'manual', replicateDeletes: false, cron: '0 * * * *' }).map((p) => p.path), ['cron']);
    assert.equal(scheduleProblem('*/10 * * * *'), undefined);
    assert.match(scheduleProblem('* * * * *')!, /more often than every 5 minutes/);
    assert.match(scheduleProblem('not a cron')!, /not a cron expression/);
    assert.equal(
      ruleText(base),
      'push to mirror: repositories team/**, every tag → first segment replaced by copy; on each push and deletion; leaves differing tags alone, 4 at once, at most 10 MiB/s',
    );
    assert.equal(bytesText(12.3 * 1024 * 1024), '12.3 MiB');
    assert.equal(bytesText(512), '512 B');
  });

  test('events become marks only for what the rule selects', () => {
    const rule = { id: 7, name: 'r', filters: filters({ repositories: [{ pattern: 'team/**' }], tags: [{ pattern: 'v*' }] }), replicateDeletes: false, createdAt: 1000 };
    const event = (over: Partial<OutboxEvent>): OutboxEvent => ({ id: 1, time: 2000, type: 'artifact.pushed', repository: 'team/app', project: 'team', digest: 'sha256:' + 'a'.repeat(64), tag: 'v1', actor: 'admin', detail: null, ...over });
    assert.deepEqual(marksFor(rule, event({})), [{ ruleId: 7, repository: 'team/app', eventId: 1, tag: 'v1', digest: 'sha256:' + 'a'.repeat(64), action: 'sync' }]);
    assert.deepEqual(marksFor(rule, event({ tag: 'latest' })), []);
    assert.deepEqual(marksFor(rule, event({ repository: 'other/app' })), []);
    assert.deepEqual(marksFor(rule, event({ time: 500 })), [], 'events from before the rule existed');
    assert.deepEqual(marksFor(rule, event({ tag: null })), [], 'an index child comes with its index');
    assert.equal(marksFor(rule, event({ tag: null, detail: { subject: 'sha256:' + 'b'.repeat(64) } }))[0]?.action, 'sync', 'a referrer on its own');
    assert.deepEqual(marksFor(rule, event({ type: 'tag.deleted' })), [], 'deletions only with replicateDeletes');
    const deleting = { ...rule, replicateDeletes: true };
    assert.deepEqual(marksFor(deleting, event({ type: 'artifact.deleted', tag: null, detail: { tags: ['v1', 'latest'] } })).map((m) => [m.tag, m.action]), [['v1', 'delete']]);
    assert.deepEqual(marksFor(deleting, event({ type: 'tag.deleted' })).map((m) => m.action), ['delete']);
  });

  test('transient failures are retried, others not', () => {
    assert.equal(isTransient(new RemoteError('status', 'x', 503)), true);
    assert.equal(isTransient(new RemoteError('status', 'x', 429)), true);
    assert.equal(isTransient(new RemoteError('timeout', 'x')), true);
    assert.equal(isTransient(new RemoteError('status', 'x', 401)), false);
    assert.equal(isTransient(new RemoteError('protocol', 'x')), false);
    assert.equal(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), true);
    assert.equal(isTransient(new Error('other')), false);
  });
});
