// `berth retention` against a real server, as a person runs it: a one-rule policy from flags, a
// policy file, show (table and JSON), a dry run and a real run waited for (each artifact kept or
// deleted with the rule that decided), the history, a run's items, clear — and the mistakes the
// flags refuse before anything is sent.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminBasic, api, expectStatus } from '../support/api.ts';
import { berthCli, tableRows, type Cli } from '../support/cli.ts';
import { pushImage } from '../support/oci.ts';
import { shortDigest } from '../../src/cli/format.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';

describe('berth retention', { timeout: 180_000 }, () => {
  let server: TestServer;
  let home: string;
  let cli: Cli;
  const admin = adminBasic();

  before(async () => {
    server = await startTestServer({ jobs: { pollInterval: '200ms' } });
    await expectStatus(await api(server.url, 'POST', '/projects', { auth: admin, body: { name: 'team' } }), 201);
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-retention-cli-'));
    cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'cli.json') }, cwd: home, secrets: () => [ADMIN_PASSWORD] });
    await cli(['login', server.url, '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
  });
  after(async () => {
    await server?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('set from flags, show, dry run, real run, history, items, clear', async () => {
    const old = await pushImage(server.url, 'team/app', 'v1');
    const newer = await pushImage(server.url, 'team/app', 'v2');
    const dev = await pushImage(server.url, 'team/app', 'dev');
    const set = await cli(['retention', 'set', 'team', '--keep-last', '1', '--tag', 'v*', '--cron', '0 3 * * *']);
    assert.match(set.stdout, /^set the retention policy of team \(1 rule\); try it with: berth retention run team --dry-run --wait$/m);
    const shown = tableRows((await cli(['retention', 'show', 'team'])).stdout);
    assert.deepEqual(shown[0], ['#', 'REPOSITORIES', 'TAGS', 'UNTAGGED', 'KEEP']);
    assert.deepEqual(shown[1], ['1', '**', 'v*', 'no', 'last 1 pushed']);
    assert.match((await cli(['retention', 'show', 'team'])).stdout, /^Schedule: +0 3 \* \* \* \(UTC\); next run \d{4}-\d\d-\d\d 03:00:00Z$/m);

    const dry = await cli(['retention', 'run', 'team', '--dry-run', '--wait']);
    const rows = tableRows(dry.stdout.split('\n\n')[0]!);
    assert.deepEqual(rows[0], ['OUTCOME', 'REPOSITORY', 'DIGEST', 'TAGS', 'DECIDED BY']);
    const byTag = new Map(rows.slice(1).map((r) => [r[3], r]));
    assert.deepEqual(byTag.get('v2'), ['kept', 'team/app', shortDigest(newer.digest), 'v2', 'rule 1: retain the 1 most recently pushed of repositories matching ** with tags matching v*']);
    assert.deepEqual(byTag.get('v1')?.slice(0, 1).concat(byTag.get('v1')!.slice(4)), ['would delete', 'no rule retains it']);
    assert.equal(byTag.get('dev')?.[0], 'would delete');
    assert.match(dry.stdout, /^dry run \d+ succeeded: 1 kept, 2 would be deleted$/m);

    const real = await cli.json<{ run: { id: number; dryRun: boolean; state: string }; items: { digest: string; outcome: string }[] }>(['retention', 'run', 'team', '--wait']);
    assert.equal(real.run.dryRun, false);
    assert.deepEqual(Object.fromEntries(real.items.map((i) => [i.digest, i.outcome])), { [old.digest]: 'deleted', [newer.digest]: 'retained', [dev.digest]: 'deleted' });

    const history = tableRows((await cli(['retention', 'history', 'team'])).stdout);
    assert.deepEqual(history[0], ['ID', 'CREATED', 'TRIGGER', 'MODE', 'STATE', 'RESULT']);
    assert.deepEqual([history[1]![0], history[1]![2], history[1]![3], history[1]![4], history[1]![5]], [String(real.run.id), 'manual', 'delete', 'succeeded', '1 kept, 2 deleted']);
    assert.deepEqual(history[2]!.slice(3), ['dry run', 'succeeded', '1 kept, 2 would be deleted']);
    const deleted = await cli.json<{ digest: string }[]>(['retention', 'items', 'team', String(real.run.id), '--outcome', 'deleted']);
    assert.deepEqual(deleted.map((i) => i.digest).sort(), [old.digest, dev.digest].sort());

    assert.equal((await cli(['retention', 'clear', 'team'])).stdout.trim(), 'removed the retention policy of team');
    const gone = await cli(['retention', 'show', 'team'], { fails: true });
    assert.match(gone.stderr, /^berth: 404 NOT_FOUND: project "team" has no retention policy$/m);
  });

  test('a policy file (also from show --json); flag mistakes are named before anything is sent', async () => {
    const file = path.join(home, 'policy.json');
    const policy = {
      rules: [
        { repositories: { pattern: '**' }, tags: { pattern: 'v*' }, retain: { kind: 'latestPushed', count: 10 } },
        { repositories: { pattern: 'ci/**' }, tags: { pattern: '**' }, untagged: true, retain: { kind: 'pushedWithinDays', days: 7 } },
      ],
      cron: '0 4 * * 0',
    };
    await writeFile(file, JSON.stringify(policy));
    await cli(['retention', 'set', 'team', '--file', file]);
    const shown = await cli.json<{ rules: unknown[]; cron: string; descriptions: string[] }>(['retention', 'show', 'team']);
    assert.equal(shown.rules.length, 2);
    assert.equal(shown.cron, '0 4 * * 0');
    assert.equal(shown.descriptions[1], 'retain those pushed within 7 days of repositories matching ci/** with tags matching ** (and untagged artifacts)');
    // What show --json printed is a valid policy file; --cron none drops the schedule.
    await writeFile(file, JSON.stringify(shown));
    const again = await cli.json<{ cron: string | null }>(['retention', 'set', 'team', '--file', file, '--cron', 'none']);
    assert.equal(again.cron, null);

    const refused = async (args: string[], message: RegExp) => assert.match((await cli(['retention', ...args], { fails: true })).stderr, message);
    await refused(['set', 'team'], /give --file policy\.json, or one rule with flags/);
    await refused(['set', 'team', '--keep-last', '3', '--keep-days', '4'], /give one of --keep-last, --keep-pulled/);
    await refused(['set', 'team', '--keep-last', '0'], /--keep-last: a whole number of at least 1, not "0"/);
    await refused(['set', 'team', '--tag', 'v*'], /say what the rule keeps/);
    await refused(['set', 'team', '--keep-all', '--tag', 'a', '--not-tag', 'b'], /give --tag or --not-tag, not both/);
    await refused(['set', 'team', '--keep-all', '--file', file], /give --file or the flags of one rule, not both/);
    await refused(['set', 'team', '--keep-all', '--cron', '* * * * *'], /400 INVALID: .*cron: fires more often than once an hour/);
    await refused(['items', 'team', '1', '--outcome', 'maybe'], /--outcome: one of retained, deleted, would-delete, failed, pending/);
  });
});
