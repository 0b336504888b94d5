// docker, ctr and skopeo push and pull fresh images through Berth: directly over plain HTTP, and
// behind nginx with TLS on :443 and `proxy_set_header Host $host:$server_port` (PROXIES.md M2),
// the setup in which containerd drops its credentials with other registries.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { type ClientRun, type RegistryTarget, pushPullCtr, pushPullDocker, pushPullSkopeo } from '../support/clients.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { addHostsEntry, randomLoopbackIp } from '../support/hosts.ts';
import { type RandomImage, createRandomImage } from '../support/images.ts';
import { HOST_WITH_PORT_DIRECTIVES, type NginxInstance, startNginx } from '../support/nginx.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { E2E_PACKAGES, ensurePackages, freePort } from '../support/system.ts';
import { type TlsMaterial, createTlsMaterial } from '../support/tls.ts';

const DOMAIN = 'berth-e2e.test';
/** One layer over 1 MiB (several upload chunks for some clients), two small ones. */
const LAYER_SIZES = [1_600_000, 48_000, 700];
const KEEP = process.env['BERTH_E2E_KEEP'] === '1';

type Client = 'docker' | 'ctr' | 'skopeo';
type Topology = 'direct' | 'nginx';

describe('real clients against Berth', { timeout: 15 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let failed = false;
  let berth: BerthServer;
  let dockerd: Dockerd;
  let tls: TlsMaterial;
  let nginx: NginxInstance;

  before(
    async () => {
      failed = true; // until setup completes: keep the scratch dirs for a look
      if (process.getuid?.() !== 0) {
        throw new Error('the client e2e suite must run as root: it edits /etc/hosts, runs dockerd and binds port 443');
      }
      await ensurePackages(E2E_PACKAGES);
      const hosts = await addHostsEntry(randomLoopbackIp(), DOMAIN);
      registry.defer('hosts entry', () => hosts.remove());
      tls = await createTlsMaterial({ dnsNames: [DOMAIN] });
      scratch.push(tls.dir);
      const port = await freePort();
      // The realm follows the Host the client used: the proxy's name, or localhost for direct clients.
      berth = await startBerth({ port, externalUrl: [`https://${DOMAIN}`, `http://localhost:${port}`], registry });
      scratch.push(berth.dataDir, path.dirname(berth.logFile));
      nginx = await startNginx({
        listenIp: hosts.ip,
        listenPort: 443,
        serverName: DOMAIN,
        tls,
        upstream: berth.url,
        locationDirectives: HOST_WITH_PORT_DIRECTIVES,
        registry,
      });
      scratch.push(nginx.prefix);
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

  function target(client: Client, topology: Topology): RegistryTarget {
    return {
      registryHost: topology === 'direct' ? `localhost:${berth.port}` : DOMAIN,
      username: 'admin',
      password: berth.adminPassword,
      repository: `e2e/${client}-${topology}`,
      tag: `t${Date.now()}`,
      tls: topology === 'direct' ? 'plain' : { caFile: tls.caCert },
    };
  }

  async function pushPull(client: Client, topology: Topology): Promise<void> {
    let image: RandomImage | undefined;
    try {
      image = await createRandomImage({ layerSizes: LAYER_SIZES });
      const to = target(client, topology);
      let done: ClientRun;
      if (client === 'docker') done = await pushPullDocker(to, image, { dockerEnv: dockerd.env });
      else if (client === 'ctr') done = await pushPullCtr(to, image, { containerdSocket: dockerd.containerdSocket });
      else done = await pushPullSkopeo(to, image);
      assert.match(done.manifestDigest, /^sha256:[0-9a-f]{64}$/);
    } catch (error) {
      failed = true;
      const logs = [`--- berth log (${berth.logFile}) ---\n${await tailFile(berth.logFile, 60)}`];
      if (topology === 'nginx') logs.push(`--- nginx access log (${nginx.accessLog}) ---\n${await tailFile(nginx.accessLog, 40)}`);
      throw new Error(`${client} via ${topology} failed: ${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    } finally {
      if (image) await rm(image.dir, { recursive: true, force: true });
    }
  }

  for (const topology of ['direct', 'nginx'] as const) {
    const how =
      topology === 'direct'
        ? 'over plain HTTP to localhost:<port>'
        : `through nginx, TLS on ${DOMAIN}:443, Host $host:$server_port`;
    for (const client of ['docker', 'ctr', 'skopeo'] as const) {
      test(`${client} pushes and pulls a fresh image ${how}`, { timeout: 6 * 60_000 }, () => pushPull(client, topology));
    }
  }
});
