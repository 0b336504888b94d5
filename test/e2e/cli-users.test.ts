// `berth user` run through the real CLI against a real Berth process, in its two modes: through the
// server's management API when logged in (checked and audited by the server under the caller), and
// with an explicit --data-dir on the database directly (recovery: the last administrator's password
// reset while nobody can log in), which refuses a directory without a database and never creates
// one. Neither mode: a clear error, and no ./data appears in the working directory.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { type Cli, berthCli, tableRows, whoamiStatus as whoami } from '../support/cli.ts';
import { ProcessRegistry } from '../support/processes.ts';

const DEV = 'dev';
const DEV_PASSWORD = 'dev-password-4711';
const DEV_NEW_PASSWORD = 'dev-password-0815';
const CAROL = 'carol';
const CAROL_PASSWORD = 'carol-password-1';
const CAROL_NEW_PASSWORD = 'carol-password-2';
const RESET_PASSWORD = 'reset-by-recovery-1';

describe('berth user: through the server when logged in, on the data directory with --data-dir', { timeout: 4 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let failed = false;
  let berth: BerthServer;
  let home: string;
  /** The working directory of every CLI call: a `berth user` that falls back to ./data would show here. */
  let cwd: string;
  let admin: Cli;
  let dev: Cli;
  /** A CLI with no stored login. */
  let nobody: Cli;

  const whoamiStatus = (user: string, secret: string): Promise<number> => whoami(berth.url, user, secret);

  before(async () => {
    failed = true;
    berth = await startBerth({ registry });
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-cli-users-'));
    scratch.push(berth.dataDir, path.dirname(berth.logFile), home);
    cwd = path.join(home, 'cwd');
    await mkdir(cwd);
    const secrets = () => [berth.adminPassword, RESET_PASSWORD, CAROL_PASSWORD, CAROL_NEW_PASSWORD, DEV_PASSWORD, DEV_NEW_PASSWORD];
    admin = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'admin', 'cli.json') }, cwd, secrets });
    dev = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'dev', 'cli.json') }, cwd, secrets });
    nobody = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'nobody', 'cli.json') }, cwd, secrets });
    await admin(['login', berth.url, '-u', 'admin', '--password-stdin'], { input: `${berth.adminPassword}\n` });
    failed = false;
  });
  after(async () => {
    await registry.stopAllAndClean(scratch, failed);
  });

  test('an administrator adds a user through the server, who logs in', async () => {
    const added = await admin(['user', 'add', DEV, '--password-stdin'], { input: `${DEV_PASSWORD}\n` });
    assert.equal(added.stdout.trim(), `created user "${DEV}"`);
    await dev(['login', berth.url, '-u', DEV, '--password-stdin'], { input: `${DEV_PASSWORD}\n` });
    assert.ok(!existsSync(path.join(cwd, 'data')), 'no ./data in the working directory');
  });

  /** No `berth user` fell back to a database under the working directory. */
  function assertNoLocalDatabase(): void {
    assert.ok(!existsSync(path.join(cwd, 'data')), `no ./data created in the working directory ${cwd}`);
  }

  test('logged in, berth user works through the server: add, list, passwd, delete, audited under the caller', async () => {
    const added = await admin(['user', 'add', CAROL, '--password-stdin'], { input: `${CAROL_PASSWORD}\n` });
    assert.equal(added.stdout.trim(), `created user "${CAROL}"`);
    assert.equal(await whoamiStatus(CAROL, CAROL_PASSWORD), 200, 'the user exists on the server');
    // Without a password (and no terminal) the server generates one, printed once.
    const generated = await admin.json<{ username: string; admin: boolean; createdAt: string; password: string }>(['user', 'add', 'gen', '--admin']);
    assert.deepEqual([generated.username, generated.admin], ['gen', true]);
    assert.ok(generated.password.length >= 8, JSON.stringify(generated));
    assert.equal(await whoamiStatus('gen', generated.password), 200);

    const table = tableRows((await admin(['user', 'list'])).stdout);
    assert.deepEqual(table[0], ['USERNAME', 'ADMIN', 'SOURCE', 'LAST LOGIN', 'CREATED']);
    const carolRow = table.find((r) => r[0] === CAROL);
    assert.deepEqual(carolRow?.slice(0, 4), [CAROL, 'no', 'local', '-']);
    assert.match(carolRow[4]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    assert.deepEqual(table.find((r) => r[0] === 'admin')?.slice(0, 2), ['admin', 'yes']);
    const listed = await admin.json<{ username: string; admin: boolean; createdAt: string }[]>(['user', 'list']);
    assert.deepEqual(listed.map((u) => u.username), ['admin', CAROL, DEV, 'gen']);
    for (const u of listed) assert.deepEqual(Object.keys(u).sort(), ['admin', 'createdAt', 'email', 'lastLoginAt', 'source', 'username']);
    assert.equal(listed.find((u) => u.username === CAROL)?.admin, false);

    // An administrator resets another user's password without knowing it.
    const reset = await admin(['user', 'passwd', CAROL, '--password-stdin'], { input: `${CAROL_NEW_PASSWORD}\n` });
    assert.match(reset.stdout, new RegExp(`^password of "${CAROL}" changed`));
    assert.equal(await whoamiStatus(CAROL, CAROL_NEW_PASSWORD), 200);
    assert.equal(await whoamiStatus(CAROL, CAROL_PASSWORD), 401);

    // Your own password needs the current one: two lines on stdin, current then new.
    const oneLine = await dev(['user', 'passwd', DEV, '--password-stdin'], { input: `${DEV_NEW_PASSWORD}\n`, fails: true });
    assert.match(oneLine.stderr, /^berth: --password-stdin: changing your own password through the server reads two lines, your current password and then the new one$/m);
    const wrong = await dev(['user', 'passwd', DEV, '--password-stdin'], { input: `not-my-password\n${DEV_NEW_PASSWORD}\n`, fails: true });
    assert.match(wrong.stderr, /^berth: 400 INVALID: .*currentPassword/m);
    const own = await dev(['user', 'passwd', 'me', '--password-stdin'], { input: `${DEV_PASSWORD}\n${DEV_NEW_PASSWORD}\n` });
    assert.match(own.stdout, new RegExp(`^password of "${DEV}" changed`));
    assert.equal(await whoamiStatus(DEV, DEV_NEW_PASSWORD), 200);
    assert.equal(await whoamiStatus(DEV, DEV_PASSWORD), 401);
    const denied = await dev(['user', 'list'], { fails: true });
    assert.match(denied.stderr, /^berth: 403 DENIED: system administrator needed/m);

    const deleted = await admin(['user', 'delete', CAROL]);
    assert.equal(deleted.stdout.trim(), `deleted user "${CAROL}"`);
    assert.equal(await whoamiStatus(CAROL, CAROL_NEW_PASSWORD), 401);
    assert.deepEqual(await admin.json<unknown>(['user', 'delete', 'gen']), { username: 'gen', deleted: true });
    const last = await admin(['user', 'delete', 'admin'], { fails: true });
    assert.match(last.stderr, /^berth: 409 CONFLICT: cannot delete "admin": it is the last system administrator$/m);

    const events = await admin.json<{ actor: string; action: string; resource: string; client: string; detail: Record<string, unknown> | null }[]>(['audit', '--resource', CAROL, '--since', '1h']);
    const ofCarol = events.filter((e) => e.resource === CAROL && e.action.startsWith('user.')).map((e) => ({ actor: e.actor, action: e.action, client: e.client, detail: e.detail }));
    assert.deepEqual(ofCarol, [
      { actor: 'admin', action: 'user.delete', client: '127.0.0.1', detail: null },
      { actor: 'admin', action: 'user.update', client: '127.0.0.1', detail: { passwordChanged: true, reset: true } },
      { actor: 'admin', action: 'user.create', client: '127.0.0.1', detail: { admin: false, source: 'local' } },
    ]);
    const ownChange = await admin.json<{ actor: string; resource: string; detail: Record<string, unknown> }[]>(['audit', '--actor', DEV, '--action', 'user.update']);
    assert.deepEqual(ownChange.map((e) => [e.resource, e.detail]), [[DEV, { passwordChanged: true }]]);
    assertNoLocalDatabase();
  });

  test('users of LDAP and OIDC: added without a password (--source), listed with SOURCE and LAST LOGIN, never given a Berth password', async () => {
    const added = await admin(['user', 'add', 'Erin.Ortiz@example.com', '--source', 'oidc']);
    assert.equal(added.stdout.trim(), 'created oidc user "Erin.Ortiz@example.com": they sign in through OpenID Connect, with no password in Berth');
    const withPassword = await admin(['user', 'add', 'lena', '--source', 'ldap', '--password-stdin'], { input: 'lena-password-1\n', fails: true });
    assert.match(withPassword.stderr, /^berth: --password: a ldap user signs in through LDAP and has no password in Berth$/m);
    const localName = await admin(['user', 'add', 'Erin.Ortiz@example.com'], { fails: true });
    assert.match(localName.stderr, /^berth: username: 1-64 characters/m);
    const viaDataDir = await nobody(['user', 'add', 'lena', '--source', 'ldap', '--data-dir', berth.dataDir]);
    assert.match(viaDataDir.stdout, /^created ldap user "lena"/);

    const table = tableRows((await admin(['user', 'list'])).stdout);
    assert.deepEqual(table.find((r) => r[0] === 'lena')?.slice(0, 4), ['lena', 'no', 'ldap', 'never']);
    assert.deepEqual(table.find((r) => r[0] === 'Erin.Ortiz@example.com')?.slice(0, 4), ['Erin.Ortiz@example.com', 'no', 'oidc', 'never']);
    const json = await admin.json<{ username: string; createdAt: string; source: string; lastLoginAt: string | null }[]>(['user', 'list']);
    assert.deepEqual(json.find((u) => u.username === 'lena'), { username: 'lena', admin: false, createdAt: json.find((u) => u.username === 'lena')!.createdAt, source: 'ldap', email: null, lastLoginAt: null });

    // Refused before any password is asked for, through the server and on the data directory.
    const reset = await admin(['user', 'passwd', 'lena', '--password-stdin'], { input: 'lena-password-1\n', fails: true });
    assert.equal(reset.stderr, 'berth: lena signs in through LDAP: change the password in the directory\n');
    const offline = await nobody(['user', 'passwd', 'Erin.Ortiz@example.com', '--data-dir', berth.dataDir, '--password-stdin'], { input: 'erin-password-1\n', fails: true });
    assert.equal(offline.stderr, 'berth: Erin.Ortiz@example.com signs in through OpenID Connect: change the password at the OpenID provider\n');
    for (const [name, secret] of [['lena', 'lena-password-1'], ['lena', '!external'], ['Erin.Ortiz@example.com', 'erin-password-1']] as const) {
      assert.equal(await whoamiStatus(name, secret), 401, `no password works for ${name}`);
    }
    await admin(['user', 'delete', 'lena']);
    await admin(['user', 'delete', 'Erin.Ortiz@example.com']);
    assertNoLocalDatabase();
  });

  test('berth settings: shows where each value comes from, sets and resets at run time, refuses unknown keys and bad values', async () => {
    const before = await admin.json<Record<string, { value: unknown; source: string }>>(['settings']);
    assert.deepEqual(before.auditPulls, { ...before.auditPulls, value: false, source: 'config' });
    const set = await admin.json<Record<string, { value: unknown; source: string; updatedBy: string | null }>>(['settings', 'set', 'announcement', 'Maintenance at 18:00']);
    assert.equal(set.announcement?.value, 'Maintenance at 18:00');
    assert.equal(set.announcement?.source, 'runtime');
    assert.equal(set.announcement?.updatedBy, 'admin');
    const table = tableRows((await admin(['settings', 'show'])).stdout);
    assert.ok(table.some((row) => row[0] === 'announcement' && row.includes('runtime')), 'the table says the announcement was set at run time');
    const bad = await admin(['settings', 'set', 'auditPulls', 'maybe'], { fails: true });
    assert.match(bad.stderr, /auditPulls: true or false/);
    const unknown = await admin(['settings', 'reset', 'colour'], { fails: true });
    assert.match(unknown.stderr, /one of projectCreation, auditPulls, announcement/);
    const reset = await admin.json<Record<string, { value: unknown; source: string }>>(['settings', 'reset', 'announcement']);
    assert.deepEqual([reset.announcement?.value, reset.announcement?.source], [null, 'config']);
  });

  test('berth user --data-dir works on the database directly: recovery of the last admin, audited; never creates a database', async () => {
    const actor = `cli:${os.userInfo().username}`;
    // The server keeps running: SQLite's write-ahead log lets both work on the database.
    const reset = await nobody(['user', 'passwd', 'admin', '--data-dir', berth.dataDir, '--password-stdin'], { input: `${RESET_PASSWORD}\n` });
    assert.match(reset.stdout, /^password of "admin" changed/);
    assert.equal(await whoamiStatus('admin', RESET_PASSWORD), 200, 'the running server takes the new password');
    assert.equal(await whoamiStatus('admin', berth.adminPassword), 401);

    const refused = await nobody(['user', 'delete', 'admin', '--data-dir', berth.dataDir], { fails: true });
    assert.equal(refused.stderr, 'berth: cannot delete "admin": it is the last system administrator\n');
    assert.equal(await whoamiStatus('admin', RESET_PASSWORD), 200, 'the last administrator is still there');

    const added = await nobody(['user', 'add', 'local-user', '--data-dir', berth.dataDir, '--password-stdin'], { input: 'local-password-1\n' });
    assert.equal(added.stdout.trim(), 'created user "local-user"');
    assert.equal(await whoamiStatus('local-user', 'local-password-1'), 200);
    const listed = await nobody.json<{ username: string; admin: boolean; createdAt: string }[]>(['user', 'list', '--data-dir', berth.dataDir]);
    assert.deepEqual(listed.map((u) => [u.username, u.admin]), [['admin', true], [DEV, false], ['local-user', false]]);
    assert.deepEqual(tableRows((await nobody(['user', 'list', '--data-dir', berth.dataDir])).stdout)[0], ['USERNAME', 'ADMIN', 'SOURCE', 'LAST LOGIN', 'CREATED']);
    await nobody(['user', 'delete', 'local-user', '--data-dir', berth.dataDir]);
    assert.equal(await whoamiStatus('local-user', 'local-password-1'), 401);
    // Put the original password back (also through the data directory).
    await nobody(['user', 'passwd', 'admin', '--data-dir', berth.dataDir, '--password-stdin'], { input: `${berth.adminPassword}\n` });
    assert.equal(await whoamiStatus('admin', berth.adminPassword), 200);

    const events = await admin.json<{ actor: string; action: string; resource: string; client: string; success: boolean; detail: Record<string, unknown> | null }[]>(['audit', '--actor', actor, '--since', '1h']);
    assert.deepEqual(
      events.map((e) => [e.action, e.resource, e.client, e.success, e.detail]),
      [
        ['user.update', 'admin', 'local', true, { passwordChanged: true, reset: true }],
        ['user.delete', 'local-user', 'local', true, null],
        ['user.create', 'local-user', 'local', true, { admin: false, source: 'local' }],
        ['user.update', 'admin', 'local', true, { passwordChanged: true, reset: true }],
        // From the test before: an LDAP user registered on the data directory.
        ['user.create', 'lena', 'local', true, { admin: false, source: 'ldap' }],
      ],
    );

    // A directory without a database is refused, and none is created: not where it points, not in ./data.
    const missing = path.join(home, 'no-such-data-dir');
    const gone = await nobody(['user', 'passwd', 'admin', '--data-dir', missing, '--password-stdin'], { input: `${RESET_PASSWORD}\n`, fails: true });
    assert.match(gone.stderr, new RegExp(`^berth: no Berth database in ${missing}: `, 'm'));
    assert.ok(!existsSync(missing), `${missing} was not created`);
    const empty = await mkdtemp(path.join(home, 'empty-'));
    const nothing = await nobody(['user', 'list', '--data-dir', empty], { fails: true });
    assert.match(nothing.stderr, new RegExp(`^berth: no Berth database in ${empty}: ${path.join(empty, 'berth.db')} does not exist`, 'm'));
    assert.deepEqual(await readdir(empty), [], 'nothing was created in the empty directory');
    assertNoLocalDatabase();
  });

  test('neither logged in nor --data-dir: berth user names both ways and touches nothing', async () => {
    for (const args of [['user', 'list'], ['user', 'add', 'someone', '--password-stdin'], ['user', 'delete', 'admin']]) {
      const out = await nobody(args, { input: 'some-password-1\n', fails: true });
      assert.match(out.stderr, /^berth: not logged in, and no --data-dir given: run "berth login <url>" to manage users through the server, or give --data-dir <dir> /m);
      assert.equal(out.stdout, '');
    }
    assertNoLocalDatabase();
  });
});
