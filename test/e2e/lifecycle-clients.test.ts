// Storage lifecycle features as real clients meet them: one Berth and one dockerd shared by every
// case (add retention, GC… cases as sections below). Tag immutability: pushing the same image to an
// immutable tag again succeeds — CI re-runs must not fail — and another image to it fails with the
// rule named in the client's output; with docker and with skopeo.
import assert from 'node:assert/strict';
import { rm, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { type Cli, berthCli, tableRows } from '../support/cli.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { type RandomImage, createRandomImage } from '../support/images.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { type RunResult, cleanEnv, run } from '../support/run.ts';
import { ensurePackages, tmpDir } from '../support/system.ts';

const KEEP = process.env['BERTH_E2E_KEEP'] === '1';
const LAYER_SIZES = [300_000, 2_000];

describe('lifecycle features with real clients', { timeout: 15 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let failed = false;
  let berth: BerthServer;
  let dockerd: Dockerd;
  let host: string;
  let workDir: string;
  /** The `berth` command, logged in as admin. */
  let cli: Cli;

  // ---- shared helpers ----

  const adminAuth = () => `Basic ${Buffer.from(`admin:${berth.adminPassword}`).toString('base64')}`;
  async function callApi<T>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const res = await fetch(`${berth.url}/api/v1${apiPath}`, {
      method,
      headers: { Authorization: adminAuth(), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${apiPath}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
  /** The digest a tag points at, as the registry answers. */
  async function tagDigest(repository: string, tag: string): Promise<string | null> {
    const accept = ['application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json'].join(', ');
    const res = await fetch(`${berth.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { Authorization: adminAuth(), Accept: accept } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  }
  const docker = (args: string[], allowFailure = false): Promise<RunResult> =>
    run('docker', args, { env: cleanEnv({ ...dockerd.env }), timeoutMs: 180_000, allowFailure, redact: [berth.adminPassword] });
  const skopeo = async (args: string[], allowFailure = false): Promise<RunResult> => {
    const conf = path.join(workDir, 'registries.conf');
    await writeFile(conf, '');
    return run('skopeo', ['--insecure-policy', ...args], {
      env: cleanEnv({ CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: path.join(workDir, 'auth.json') }),
      timeoutMs: 180_000,
      allowFailure,
      redact: [berth.adminPassword],
    });
  };
  async function image(): Promise<RandomImage> {
    const made = await createRandomImage({ layerSizes: LAYER_SIZES });
    scratch.push(made.dir);
    return made;
  }
  /** Runs a case; on failure keeps the scratch dirs and adds Berth's log to the error. */
  async function withLog(what: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      failed = true;
      throw new Error(`${what}: ${(error as Error).message}\n--- berth log (${berth.logFile}) ---\n${await tailFile(berth.logFile, 40)}`, { cause: error });
    }
  }

  before(
    async () => {
      failed = true; // until setup completes
      if (process.getuid?.() !== 0) throw new Error('the lifecycle client suite must run as root: it runs dockerd');
      await ensurePackages([
        { binary: 'dockerd', pkg: 'docker.io' },
        { binary: 'docker', pkg: 'docker.io' },
        { binary: 'skopeo', pkg: 'skopeo' },
      ]);
      berth = await startBerth({ registry });
      scratch.push(berth.dataDir, path.dirname(berth.logFile));
      // Docker speaks plain HTTP to localhost without being told.
      host = `localhost:${berth.port}`;
      dockerd = await startDockerd({ registry, keepDir: KEEP });
      workDir = await tmpDir('berth-lifecycle-clients');
      scratch.push(workDir);
      cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(workDir, 'cli.json') }, cwd: workDir, secrets: () => [berth.adminPassword] });
      await cli(['login', berth.url, '-u', 'admin', '--password-stdin'], { input: `${berth.adminPassword}\n` });
      // The password goes on stdin, never on the command line.
      await run('docker', ['login', '-u', 'admin', '--password-stdin', host], { env: cleanEnv({ ...dockerd.env }), input: `${berth.adminPassword}\n`, timeoutMs: 60_000 });
      failed = false;
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      await registry.stopAllAndClean(scratch, KEEP || failed);
    },
    { timeout: 3 * 60_000 },
  );

  // ---- tag immutability ----

  describe('tag immutability', () => {
    let rule: { id: number };

    before(async () => {
      await callApi('POST', '/projects', { name: 'lifecycle' });
      rule = await cli.json<{ id: number }>(['immutability', 'add', 'lifecycle', '--tag', 'v*']);
    });

    test('docker: the same image pushed again to an immutable tag succeeds; another image fails naming the rule', { timeout: 6 * 60_000 }, () =>
      withLog('docker', async () => {
        const reference = `${host}/lifecycle/docker:v1`;
        const [a, b] = [await image(), await image()];
        await docker(['load', '-i', a.archivePath]);
        await docker(['tag', a.repoTag, reference]);
        const first = await docker(['push', reference]);
        const digest = /digest: (sha256:[0-9a-f]{64})/.exec(first.stdout)?.[1];
        assert.ok(digest, first.stdout);
        const again = await docker(['push', reference]);
        assert.match(again.stdout, new RegExp(`digest: ${digest}`), 'the same digest, accepted again');

        await docker(['load', '-i', b.archivePath]);
        await docker(['tag', b.repoTag, reference]);
        const refused = await docker(['push', reference], true);
        assert.notEqual(refused.code, 0, 'pushing another image to v1 fails');
        const output = `${refused.stdout}\n${refused.stderr}`;
        assert.match(output, /denied/i, output);
        assert.ok(output.includes(`rule ${rule.id}`) && output.includes('"v*"'), `docker shows the rule: ${output}`);
        assert.equal(await tagDigest('lifecycle/docker', 'v1'), digest, 'v1 still points at the first image');
        await docker(['rmi', a.repoTag, b.repoTag, reference], true);
      }),
    );

    test('skopeo: copying the same image again succeeds; another image fails naming the rule', { timeout: 6 * 60_000 }, () =>
      withLog('skopeo', async () => {
        const dest = `docker://${host}/lifecycle/skopeo:v1`;
        const creds = `admin:${berth.adminPassword}`;
        const digestFile = path.join(workDir, 'skopeo.digest');
        const copy = (archive: string, allowFailure = false) =>
          skopeo(['copy', '--dest-creds', creds, '--dest-tls-verify=false', '--digestfile', digestFile, `docker-archive:${archive}`, dest], allowFailure);
        const [a, b] = [await image(), await image()];
        await copy(a.archivePath);
        const digest = (await readFile(digestFile, 'utf8')).trim();
        await rm(digestFile, { force: true });
        await copy(a.archivePath);
        assert.equal((await readFile(digestFile, 'utf8')).trim(), digest, 'the same digest, accepted again');

        const refused = await copy(b.archivePath, true);
        assert.notEqual(refused.code, 0, 'copying another image to v1 fails');
        const output = `${refused.stdout}\n${refused.stderr}`;
        assert.match(output, /denied/i, output);
        assert.ok(output.includes(`rule ${rule.id}`), `skopeo shows the rule: ${output}`);
        assert.equal(await tagDigest('lifecycle/skopeo', 'v1'), digest, 'v1 still points at the first image');
      }),
    );

    test('berth immutability: list, update (disable, enable, patterns), delete; invalid patterns named', () =>
      withLog('cli', async () => {
        await callApi('POST', '/projects', { name: 'lifecycle-cli' });
        const added = await cli.json<{ id: number }>(['immutability', 'add', 'lifecycle-cli', '--repo', 'scratch*', '--repo-exclude', '--tag', '**']);
        const [header, row] = tableRows((await cli(['immutability', 'list', 'lifecycle-cli'])).stdout);
        assert.deepEqual(header!.slice(0, 4), ['ID', 'REPOSITORIES', 'TAGS', 'STATUS']);
        assert.deepEqual(row!.slice(0, 4), [String(added.id), 'except scratch*', '**', 'enabled']);
        const disabled = await cli.json<{ disabled: boolean }>(['immutability', 'update', 'lifecycle-cli', String(added.id), '--disable']);
        assert.equal(disabled.disabled, true);
        const changed = await cli(['immutability', 'update', 'lifecycle-cli', String(added.id), '--enable', '--tag', 'v*']);
        assert.match(changed.stdout, new RegExp(`updated rule ${added.id}: repositories except scratch\\*, tags v\\*`));
        const refused = await cli(['immutability', 'add', 'lifecycle-cli', '--tag', '{a,{b}}'], { fails: true });
        assert.match(refused.stderr, /400 INVALID: .*tags\.pattern: must not nest/);
        await cli(['immutability', 'delete', 'lifecycle-cli', String(added.id)]);
        assert.deepEqual(await cli.json<unknown[]>(['immutability', 'list', 'lifecycle-cli']), []);
      }),
    );
  });

  // ---- tag retention, then garbage collection ----

  describe('tag retention and garbage collection', () => {
    interface Item {
      repository: string;
      digest: string;
      outcome: string;
      tags: string[];
      basis: string | null;
      rule: number | null;
    }
    const decisions = (items: Item[]) => Object.fromEntries(items.map((i) => [i.tags.join(','), `${i.outcome}:${i.basis}:${i.rule}`]));
    const pushed: Record<string, string> = {};

    before(async () => {
      await callApi('POST', '/projects', { name: 'keep' });
      // Pushed in this order (v1, v2 with docker; dev1 with skopeo): v2 is the most recently pushed v*.
      for (const tag of ['v1', 'v2']) {
        const made = await image();
        const reference = `${host}/keep/app:${tag}`;
        await docker(['load', '-i', made.archivePath]);
        await docker(['tag', made.repoTag, reference]);
        const out = await docker(['push', reference]);
        pushed[tag] = /digest: (sha256:[0-9a-f]{64})/.exec(out.stdout)![1]!;
        await docker(['rmi', made.repoTag, reference], true);
      }
      const digestFile = path.join(workDir, 'dev1.digest');
      await skopeo(['copy', '--dest-creds', `admin:${berth.adminPassword}`, '--dest-tls-verify=false', '--digestfile', digestFile, `docker-archive:${(await image()).archivePath}`, `docker://${host}/keep/app:dev1`]);
      pushed.dev1 = (await readFile(digestFile, 'utf8')).trim();
    });

    test('berth retention: the dry run shows each artifact kept or deleted with the deciding rule; the real run deletes exactly that; docker and skopeo see it', { timeout: 6 * 60_000 }, () =>
      withLog('retention', async () => {
        await cli(['retention', 'set', 'keep', '--keep-last', '1', '--tag', 'v*']);
        const usageBefore = (await callApi<{ usageBytes: number }>('GET', '/projects/keep')).usageBytes;
        const dry = await cli.json<{ run: { state: string }; items: Item[] }>(['retention', 'run', 'keep', '--dry-run', '--wait']);
        assert.equal(dry.run.state, 'succeeded');
        assert.deepEqual(decisions(dry.items), { v2: 'retained:rule:1', v1: 'would-delete:unretained:null', dev1: 'would-delete:unretained:null' });
        for (const tag of ['v1', 'v2', 'dev1']) assert.equal(await tagDigest('keep/app', tag), pushed[tag], `${tag} still there after the dry run`);
        // The table a user reads.
        const table = (await cli(['retention', 'run', 'keep', '--dry-run', '--wait'])).stdout;
        assert.match(table, /kept +keep\/app .* v2 +rule 1: retain the 1 most recently pushed/);
        assert.match(table, /would delete +keep\/app .* v1 +no rule retains it/);

        const real = await cli.json<{ run: { state: string }; items: Item[] }>(['retention', 'run', 'keep', '--wait']);
        assert.equal(real.run.state, 'succeeded');
        assert.deepEqual(decisions(real.items), { v2: 'retained:rule:1', v1: 'deleted:unretained:null', dev1: 'deleted:unretained:null' }, 'the real run did what the dry run showed');
        assert.deepEqual(real.items.map((i) => i.digest).sort(), dry.items.map((i) => i.digest).sort());

        const gone = await docker(['pull', `${host}/keep/app:v1`], true);
        assert.notEqual(gone.code, 0);
        assert.match(`${gone.stdout}\n${gone.stderr}`, /manifest unknown|not found/i);
        await docker(['pull', `${host}/keep/app:v2`]);
        const inspect = await skopeo(['inspect', '--creds', `admin:${berth.adminPassword}`, '--tls-verify=false', `docker://${host}/keep/app:dev1`], true);
        assert.notEqual(inspect.code, 0, 'skopeo no longer finds dev1');
        const usageAfter = (await callApi<{ usageBytes: number }>('GET', '/projects/keep')).usageBytes;
        assert.ok(usageAfter < usageBefore, `usage fell with the deleted artifacts (${usageBefore} → ${usageAfter})`);
      }),
    );

    test('berth gc run --dry-run --wait: the freed content is named as inside the grace period, with when it becomes collectable', { timeout: 3 * 60_000 }, () =>
      withLog('gc', async () => {
        const run = await cli.json<{ state: string; dryRun: boolean; figures: { blobsDeleted: number; withinGrace: { blobs: number; bytes: number; collectableAt: string | null } } }>(['gc', 'run', '--dry-run', '--wait']);
        assert.equal(run.state, 'succeeded');
        assert.equal(run.dryRun, true);
        assert.equal(run.figures.blobsDeleted, 0, 'the default grace period (2 h) protects what retention just released');
        assert.ok(run.figures.withinGrace.blobs >= 4, `the deleted images' layers, configs and manifests are inside the grace period: ${JSON.stringify(run.figures.withinGrace)}`);
        assert.ok(run.figures.withinGrace.collectableAt, 'and the user is told when they become collectable');
        const text = (await cli(['gc', 'run', '--dry-run', '--wait'])).stdout;
        assert.match(text, /grace/i, text);
      }),
    );
  });
});
