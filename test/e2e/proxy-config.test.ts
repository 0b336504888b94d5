// Proof that `berth proxy-config` output works: the real CLI writes an nginx and an haproxy
// configuration, each runs as a private instance with TLS on <test domain>:443, Berth runs with the
// externalURL/trustedProxies the output names, and real clients (skopeo; ctr, the client that drops
// credentials on any Host mismatch) push a fresh image with a layer over 1 MiB and pull it back.
import assert from 'node:assert/strict';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, REPO_ROOT, startBerth } from '../support/berth.ts';
import { type RegistryTarget, pushPullCtr, pushPullSkopeo } from '../support/clients.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { addHostsEntry, randomLoopbackIp } from '../support/hosts.ts';
import { type RandomImage, createRandomImage } from '../support/images.ts';
import { startGeneratedNginx } from '../support/nginx.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { run } from '../support/run.ts';
import { E2E_PACKAGES, ensurePackages, freePort, tmpDir, waitForTcp } from '../support/system.ts';
import { type TlsMaterial, createTlsMaterial } from '../support/tls.ts';

/** One layer over 1 MiB: nginx's default client_max_body_size (1m) would refuse it with 413. */
const LAYER_SIZES = [1_700_000, 30_000];
const KEEP = process.env['BERTH_E2E_KEEP'] === '1';

type Proxy = 'nginx' | 'haproxy';

/** A proxy started from generated configuration, with the Berth configured as the output says. */
interface Setup {
  readonly domain: string;
  readonly berth: BerthServer;
  /** Where to look when a push fails. */
  readonly logs: readonly string[];
}

/** Runs `node bin/berth.js proxy-config …` (the real CLI) and returns what it printed. */
async function generate(kind: Proxy, args: readonly string[]): Promise<string> {
  const result = await run(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), 'proxy-config', kind, ...args], {
    cwd: REPO_ROOT,
    timeoutMs: 60_000,
  });
  return result.stdout;
}

/** The Berth settings the generated file ends with (`externalURL: …`, `trustedProxies: […]`). */
function berthSettings(config: string): { externalUrl: string; trustedProxies: string[] } {
  const external = /^#\s+externalURL: (\S+)/m.exec(config)?.[1];
  const trusted = /^#\s+trustedProxies: (\[[^\]]*\])/m.exec(config)?.[1];
  assert.ok(external && trusted, `generated config does not end with the Berth settings:\n${config}`);
  return { externalUrl: external, trustedProxies: JSON.parse(trusted) as string[] };
}

