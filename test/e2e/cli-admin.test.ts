// The admin story of issue 4, run through the real `berth` CLI against a real Berth process: log in
// (a token is stored, never the password), create a project with a quota, add a developer, make a
// CI robot, push with it through the token flow (skopeo), manage personal tokens, read the audit
// log, change and remove members, browse and delete repositories, artifacts and tags, log out.
// Table and --json outputs are both checked. (`berth user`: cli-users.test.ts.)
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, REPO_ROOT, startBerth } from '../support/berth.ts';
import { type Cli, basicAuth, berthCli, tableRows, whoamiStatus as whoami } from '../support/cli.ts';
import { pushPullSkopeo, type RegistryTarget } from '../support/clients.ts';
import { createRandomImage } from '../support/images.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { cleanEnv, run } from '../support/run.ts';
import { ensurePackages } from '../support/system.ts';
import { openMetadata } from '../../src/metadata/index.ts';

const PROJECT = 'team';
const DEV = 'dev';
const DEV_PASSWORD = 'dev-password-4711';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const GIB10 = 10 * 1024 ** 3;

describe('berth CLI: the admin story of a team registry', { timeout: 6 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let failed = false;
  let berth: BerthServer;
  let home: string;
  let adminFile: string;
  let admin: Cli;
  let dev: Cli;
  let robotSecret = '';
  let pushedDigest = '';

  const rows = tableRows;
  const basic = basicAuth;

  /** Status of a /v2 token request for push+pull with these credentials (the docker login path). */
  async function tokenStatus(user: string, secret: string): Promise<number> {
    const res = await fetch(`${berth.url}/service/token?service=berth&scope=repository:${PROJECT}/app:pull,push`, { headers: { Authorization: basic(user, secret) } });
    await res.arrayBuffer();
    return res.status;
  }

  const whoamiStatus = (user: string, secret: string): Promise<number> => whoami(berth.url, user, secret);

  before(async () => {
    failed = true;
    await ensurePackages([{ binary: 'skopeo', pkg: 'skopeo' }]);
    berth = await startBerth({ registry });
    home = await mkdtemp(path.join(os.tmpdir(), 'berth-cli-'));
    scratch.push(berth.dataDir, path.dirname(berth.logFile), home);
    adminFile = path.join(home, 'admin', 'cli.json');
    const cwd = path.join(home, 'cwd');
    await mkdir(cwd);
    admin = berthCli({ env: { BERTH_CLI_CONFIG: adminFile }, cwd, secrets: () => [berth.adminPassword, robotSecret] });
    // The developer uses the default location under XDG_CONFIG_HOME, so that path is covered too.
    dev = berthCli({ env: { XDG_CONFIG_HOME: path.join(home, 'dev-config') }, cwd, secrets: () => [DEV_PASSWORD] });
    failed = false;
  });
  after(async () => {
    await registry.stopAllAndClean(scratch, failed);
  });

  test('login stores a personal token, never the password, in a 0600 file', async () => {
    const out = await admin(['login', berth.url, '-u', 'admin', '--password-stdin'], { input: `${berth.adminPassword}\n` });
    assert.match(out.stdout, new RegExp(`logged in to ${berth.url} as admin \\(system admin\\)`));
    const text = await readFile(adminFile, 'utf8');
    assert.ok(!text.includes(berth.adminPassword), 'the password is not in the stored file');
    assert.ok(!out.stdout.includes(berth.adminPassword) && !out.stderr.includes(berth.adminPassword));
    const stored = JSON.parse(text) as { current: string; logins: { url: string; username: string; token: string; tokenName: string }[] };
    assert.equal(stored.logins.length, 1);
    const login = stored.logins[0]!;
    assert.equal(login.url, berth.url);
    assert.equal(login.username, 'admin');
    assert.match(login.token, /^berth_pat_/);
    assert.match(login.tokenName, /^berth-cli-[a-z0-9-]+-\d{12}$/);
    assert.ok(!out.stdout.includes(login.token), 'the token is not printed');
    assert.equal((await stat(adminFile)).mode & 0o777, 0o600);
    assert.equal(await whoamiStatus('admin', login.token), 200, 'the stored token works on the API');

    // Logging in again (the same server, written with a trailing slash) replaces the stored login
    // and revokes the token it held.
    await admin(['login', `${berth.url}/`, '-u', 'admin', '--password-stdin'], { input: `${berth.adminPassword}\n` });
    const again = (JSON.parse(await readFile(adminFile, 'utf8')) as typeof stored).logins;
    assert.equal(again.length, 1);
    assert.notEqual(again[0]!.token, login.token);
    assert.equal(await whoamiStatus('admin', login.token), 401, 'the replaced token is revoked');
    assert.equal(await whoamiStatus('admin', again[0]!.token), 200);
  });

  test('a wrong password fails with the server error and stores nothing new', async () => {
    const before = await readFile(adminFile, 'utf8');
    const out = await admin(['login', berth.url, '-u', 'admin', '--password-stdin'], { input: 'not-the-password\n', fails: true });
    assert.match(out.stderr, /^berth: 401 UNAUTHORIZED: /m);
    assert.equal(await readFile(adminFile, 'utf8'), before);
  });

  test('project create with a quota; list and show in tables and JSON', async () => {
    const created = await admin(['project', 'create', PROJECT, '--quota', '10GiB']);
    assert.equal(created.stdout.trim(), `created project "${PROJECT}" (private, quota 10 GiB)`);
    const shown = await admin.json<{ name: string; public: boolean; quotaBytes: number; usageBytes: number; permissions: string[] }>(['project', 'show', PROJECT]);
    assert.equal(shown.name, PROJECT);
    assert.equal(shown.public, false);
    assert.equal(shown.quotaBytes, GIB10);
    assert.equal(shown.usageBytes, 0);
    assert.ok(shown.permissions.includes('member.manage'));
    const table = rows((await admin(['project', 'list'])).stdout);
    assert.deepEqual(table[0], ['NAME', 'VISIBILITY', 'REPOSITORIES', 'USAGE', 'QUOTA', 'PROXY CACHE', 'CREATED']);
    const row = table.find((r) => r[0] === PROJECT);
    assert.ok(row, `project row in ${JSON.stringify(table)}`);
    assert.deepEqual(row.slice(1, 5), ['private', '0', '0 B', '10 GiB']);
    const details = (await admin(['project', 'show', PROJECT])).stdout;
    assert.match(details, /^Quota: +10 GiB$/m);
    assert.match(details, /^Usage: +0 B of 10 GiB \(0%\)$/m);
    const invalid = await admin(['project', 'create', 'Not_A-Valid/Name'], { fails: true });
    assert.match(invalid.stderr, /^berth: 400 INVALID: /m);
  });

  test('a user is added as developer; they see the project but may not manage members', async () => {
    await run(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), 'user', 'add', DEV, '--data-dir', berth.dataDir, '--password-stdin'], { input: `${DEV_PASSWORD}\n`, env: cleanEnv() });
    const added = await admin(['project', 'member', 'add', PROJECT, DEV, '--role', 'developer']);
    assert.equal(added.stdout.trim(), `added ${DEV} to project "${PROJECT}" as developer`);
    const table = rows((await admin(['project', 'member', 'list', PROJECT])).stdout);
    assert.deepEqual(table[0], ['KIND', 'NAME', 'ROLE', 'GROUP ID', 'SOURCE', 'ADDED']);
    assert.deepEqual(table.find((r) => r[1] === DEV)?.slice(0, 5), ['user', DEV, 'developer', '-', '-']);
    const members = await admin.json<{ username: string; role: string }[]>(['project', 'member', 'list', PROJECT]);
    assert.equal(members.find((m) => m.username === DEV)?.role, 'developer');

    await dev(['login', berth.url, '-u', DEV, '--password-stdin'], { input: `${DEV_PASSWORD}\n` });
    const devFile = path.join(home, 'dev-config', 'berth', 'cli.json');
    assert.equal((await stat(devFile)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(devFile))).mode & 0o777, 0o700);
    assert.ok(!(await readFile(devFile, 'utf8')).includes(DEV_PASSWORD));
    const seen = await dev.json<{ permissions: string[] }>(['project', 'show', PROJECT]);
    assert.ok(seen.permissions.includes('repository.push') && !seen.permissions.includes('member.manage'), JSON.stringify(seen.permissions));
    const denied = await dev(['project', 'member', 'add', PROJECT, 'someone', '--role', 'guest'], { fails: true });
    assert.match(denied.stderr, /^berth: 403 DENIED: .*member\.manage/m);
    assert.equal(denied.stdout, '');
  });

  test('a CI robot with pull,push pushes through the token flow; disable, enable and refresh take effect', async () => {
    const created = await admin(['robot', 'create', 'ci', '--project', PROJECT, '--permission', 'pull,push', '--description', 'CI pipeline']);
    assert.match(created.stdout, /^created robot robot\$team\+ci \(team: pull,push; expires never\)$/m);
    const secret = /^secret \(shown only now, store it safely\): (\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(secret, created.stdout);
    robotSecret = secret;
    assert.ok(created.stdout.includes(`docker login 127.0.0.1:${berth.port} -u 'robot$team+ci'`), created.stdout);

    const table = rows((await admin(['robot', 'list', '--project', PROJECT])).stdout);
    assert.deepEqual(table[0], ['NAME', 'LEVEL', 'PERMISSIONS', 'STATUS', 'EXPIRES', 'DESCRIPTION']);
    assert.deepEqual(table[1], ['robot$team+ci', 'project', 'team: pull,push', 'enabled', 'never', 'CI pipeline']);
    const listed = await admin.json<{ name: string; disabled: boolean; permissions: { project: string; actions: string[] }[] }[]>(['robot', 'list', '--project', PROJECT]);
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.name, 'robot$team+ci');
    assert.deepEqual(listed[0]!.permissions.map((p) => ({ project: p.project, actions: [...p.actions].sort() })), [{ project: PROJECT, actions: ['pull', 'push'] }]);

    const image = await createRandomImage({ layerSizes: [40_000, 3_000] });
    scratch.push(image.dir);
    const target: RegistryTarget = { registryHost: `localhost:${berth.port}`, username: 'robot$team+ci', password: robotSecret, repository: `${PROJECT}/app`, tag: '1.0', tls: 'plain' };
    pushedDigest = (await pushPullSkopeo(target, image)).manifestDigest;
    assert.match(pushedDigest, /^sha256:[0-9a-f]{64}$/);

    await admin(['robot', 'disable', 'ci', '--project', PROJECT]);
    assert.equal(rows((await admin(['robot', 'list', '--project', PROJECT])).stdout)[1]?.[3], 'disabled');
    assert.equal(await tokenStatus('robot$team+ci', robotSecret), 401, 'a disabled robot cannot log in');
    await admin(['robot', 'enable', 'robot$team+ci']);
    assert.equal(await tokenStatus('robot$team+ci', robotSecret), 200);

    const refreshed = await admin.json<{ name: string; secret: string }>(['robot', 'refresh', 'robot$team+ci']);
    assert.equal(refreshed.name, 'robot$team+ci');
    assert.notEqual(refreshed.secret, robotSecret);
    assert.equal(await tokenStatus('robot$team+ci', robotSecret), 401, 'the old secret stops working');
    robotSecret = refreshed.secret;
    assert.equal(await tokenStatus('robot$team+ci', robotSecret), 200, 'the new secret works');

    const usage = (await admin(['project', 'show', PROJECT])).stdout;
    assert.match(usage, /^Usage: +\d+(\.\d)? (B|KiB|MiB) of 10 GiB \(<0\.1%\)$/m, usage);
    assert.match(usage, /^Repositories: +1$/m);
  });

  test('personal tokens: create, list, use, revoke', async () => {
    const refused = await admin(['token', 'create', 'laptop', '--password-stdin'], { input: 'not-the-password\n', fails: true });
    assert.match(refused.stderr, /^berth: 400 INVALID: .*currentPassword|^berth: 401 UNAUTHORIZED: /m, 'a token needs the password, not the stored token');
    const created = await admin(['token', 'create', 'laptop', '--expires-days', '30', '--password-stdin'], { input: `${berth.adminPassword}\n` });
    const token = /^token \(shown only now, store it safely\): (berth_pat_\S+)$/m.exec(created.stdout)?.[1];
    assert.ok(token, created.stdout);
    assert.equal(await whoamiStatus('admin', token), 200);
    assert.equal(await tokenStatus('admin', token), 200, 'a personal token works as a docker password');

    const table = rows((await admin(['token', 'list'])).stdout);
    assert.deepEqual(table[0], ['NAME', 'PREFIX', 'STATUS', 'EXPIRES', 'LAST USED', 'CREATED']);
    const laptop = table.find((r) => r[0] === 'laptop');
    assert.ok(laptop && token.startsWith(laptop[1]!), `prefix of the token in ${JSON.stringify(laptop)}`);
    assert.equal(laptop[2], 'active');
    assert.ok(table.some((r) => /^berth-cli-/.test(r[0]!) && r[2] === 'active (this CLI)'), JSON.stringify(table));

    const revoked = await admin(['token', 'revoke', 'laptop']);
    assert.equal(revoked.stdout.trim(), 'revoked token "laptop"');
    const listed = await admin.json<{ name: string; revoked: boolean; expiresAt: string | null }[]>(['token', 'list']);
    const entry = listed.find((t) => t.name === 'laptop');
    assert.equal(entry?.revoked, true);
    assert.ok(entry.expiresAt && Math.abs(Date.parse(entry.expiresAt) - Date.now() - 30 * 86_400_000) < 3_600_000, `expiresAt ${entry.expiresAt}`);
    assert.equal(await whoamiStatus('admin', token), 401, 'a revoked token is refused');
    const missing = await admin(['token', 'revoke', 'no-such-token'], { fails: true });
    assert.match(missing.stderr, /^berth: 404 NOT_FOUND: /m);
  });

  test('the audit log shows who pushed what, and who changed members and robots', async () => {
    const pushes = await admin.json<{ actor: string; action: string; resource: string; project: string; client: string; success: boolean; detail: { digest?: string } }[]>(['audit', '--project', PROJECT, '--action', 'push', '--since', '1h']);
    const push = pushes.find((e) => e.detail?.digest === pushedDigest);
    assert.ok(push, `push of ${pushedDigest} in ${JSON.stringify(pushes)}`);
    assert.equal(push.actor, 'robot$team+ci');
    assert.equal(push.resource, `${PROJECT}/app:1.0`);
    assert.equal(push.success, true);
    assert.equal(push.client, '127.0.0.1');

    const table = rows((await admin(['audit', '--project', PROJECT, '--action', 'push'])).stdout);
    assert.deepEqual(table[0], ['TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'PROJECT', 'CLIENT', 'RESULT', 'DETAIL']);
    const row = table.find((r) => r[3] === `artifact ${PROJECT}/app:1.0`);
    assert.ok(row, JSON.stringify(table));
    assert.deepEqual(row.slice(1, 8), ['robot$team+ci', 'push', `artifact ${PROJECT}/app:1.0`, PROJECT, '127.0.0.1', 'ok', `digest=${pushedDigest.slice(0, 19)}`]);
    assert.match(row[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);

    const byAdmin = await admin.json<{ action: string }[]>(['audit', '--actor', 'admin', '--project', PROJECT]);
    const actions = new Set(byAdmin.map((e) => e.action));
    for (const action of ['project.create', 'member.add', 'robot.create', 'robot.update', 'robot.refresh']) assert.ok(actions.has(action), `${action} in ${[...actions].join(', ')}`);
    const limited = await admin.json<unknown[]>(['audit', '--limit', '2']);
    assert.equal(limited.length, 2);
    const old = await admin.json<unknown[]>(['audit', '--project', PROJECT, '--until', '2000-01-01']);
    assert.deepEqual(old, []);
  });

  test('member update and remove; the project cannot be deleted while it holds repositories', async () => {
    await admin(['project', 'member', 'update', PROJECT, DEV, '--role', 'maintainer']);
    const members = await admin.json<{ username: string; role: string }[]>(['project', 'member', 'list', PROJECT]);
    assert.equal(members.find((m) => m.username === DEV)?.role, 'maintainer');
    const removed = await admin(['project', 'member', 'remove', PROJECT, DEV]);
    assert.equal(removed.stdout.trim(), `removed ${DEV} from project "${PROJECT}"`);
    assert.ok(!rows((await admin(['project', 'member', 'list', PROJECT])).stdout).some((r) => r[1] === DEV));
    const hidden = await dev(['project', 'show', PROJECT], { fails: true });
    assert.match(hidden.stderr, /^berth: 404 NOT_FOUND: /m, 'a private project is invisible to non-members');
    const conflict = await admin(['project', 'delete', PROJECT], { fails: true });
    assert.match(conflict.stderr, /^berth: 409 CONFLICT: /m);
    await admin(['project', 'update', PROJECT, '--public', '--quota', 'unlimited']);
    const updated = await admin.json<{ public: boolean; quotaBytes: number | null }>(['project', 'show', PROJECT]);
    assert.deepEqual([updated.public, updated.quotaBytes], [true, null]);
    await dev(['project', 'show', PROJECT]);
  });

  /** Pushes a manifest list of `child` (twice, as two platforms) to `repository:tag` through the token flow. */
  async function pushIndex(repository: string, tag: string, child: string): Promise<string> {
    const tokenRes = await fetch(`${berth.url}/service/token?service=berth&scope=repository:${repository}:pull,push`, { headers: { Authorization: basic('robot$team+ci', robotSecret) } });
    assert.equal(tokenRes.status, 200);
    const auth = { Authorization: `Bearer ${((await tokenRes.json()) as { token: string }).token}` };
    const head = await fetch(`${berth.url}/v2/${repository}/manifests/${child}`, { method: 'HEAD', headers: { ...auth, Accept: DOCKER_MANIFEST } });
    assert.equal(head.status, 200);
    const entry = { mediaType: head.headers.get('content-type'), digest: child, size: Number(head.headers.get('content-length')) };
    const index = {
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [
        { ...entry, platform: { os: 'linux', architecture: 'amd64' } },
        { ...entry, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const put = await fetch(`${berth.url}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'Content-Type': DOCKER_LIST }, body: JSON.stringify(index) });
    assert.equal(put.status, 201, await put.text());
    return put.headers.get('docker-content-digest')!;
  }

  test('repositories, artifacts and tags: list, show and delete in tables and JSON', async () => {
    const image = await createRandomImage({ layerSizes: [20_000] });
    scratch.push(image.dir);
    const target: RegistryTarget = { registryHost: `localhost:${berth.port}`, username: 'robot$team+ci', password: robotSecret, repository: `${PROJECT}/multi`, tag: 'amd64', tls: 'plain' };
    const child = (await pushPullSkopeo(target, image)).manifestDigest;
    const indexDigest = await pushIndex(`${PROJECT}/multi`, 'latest', child);
    const time = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/;

    const repos = rows((await admin(['repo', 'list'])).stdout);
    assert.deepEqual(repos[0], ['NAME', 'PROJECT', 'ARTIFACTS', 'CREATED']);
    assert.deepEqual(repos.slice(1).map((r) => r.slice(0, 3)), [[`${PROJECT}/app`, PROJECT, '1'], [`${PROJECT}/multi`, PROJECT, '1']], 'the platform image counts under its index');
    assert.match(repos[1]![3]!, time);
    const repoJson = await admin.json<{ name: string; project: string; artifactCount: number; createdAt: string }[]>(['repo', 'list', '--project', PROJECT, '-q', 'mult']);
    assert.equal(repoJson.length, 1);
    assert.deepEqual(Object.keys(repoJson[0]!).sort(), ['artifactCount', 'createdAt', 'name', 'project']);
    assert.deepEqual([repoJson[0]!.name, repoJson[0]!.project, repoJson[0]!.artifactCount], [`${PROJECT}/multi`, PROJECT, 1]);

    const artifacts = rows((await admin(['artifact', 'list', `${PROJECT}/app`])).stdout);
    assert.deepEqual(artifacts[0], ['DIGEST', 'TAGS', 'TYPE', 'SIZE', 'PUSHED BY', 'PUSHED', 'LAST PULLED']);
    assert.equal(artifacts.length, 2);
    const [digestCell, tagsCell, typeCell, sizeCell, byCell, pushedCell, pulledCell] = artifacts[1]!;
    assert.deepEqual([digestCell, tagsCell, typeCell, byCell], [pushedDigest.slice(0, 19), '1.0', 'docker image', 'robot$team+ci']);
    assert.match(sizeCell!, /^\d+(\.\d)? KiB$/);
    assert.match(pushedCell!, time);
    assert.match(pulledCell!, time, 'skopeo pulled it back');
    type Artifact = { digest: string; mediaType: string; artifactType: string | null; size: number; tags: string[]; platforms: { os: string; architecture: string; variant?: string }[]; pushedBy: string; pushedAt: string; lastPulledAt: string | null };
    const listed = await admin.json<Artifact[]>(['artifact', 'list', `${PROJECT}/app`]);
    assert.equal(listed.length, 1);
    const app = listed[0]!;
    assert.deepEqual(Object.keys(app).sort(), ['artifactType', 'digest', 'lastPulledAt', 'mediaType', 'platforms', 'pushedAt', 'pushedBy', 'size', 'subject', 'tagCount', 'tags']);
    assert.deepEqual([app.digest, app.mediaType, app.tags, app.platforms, app.pushedBy], [pushedDigest, DOCKER_MANIFEST, ['1.0'], [], 'robot$team+ci']);
    assert.ok(app.size > 40_000 && app.lastPulledAt !== null, JSON.stringify(app));

    const shown = (await admin(['artifact', 'show', `${PROJECT}/app:1.0`])).stdout;
    assert.deepEqual(shown.trimEnd().split('\n'), [
      `Repository:  ${PROJECT}/app`,
      `Digest:      ${pushedDigest}`,
      'Type:        docker image',
      `Media type:  ${DOCKER_MANIFEST}`,
      'Tags:        1.0',
      `Size:        ${sizeCell}`,
      `Pushed:      ${pushedCell} by robot$team+ci`,
      `Last pulled: ${pulledCell}`,
    ]);
    // As pasted from a push (registry host in front) and with the digest as the table shows it.
    assert.deepEqual(await admin.json<Artifact>(['artifact', 'show', `localhost:${berth.port}/${PROJECT}/app@${pushedDigest.slice(0, 19)}`]), app);

    const multi = await admin.json<Artifact>(['artifact', 'show', `${PROJECT}/multi:latest`]);
    assert.deepEqual([multi.digest, multi.mediaType, multi.tags], [indexDigest, DOCKER_LIST, ['latest']]);
    assert.deepEqual(multi.platforms, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    const multiText = (await admin(['artifact', 'show', `${PROJECT}/multi@${indexDigest}`])).stdout;
    assert.match(multiText, /^Type: +docker manifest list$/m);
    assert.match(multiText, /^Platforms: +linux\/amd64, linux\/arm64\/v8$/m);
    assert.match(multiText, /^Tags: +latest$/m);
    assert.match(multiText, /^Last pulled: +never$/m);
    const multiRows = rows((await admin(['artifact', 'list', `${PROJECT}/multi`])).stdout);
    assert.deepEqual(multiRows.slice(1).map((r) => r.slice(0, 3)), [[indexDigest.slice(0, 19), 'latest', 'docker manifest list']]);

    const byTag = await admin(['artifact', 'delete', `${PROJECT}/app:1.0`], { fails: true });
    assert.match(byTag.stderr, /^berth: artifact delete takes a digest, REPOSITORY@sha256:…/m);
    const untagged = await admin(['tag', 'delete', `${PROJECT}/app:1.0`]);
    assert.equal(untagged.stdout.trim(), `deleted tag ${PROJECT}/app:1.0; the artifact stays: ${PROJECT}/app@${pushedDigest}`);
    assert.equal(rows((await admin(['artifact', 'list', `${PROJECT}/app`])).stdout)[1]?.[1], '-');
    const noTag = await admin(['tag', 'delete', `${PROJECT}/app:1.0`], { fails: true });
    assert.match(noTag.stderr, /^berth: 404 NOT_FOUND: /m);
    assert.deepEqual(await admin.json<unknown>(['tag', 'delete', `${PROJECT}/multi:amd64`]), { repository: `${PROJECT}/multi`, tag: 'amd64', digest: child, deleted: true });

    const removed = await admin.json<unknown>(['artifact', 'delete', `${PROJECT}/app@${pushedDigest}`]);
    assert.deepEqual(removed, { repository: `${PROJECT}/app`, digest: pushedDigest, tags: [], deleted: true });
    assert.deepEqual(await admin.json<unknown>(['artifact', 'list', `${PROJECT}/app`]), []);
    assert.deepEqual(rows((await admin(['artifact', 'list', `${PROJECT}/app`])).stdout), [['DIGEST', 'TAGS', 'TYPE', 'SIZE', 'PUSHED BY', 'PUSHED', 'LAST PULLED']]);

    const dropped = await admin(['repo', 'delete', `${PROJECT}/multi`]);
    assert.equal(dropped.stdout.trim(), `deleted repository "${PROJECT}/multi" with its artifacts and tags`);
    assert.deepEqual(await admin.json<unknown>(['repo', 'delete', `${PROJECT}/app`]), { name: `${PROJECT}/app`, deleted: true });
    assert.deepEqual(await admin.json<unknown>(['repo', 'list']), []);
    const missing = await admin(['repo', 'delete', `${PROJECT}/app`], { fails: true });
    assert.match(missing.stderr, /^berth: 404 NOT_FOUND: repository "team\/app" not found$/m);

    const deletes = await admin.json<{ resourceType: string; resource: string; actor: string }[]>(['audit', '--project', PROJECT, '--action', 'delete']);
    assert.deepEqual(
      deletes.map((e) => [e.actor, e.resourceType, e.resource]),
      [
        ['admin', 'repository', `${PROJECT}/app`],
        ['admin', 'repository', `${PROJECT}/multi`],
        ['admin', 'artifact', `${PROJECT}/app@${pushedDigest}`],
        ['admin', 'tag', `${PROJECT}/multi:amd64`],
        ['admin', 'tag', `${PROJECT}/app:1.0`],
      ],
    );
  });

  test('groups: members by name, DN or id, the KIND column, ambiguous names; group list and show', async () => {
    // Groups as LDAP and OIDC sign-ins record them (no directory or provider runs here).
    const meta = await openMetadata(berth.dataDir);
    const [ci, opsA, opsB] = [
      ...(await meta.groups.upsert('oidc', [{ externalId: 'ci', name: 'ci' }])),
      ...(await meta.groups.upsert('ldap', [
        { externalId: 'cn=ops,ou=a,dc=example,dc=org', name: 'ops' },
        { externalId: 'cn=ops,ou=b,dc=example,dc=org', name: 'ops' },
      ])),
    ];
    await meta.groups.setUserGroups((await meta.users.find(DEV))!.id, [ci!.id]);
    await meta.close();
    await admin(['project', 'create', 'squad']);

    const added = await admin(['project', 'member', 'add', 'squad', '--group', 'ci', '--role', 'developer']);
    assert.equal(added.stdout.trim(), `added group "ci" (oidc, id ${ci!.id}) to project "squad" as developer`);
    const seen = await dev.json<{ permissions: string[] }>(['project', 'show', 'squad']);
    assert.ok(seen.permissions.includes('repository.push'), `a role through the group: ${JSON.stringify(seen.permissions)}`);
    const ambiguous = await admin(['project', 'member', 'add', 'squad', '--group', 'ops', '--role', 'guest'], { fails: true });
    assert.match(ambiguous.stderr, /^berth: 409 CONFLICT: several groups are named "ops": .*cn=ops,ou=a,dc=example,dc=org.*cn=ops,ou=b,dc=example,dc=org/m);
    for (const dn of ['cn=ops,ou=a,dc=example,dc=org', 'cn=ops,ou=b,dc=example,dc=org']) await admin(['project', 'member', 'add', 'squad', '--group', dn, '--role', 'guest']);
    const neither = await admin(['project', 'member', 'add', 'squad', '--role', 'guest'], { fails: true });
    assert.match(neither.stderr, /^berth: name a user, or a group with --group/m);

    const table = rows((await admin(['project', 'member', 'list', 'squad'])).stdout);
    assert.deepEqual(table, [
      ['KIND', 'NAME', 'ROLE', 'GROUP ID', 'SOURCE', 'ADDED'],
      ['user', 'admin', 'projectAdmin', '-', '-', table[1]![5]!],
      ['group', 'ci', 'developer', String(ci!.id), 'oidc', table[2]![5]!],
      ['group', 'ops', 'guest', String(opsA!.id), 'ldap', table[3]![5]!],
      ['group', 'ops', 'guest', String(opsB!.id), 'ldap', table[4]![5]!],
    ]);
    const json = await admin.json<{ kind: string; name: string; group?: { id: number; externalId: string } }[]>(['project', 'member', 'list', 'squad']);
    assert.deepEqual(json.filter((m) => m.kind === 'group').map((m) => m.group!.externalId), ['ci', 'cn=ops,ou=a,dc=example,dc=org', 'cn=ops,ou=b,dc=example,dc=org']);

    const updated = await admin(['project', 'member', 'update', 'squad', '--group', 'ci', '--role', 'maintainer']);
    assert.equal(updated.stdout.trim(), `group "ci" (oidc, id ${ci!.id}) is now maintainer in project "squad"`);
    const which = await admin(['project', 'member', 'remove', 'squad', '--group', 'ops'], { fails: true });
    assert.match(which.stderr, new RegExp(`several group members of project "squad" are named "ops"; give the id with --group:\n  id ${opsA!.id}: ldap cn=ops,ou=a`));
    await admin(['project', 'member', 'remove', 'squad', '--group', String(opsA!.id)]);
    await admin(['project', 'member', 'remove', 'squad', '--group', 'cn=ops,ou=b,dc=example,dc=org']);
    const gone = await admin(['project', 'member', 'remove', 'squad', '--group', 'ops'], { fails: true });
    assert.match(gone.stderr, /^berth: no group named "ops" is a member of project "squad"/m);

    const groups = rows((await admin(['group', 'list'])).stdout);
    assert.deepEqual(groups, [
      ['ID', 'NAME', 'SOURCE', 'MEMBERS', 'EXTERNAL ID'],
      [String(ci!.id), 'ci', 'oidc', '1', 'ci'],
      [String(opsA!.id), 'ops', 'ldap', '0', 'cn=ops,ou=a,dc=example,dc=org'],
      [String(opsB!.id), 'ops', 'ldap', '0', 'cn=ops,ou=b,dc=example,dc=org'],
    ]);
    assert.deepEqual((await admin.json<{ id: number }[]>(['group', 'list', '--source', 'ldap', '-q', 'op'])).map((g) => g.id), [opsA!.id, opsB!.id]);
    const show = (await admin(['group', 'show', String(ci!.id)])).stdout;
    assert.match(show, /^Name:\s+ci$/m);
    assert.match(show, /^squad\s+maintainer\s/m);
    assert.match(show, new RegExp(`^${DEV}\\s+-\\s+never$`, 'm'));
    const detail = await admin.json<{ memberCount: number; projects: { project: string; role: string }[] }>(['group', 'show', String(ci!.id)]);
    assert.deepEqual([detail.memberCount, detail.projects.map((p) => [p.project, p.role])], [1, [['squad', 'maintainer']]]);
    const bad = await admin(['group', 'show', 'ci'], { fails: true });
    assert.match(bad.stderr, /^berth: id: the group id, a number/m);
    const denied = await dev(['group', 'list'], { fails: true });
    assert.match(denied.stderr, /^berth: 403 DENIED: /m);
    await admin(['project', 'delete', 'squad']);
  });

  test('logout revokes the stored token and removes the login', async () => {
    const login = (JSON.parse(await readFile(adminFile, 'utf8')) as { logins: { token: string; tokenName: string }[] }).logins[0]!;
    const out = await admin(['logout']);
    assert.equal(out.stdout.trim(), `logged out of ${berth.url} (admin); token "${login.tokenName}" revoked`);
    assert.equal(await whoamiStatus('admin', login.token), 401, 'the revoked token no longer works');
    const stored = JSON.parse(await readFile(adminFile, 'utf8')) as { logins: unknown[] };
    assert.deepEqual(stored.logins, []);
    const after = await admin(['project', 'list'], { fails: true });
    assert.match(after.stderr, /^berth: not logged in/m);
    const devLogout = await dev.json<{ revoked: boolean }>(['logout']);
    assert.equal(devLogout.revoked, true);
    await rm(path.join(home, 'dev-config'), { recursive: true, force: true });
  });
});
