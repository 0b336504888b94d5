// Proxy-cache projects (issue 15) as real clients meet them, once each (the slow part; SQLite + fs
// only): docker pulls PROJECT/repo:tag, skopeo copies from Berth, ctr pulls docker.io/library/NAME
// through a hosts.toml mirror, and a dockerd started with --registry-mirror pulls NAME:TAG. The
// upstreams are CNCF Distribution and a second Berth acting as Docker Hub (a `dockerhub` endpoint);
// there is no internet here, so these pulls can only succeed through Berth.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { berthCli } from '../support/cli.ts';
import { digestOf } from '../support/oci.ts';
import { Session, verifyPulledImage } from '../support/client-common.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { type RandomImage, createRandomImage } from '../support/images.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { type RunResult, cleanEnv, run } from '../support/run.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, tmpDir } from '../support/system.ts';
import { FaultProxy, startDistributionUpstream, type DistributionUpstream } from '../support/upstream.ts';

const KEEP = process.env['BERTH_E2E_KEEP'] === '1';
const LAYER_SIZES = [200_000, 2_000];

describe('proxy-cache projects with real clients', { timeout: 10 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let failed = false;
  let berth: TestServer;
  let hubBerth: TestServer;
  let hubProxy: FaultProxy;
  let up: DistributionUpstream;
  let dockerd: Dockerd;
  let workDir: string;
  let port: string;
  /** Berth's log lines (one per request: method, path, query, status, userAgent). */
  const logs: Record<string, unknown>[] = [];
  /** The requests Berth answered for `path` (a prefix), as `METHOD path?query status userAgent`. */
  const requestsTo = (prefix: string): string[] =>
    logs.filter((l) => typeof l.path === 'string' && l.path.startsWith(prefix)).map((l) => `${l.method} ${l.path}${l.query ? `?${l.query}` : ''} ${l.status} ${l.userAgent}`);
  /** Images in the upstreams, by name, with the manifest digest their push reported. */
  const images = new Map<string, { image: RandomImage; digest: string }>();

  const docker = (args: string[], allowFailure = false): Promise<RunResult> =>
    run('docker', args, { env: cleanEnv({ ...dockerd.env }), timeoutMs: 180_000, allowFailure, redact: [ADMIN_PASSWORD] });
  function skopeoSession(): Session {
    return new Session('skopeo', { env: cleanEnv({ CONTAINERS_REGISTRIES_CONF: path.join(workDir, 'registries.conf'), REGISTRY_AUTH_FILE: path.join(workDir, 'auth.json') }), redact: [ADMIN_PASSWORD, up.registry.password] });
  }
  /** Makes a random image and copies it with skopeo to `host/repository:tag` of an upstream. */
  async function seed(name: string, destination: string, creds: string): Promise<void> {
    const image = await createRandomImage({ layerSizes: LAYER_SIZES });
    scratch.push(image.dir);
    const digestFile = path.join(workDir, `${name}.digest`);
    await skopeoSession().run('skopeo', ['--insecure-policy', 'copy', '--dest-creds', creds, '--dest-tls-verify=false', '--digestfile', digestFile, `docker-archive:${image.archivePath}`, `docker://${destination}`]);
    images.set(name, { image, digest: (await readFile(digestFile, 'utf8')).trim() });
  }
  /** Checks an image docker pulled: its ID is the config digest and its layers the diff_ids. */
  async function assertDockerHas(reference: string, image: RandomImage): Promise<void> {
    const info = JSON.parse((await docker(['image', 'inspect', '--format', '{{json .}}', reference])).stdout) as { Id?: string; RootFS?: { Layers?: string[] } };
    assert.equal(info.Id, image.configDigest, `${reference}: image ID`);
    assert.deepEqual(info.RootFS?.Layers, image.diffIds, `${reference}: layers`);
  }

  before(
    async () => {
      failed = true;
      if (process.getuid?.() !== 0) throw new Error('the proxy-cache client suite must run as root: it runs dockerd');
      await ensurePackages([
        { binary: 'dockerd', pkg: 'docker.io' },
        { binary: 'ctr', pkg: 'containerd' },
        { binary: 'skopeo', pkg: 'skopeo' },
      ]);
      workDir = await tmpDir('berth-proxy-clients');
      scratch.push(workDir);
      await writeFile(path.join(workDir, 'registries.conf'), '');
      up = await startDistributionUpstream(registry);
      hubBerth = await startTestServer();
      registry.defer('hub berth', () => hubBerth.close());
      hubProxy = await FaultProxy.start(hubBerth.url, registry);
      berth = await startTestServer({ proxy: { mirrors: { 'docker.io': 'hub' } } }, undefined, logs);
      registry.defer('berth', () => berth.close());
      port = new URL(berth.url).port;
      // Set up as an administrator would: the CLI.
      const cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(workDir, 'cli.json') }, cwd: workDir, secrets: () => [ADMIN_PASSWORD, up.registry.password] });
      await cli(['login', berth.url, '-u', 'admin', '--password-stdin'], { input: `${ADMIN_PASSWORD}\n` });
      await cli(['registry', 'add', 'dist', '--type', 'distribution', '--url', up.proxy.url, '--username', up.registry.username, '--password-stdin', '--test'], { input: `${up.registry.password}\n` });
      await cli(['registry', 'add', 'hubreg', '--type', 'dockerhub', '--url', hubProxy.url, '--username', 'admin', '--password-stdin', '--test'], { input: `${ADMIN_PASSWORD}\n` });
      await cli(['project', 'create', 'dist', '--proxy-cache', 'dist', '--freshness', '10s']);
      await cli(['project', 'create', 'hub', '--public', '--proxy-cache', 'hubreg']);
      const shown = await cli.json<{ proxyCache: { registry: string; freshness: number } | null }>(['project', 'show', 'dist']);
      assert.deepEqual(shown.proxyCache, { registry: 'dist', freshness: 10 });

      const upHost = new URL(up.registry.url).host;
      const hubHost = new URL(hubBerth.url).host;
      await seed('docker', `${upHost}/team/by-docker:v1`, `${up.registry.username}:${up.registry.password}`);
      await seed('skopeo', `${upHost}/team/by-skopeo:v1`, `${up.registry.username}:${up.registry.password}`);
      await seed('ctr', `${hubHost}/library/by-ctr:v1`, `admin:${ADMIN_PASSWORD}`);
      await seed('mirror', `${hubHost}/library/by-mirror:v1`, `admin:${ADMIN_PASSWORD}`);

      dockerd = await startDockerd({ registry, keepDir: KEEP, extraArgs: [`--registry-mirror=http://127.0.0.1:${port}`] });
      failed = false;
    },
    { timeout: 5 * 60_000 },
  );

  after(() => registry.stopAllAndClean(scratch, KEEP || failed), { timeout: 3 * 60_000 });

  test('docker pull localhost:PORT/dist/team/by-docker:v1 fetches through the proxy-cache project', { timeout: 3 * 60_000 }, async () => {
    const { image } = images.get('docker')!;
    const reference = `localhost:${port}/dist/team/by-docker:v1`;
    await run('docker', ['login', '-u', 'admin', '--password-stdin', `localhost:${port}`], { env: cleanEnv({ ...dockerd.env }), input: `${ADMIN_PASSWORD}\n`, timeoutMs: 60_000, redact: [ADMIN_PASSWORD] });
    await docker(['pull', reference]);
    await assertDockerHas(reference, image);
    assert.ok(up.proxy.requestsFor('team/by-docker', { kind: 'blob', method: 'GET' }).length >= 2, `fetched from the upstream:\n${up.proxy.describe()}`);
  });

  test('skopeo copy docker://localhost:PORT/dist/team/by-skopeo:v1 dir: gets the upstream image', { timeout: 3 * 60_000 }, async () => {
    const { image, digest } = images.get('skopeo')!;
    const session = skopeoSession();
    const pulled = path.join(workDir, 'skopeo-pulled');
    await session.run('skopeo', ['--insecure-policy', 'copy', '--src-creds', `admin:${ADMIN_PASSWORD}`, '--src-tls-verify=false', `docker://localhost:${port}/dist/team/by-skopeo:v1`, `dir:${pulled}`]);
    const manifest = await readFile(path.join(pulled, 'manifest.json'));
    await verifyPulledImage(session, image, manifest, (d) => readFile(path.join(pulled, d.replace(/^sha256:/, ''))));
    assert.equal(digestOf(manifest), digest, 'the manifest bytes the upstream holds');
  });

  test('ctr pulls docker.io/library/by-ctr:v1 through a hosts.toml mirror (?ns=docker.io → project hub)', { timeout: 3 * 60_000 }, async () => {
    const { image, digest } = images.get('ctr')!;
    const hostsDir = path.join(workDir, 'certs.d');
    await mkdir(path.join(hostsDir, 'docker.io'), { recursive: true });
    await writeFile(path.join(hostsDir, 'docker.io', 'hosts.toml'), ['server = "https://registry-1.docker.io"', '', `[host."http://127.0.0.1:${port}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'));
    const session = new Session('ctr', {});
    const ctr = ['-a', dockerd.containerdSocket, '-n', 'proxy-e2e'];
    const reference = 'docker.io/library/by-ctr:v1';
    await session.run('ctr', [...ctr, 'images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', reference]);
    const listed = (await session.run('ctr', [...ctr, 'images', 'ls'])).stdout;
    const line = listed.split('\n').find((l) => l.startsWith(`${reference} `));
    assert.ok(line?.includes(digest), `ctr lists ${reference} at ${digest}:\n${listed}`);
    const readBlob = async (d: string): Promise<Buffer> => (await session.run('ctr', [...ctr, 'content', 'get', d])).stdoutBytes;
    await verifyPulledImage(session, image, await readBlob(digest), readBlob);
    assert.ok(hubProxy.requestsFor('library/by-ctr', { kind: 'manifest' }).length >= 1, `the hub upstream was asked for library/by-ctr:\n${hubProxy.describe()}`);
    // What containerd sent: the name without a project, and ?ns=docker.io.
    const seen = requestsTo('/v2/library/by-ctr/');
    assert.ok(seen.length > 0 && seen.every((r) => r.includes('ns=docker.io') && /containerd/.test(r)), `containerd's requests carry ns=docker.io:\n${seen.join('\n')}`);
  });

  test('dockerd with --registry-mirror pulls by-mirror:v1 (docker.io/library/by-mirror) from project hub', { timeout: 3 * 60_000 }, async () => {
    const { image } = images.get('mirror')!;
    await docker(['pull', 'by-mirror:v1']);
    await assertDockerHas('by-mirror:v1', image);
    assert.ok(hubProxy.requestsFor('library/by-mirror', { kind: 'blob', method: 'GET' }).length >= 2, `the hub upstream served the layers:\n${hubProxy.describe()}`);
    // What dockerd sent its mirror: library/NAME, no project, no ns.
    const seen = requestsTo('/v2/library/by-mirror/manifests/');
    assert.ok(seen.some((r) => / 200 /.test(r) && /docker\//.test(r) && !r.includes('ns=')), `dockerd asked the mirror for library/by-mirror:\n${seen.join('\n')}`);
  });
});