describe('berth proxy-config output carries real pushes', { timeout: 15 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  const setups = new Map<Proxy, Setup>();
  let failed = false;
  let tls: TlsMaterial;
  let dockerd: Dockerd;

  /** Berth on a free port, started with the settings the generated config names. */
  async function berthFor(config: string, port: number): Promise<BerthServer> {
    const { externalUrl, trustedProxies } = berthSettings(config);
    const berth = await startBerth({ port, externalUrl, env: { BERTH_TRUSTED_PROXIES: trustedProxies.join(',') }, registry });
    scratch.push(berth.dataDir, path.dirname(berth.logFile));
    return berth;
  }

  async function startNginxSetup(domain: string, ip: string): Promise<Setup> {
    const port = await freePort();
    const config = await generate('nginx', [
      '--external-url', `https://${domain}`, '--upstream', `http://127.0.0.1:${port}`,
      '--tls-cert', tls.serverCert, '--tls-key', tls.serverKey, '--listen', `${ip}:443`,
    ]);
    const berth = await berthFor(config, port);
    const prefix = await tmpDir('berth-pc-nginx');
    scratch.push(prefix);
    const { logs } = await startGeneratedNginx({
      prefix,
      config,
      ip,
      port: 443,
      registry,
      name: 'nginx',
      logFormat: '$remote_addr "$request" $status host="$http_host" location="$sent_http_location" bytes_in=$request_length',
    });
    return { domain, berth, logs };
  }

  async function startHaproxySetup(domain: string, ip: string): Promise<Setup> {
    const port = await freePort();
    const dir = await tmpDir('berth-pc-haproxy');
    scratch.push(dir);
    // HAProxy reads the key beside the certificate as <cert>.key (the generated file says so).
    const cert = path.join(dir, 'server.pem');
    await copyFile(tls.serverCert, cert);
    await copyFile(tls.serverKey, `${cert}.key`);
    const config = await generate('haproxy', [
      '--external-url', `https://${domain}`, '--upstream', `http://127.0.0.1:${port}`,
      '--tls-cert', cert, '--tls-key', `${cert}.key`, '--listen', `${ip}:443`,
    ]);
    const berth = await berthFor(config, port);
    const cfg = path.join(dir, 'haproxy.cfg');
    await writeFile(cfg, config);
    await run('haproxy', ['-c', '-f', cfg], { timeoutMs: 30_000 });
    // -db: stay in the foreground as our child, so it is stopped by its pid.
    const logFile = path.join(dir, 'haproxy.log');
    const child = await registry.start({ name: 'haproxy', command: 'haproxy', args: ['-db', '-f', cfg], logFile });
    await waitForTcp(ip, 443, { timeoutMs: 15_000, abortIf: () => child.exitDescription() });
    return { domain, berth, logs: [logFile] };
  }

  before(
    async () => {
      failed = true; // until setup completes: keep the scratch dirs for a look
      if (process.getuid?.() !== 0) {
        throw new Error('this e2e suite must run as root: it edits /etc/hosts, runs dockerd and binds port 443');
      }
      await ensurePackages([...E2E_PACKAGES, { binary: 'haproxy', pkg: 'haproxy' }]);
      const domains: Record<Proxy, string> = { nginx: 'berth-pc-nginx.test', haproxy: 'berth-pc-haproxy.test' };
      tls = await createTlsMaterial({ dnsNames: Object.values(domains) });
      scratch.push(tls.dir);
      for (const kind of ['nginx', 'haproxy'] as const) {
        const hosts = await addHostsEntry(randomLoopbackIp(), domains[kind]);
        registry.defer(`hosts entry ${domains[kind]}`, () => hosts.remove());
        setups.set(kind, kind === 'nginx' ? await startNginxSetup(domains[kind], hosts.ip) : await startHaproxySetup(domains[kind], hosts.ip));
      }
      dockerd = await startDockerd({ registry, keepDir: KEEP });
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

  async function pushPull(kind: Proxy, client: 'skopeo' | 'ctr'): Promise<void> {
    const setup = setups.get(kind);
    assert.ok(setup, `${kind} was not set up`);
    let image: RandomImage | undefined;
    try {
      image = await createRandomImage({ layerSizes: LAYER_SIZES });
      const target: RegistryTarget = {
        registryHost: setup.domain,
        username: 'admin',
        password: setup.berth.adminPassword,
        repository: `proxy-config/${kind}-${client}`,
        tag: `t${Date.now()}`,
        tls: { caFile: tls.caCert },
      };
      const done =
        client === 'skopeo'
          ? await pushPullSkopeo(target, image)
          : await pushPullCtr(target, image, { containerdSocket: dockerd.containerdSocket });
      assert.match(done.manifestDigest, /^sha256:[0-9a-f]{64}$/);
      // The big layer really went through the proxy: the proxy logged the upload and Berth saw the
      // Host exactly as the client sent it (no port added).
      const proxyLog = await readFile(setup.logs[0]!, 'utf8');
      assert.match(proxyLog, new RegExp(`(PATCH|PUT) /v2/proxy-config/${kind}-${client}/blobs/uploads/`), `${kind} did not log the upload`);
      const berthLog = await readFile(setup.berth.logFile, 'utf8');
      assert.match(berthLog, new RegExp(`"host":"${setup.domain.replace(/\./g, '\\.')}"`), 'Berth did not see Host as the client sent it');
      assert.doesNotMatch(berthLog, new RegExp(`"host":"${setup.domain.replace(/\./g, '\\.')}:443"`));
    } catch (error) {
      failed = true;
      const logs = [`--- berth log (${setup.berth.logFile}) ---\n${await tailFile(setup.berth.logFile, 40)}`];
      for (const log of setup.logs) logs.push(`--- ${kind} log (${log}) ---\n${await tailFile(log, 30)}`);
      throw new Error(`${client} via ${kind} failed: ${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    } finally {
      if (image) await rm(image.dir, { recursive: true, force: true });
    }
  }

  for (const kind of ['nginx', 'haproxy'] as const) {
    for (const client of ['skopeo', 'ctr'] as const) {
      test(`${client} pushes (layer > 1 MiB) and pulls through generated ${kind} config`, { timeout: 5 * 60_000 }, () => pushPull(kind, client));
    }
  }
});
