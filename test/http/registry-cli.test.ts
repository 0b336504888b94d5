// `berth registry` and `berth project create --proxy-cache` against a real server and a real
// upstream (CNCF Distribution with htpasswd), as an administrator runs them: add with a connection
// test, list, show, test, update (a wrong password is tested and not saved), a proxy-cache project
// shown by project show/list, the refusal to delete an endpoint in use — and the password in no
// output, whichever way it was given.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { berthCli, tableRows, type Cli } from '../support/cli.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { startReferenceRegistry, type ReferenceRegistry } from '../support/reference-registry.ts';
import type { RunResult } from '../support/run.ts';
import { rememberSecret } from '../support/secrets.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { freePort } from '../support/system.ts';

const UPSTREAM_PASSWORD = `cli-upstream-${randomBytes(9).toString('base64url')}`;
const WRONG_PASSWORD = `cli-wrong-${randomBytes(9).toString('base64url')}`;
rememberSecret(UPSTREAM_PASSWORD, 'puller');
rememberSecret(WRONG_PASSWORD, 'puller');

describe('berth registry', { timeout: 180_000 }, () => {
  let server: TestServer;
  let upstream: ReferenceRegistry;
  let home: string;
  let cli: Cli;
  const processes = new ProcessRegistry();
  const outputs: RunResult[] = [];

  /** Runs `berth …`, keeping the output to check for the passwords at the end. */
  async function berth(args: string[], options: { input?: string; fails?: boolean } = {}): Promise<RunResult> {
    const result = await cli(args, options);
    outputs.push(result);
    return result;
  }

  before(async () => {
    server = await startTestServer();
    upstream = await startReferenceRegistry({ port: await freePort(), username: 'puller', password: UPSTREAM_PASSWORD, registry: processes });
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-registry-cli-'));
    cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'cli.json') }, cwd: home, secrets: () => [ADMIN_PASSWORD, UPSTREAM_PASSWORD, WRONG_PASSWORD] });
    await cli(['login', server.url, '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
  });
  after(async () => {
    await processes.stopAll();
    await server?.close();
    for (const d of [home, upstream?.dir]) if (d) await rm(d, { recursive: true, force: true });
    for (const r of outputs) {
      for (const secret of [UPSTREAM_PASSWORD, WRONG_PASSWORD]) assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `no output holds a password: ${r.commandLine}`);
    }
  });

  test('add with --test, list, show, test; a wrong password is tested and not saved; a proxy-cache project; delete refused while in use', async () => {
    const added = await berth(['registry', 'add', 'up', '--type', 'distribution', '--url', upstream.url, '--username', 'puller', '--password-stdin', '--description', 'the reference', '--test'], {
      input: `${UPSTREAM_PASSWORD}\n`,
    });
    assert.match(added.stdout, /^tested: ok: basic auth, authenticated, \d+ ms$/m);
    assert.match(added.stdout, new RegExp(`^added registry endpoint "up" \\(distribution, ${upstream.url}, puller \\(password saved\\)\\)$`, 'm'));

    const notSaved = await berth(['registry', 'add', 'bad', '--type', 'distribution', '--url', upstream.url, '--username', 'puller', '--password-stdin', '--test'], {
      input: `${WRONG_PASSWORD}\n`,
      fails: true,
    });
    assert.match(notSaved.stderr, /^berth: not saved: the connection test failed: credentials refused\b/m);
    // A password given on the command line works too, with a warning.
    const visible = await berth(['registry', 'add', 'quay-mirror', '--type', 'quay', '--username', 'robot', '--password', UPSTREAM_PASSWORD]);
    assert.match(visible.stderr, /--password is visible to other users/);

    const listed = tableRows((await berth(['registry', 'list'])).stdout);
    assert.deepEqual(listed[0], ['NAME', 'TYPE', 'URL', 'CREDENTIALS', 'TLS', 'DESCRIPTION']);
    assert.deepEqual(listed.slice(1).map((r) => r.slice(0, 5)), [
      ['quay-mirror', 'quay', 'https://quay.io', 'robot (password saved)', 'verified'],
      ['up', 'distribution', upstream.url, 'puller (password saved)', 'plain http'],
    ]);
    const shown = (await berth(['registry', 'show', 'up'])).stdout;
    assert.match(shown, /^Credentials: +puller \(password saved\)$/m);
    assert.match(shown, /^Used by: +-$/m);
    const json = await cli.json<Record<string, unknown>>(['registry', 'show', 'up']);
    assert.equal(json.hasCredential, true);
    assert.equal(json.password, undefined);

    assert.match((await berth(['registry', 'test', 'up'])).stdout, /^ok: basic auth, authenticated, \d+ ms$/m);
    const wrong = await berth(['registry', 'update', 'up', '--password-stdin', '--test'], { input: `${WRONG_PASSWORD}\n`, fails: true });
    assert.match(wrong.stderr, /^berth: not saved: the connection test failed: credentials refused\b/m);
    assert.match((await berth(['registry', 'test', 'up'])).stdout, /^ok: /m, 'the saved password is unchanged');
    assert.match((await berth(['registry', 'update', 'up', '--description', 'still the reference'])).stdout, /^updated registry endpoint "up"/m);
    assert.match((await berth(['registry', 'update', 'quay-mirror', '--no-credentials'])).stdout, /quay-mirror" \(quay, https:\/\/quay\.io, anonymous\)$/m);

    const created = await berth(['project', 'create', 'hub', '--proxy-cache', 'up', '--freshness', '10m']);
    assert.match(created.stdout, /^it is a proxy cache of up \(freshness 10m\); cached artifacts not pulled for 7 days are removed daily/m);
    assert.match((await berth(['project', 'show', 'hub'])).stdout, /^Proxy cache: +proxy cache of up \(freshness 10m\)$/m);
    const projects = tableRows((await berth(['project', 'list'])).stdout);
    const proxyColumn = projects[0]!.indexOf('PROXY CACHE');
    assert.equal(projects.find((r) => r[0] === 'hub')?.[proxyColumn], 'up');
    assert.match((await berth(['project', 'update', 'hub', '--freshness', '90s'])).stdout, /freshness 1m30s/);
    assert.match((await berth(['registry', 'show', 'up'])).stdout, /^Used by: +hub$/m);

    const inUse = await berth(['registry', 'delete', 'up'], { fails: true });
    assert.match(inUse.stderr, /^berth: 409 CONFLICT: registry endpoint "up" is the upstream of proxy-cache project "hub"/m);
    await berth(['project', 'delete', 'hub']);
    assert.equal((await berth(['registry', 'delete', 'up'])).stdout.trim(), 'deleted registry endpoint "up"');
  });

  test('mistakes are named before anything is sent', async () => {
    const refused = async (args: string[], message: RegExp, input?: string) => assert.match((await berth(args, { fails: true, ...(input ? { input } : {}) })).stderr, message);
    await refused(['registry', 'add', 'x'], /give --type: berth, distribution/);
    await refused(['registry', 'add', 'x', '--type', 'docker'], /--type: one of berth, distribution/);
    await refused(['registry', 'add', 'x', '--type', 'quay', '--username', 'u'], /--username needs its password/);
    await refused(['registry', 'add', 'x', '--type', 'quay', '--username', 'u', '--password', 'a', '--password-stdin'], /pick one/, 'b\n');
    await refused(['registry', 'update', 'x'], /nothing to change/);
    await refused(['registry', 'update', 'x', '--no-credentials', '--username', 'u'], /--no-credentials removes the credentials/);
    await refused(['project', 'create', 'p', '--freshness', '10m'], /--freshness is for proxy-cache projects/);
    await refused(['project', 'create', 'p', '--proxy-cache', 'up', '--freshness', 'soon'], /--freshness: a duration such as/);
    await refused(['registry', 'add', 'x', '--type', 'distribution', '--url', 'file:///etc/passwd'], /^berth: 400 INVALID: invalid request: url: only http and https are allowed/m);
  });
});
