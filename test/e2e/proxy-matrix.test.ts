// The proxy topology matrix: ONE Berth (one configuration) on an isolated test host (a network
// namespace), reached through nine real nginx topologies (PROXIES.md M1, M2, M5, M6, M7) and
// directly from the "LAN" over plain HTTP. docker, ctr and skopeo push and pull fresh images through
// every survivable topology; through the others one client's push must fail. The reference registry
// (CNCF Distribution) sits behind the same topologies, and its ctr push through the :443-in-Host
// topology must fail: that is the bug Berth removes. Berth's loopback is unreachable from the
// clients, as in a real deployment, so an upload URL naming an internal address cannot pass.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import {
  type ClientRun,
  ClientFailure,
  type ClientTls,
  type RegistryTarget,
  pushPullCtr,
  pushPullDocker,
  pushPullSkopeo,
} from '../support/clients.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { type RandomImage, createRandomImage } from '../support/images.ts';
import { type TestNetns, createTestNetns } from '../support/netns.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { type ReferenceRegistry, startReferenceRegistry } from '../support/reference-registry.ts';
import { stripAnsi } from '../support/run.ts';
import { E2E_PACKAGES, ensurePackages } from '../support/system.ts';
import { type TlsMaterial, createTlsMaterial } from '../support/tls.ts';
import { TOPOLOGIES, type Topology, startTopology, topologyExternalURL, topologyNames } from '../support/topologies.ts';

/** A fresh domain per run, so concurrent runs never share hosts entries or docker certs.d dirs. */
const DOMAIN = `m${randomBytes(3).toString('hex')}.matrix.test`;
/** One layer over 1 MiB (trips nginx's default client_max_body_size), two small ones. */
const LAYER_SIZES = [1_600_000, 48_000, 700];
const BERTH_PORT = 5000;
const REF_PORT = 5001;
const KEEP = process.env['BERTH_E2E_KEEP'] === '1';
const CLIENTS = ['docker', 'ctr', 'skopeo'] as const;
type Client = (typeof CLIENTS)[number];

describe('proxy topology matrix: one Berth behind nine nginx setups and on the LAN', { timeout: 20 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  /** `<topology or lan> × <client>` → 'pass' | 'push fails as expected: …' | 'FAILED: …', printed in after(). */
  const results = new Map<string, string>();
  /** Error text of each expected failure, by `<topology>/<registry>` (input for `berth logs explain`). */
  const expectedFailures = new Map<string, string>();
  let failed = false;
  let netns: TestNetns;
  let tls: TlsMaterial;
  let berth: BerthServer;
  let ref: ReferenceRegistry;
  let dockerd: Dockerd;
  const topologies: Topology[] = [];

  before(
    async () => {
      failed = true; // until setup completes
      if (process.getuid?.() !== 0) {
        throw new Error('the proxy matrix must run as root: it creates a network namespace, edits /etc/hosts and runs dockerd');
      }
      await ensurePackages([
        ...E2E_PACKAGES,
        { binary: 'ip', pkg: 'iproute2' },
        { binary: 'docker-registry', pkg: 'docker-registry' },
        { binary: 'htpasswd', pkg: 'apache2-utils' },
      ]);
      netns = await createTestNetns({ registry });
      const names = TOPOLOGIES.flatMap((spec) => Object.values(topologyNames(spec, DOMAIN)));
      tls = await createTlsMaterial({ dnsNames: [`*.${DOMAIN}`, ...names] });
      scratch.push(tls.dir);
      // One configuration for every way in: each topology's https URL, then the LAN address.
      berth = await startBerth({
        host: '0.0.0.0',
        port: BERTH_PORT,
        urlHost: netns.address,
        netns,
        externalUrl: [...TOPOLOGIES.map((spec) => topologyExternalURL(spec, DOMAIN)), `http://${netns.address}:${BERTH_PORT}`],
        registry,
      });
      scratch.push(berth.dataDir, path.dirname(berth.logFile));
      ref = await startReferenceRegistry({ port: REF_PORT, netns, registry });
      scratch.push(ref.dir);
      const context = {
        netns,
        domain: DOMAIN,
        tls,
        berthUpstream: `http://127.0.0.1:${BERTH_PORT}`,
        refUpstream: `http://127.0.0.1:${REF_PORT}`,
        registry,
      };
      for (const spec of TOPOLOGIES) {
        const topology = await startTopology(spec, context);
        topologies.push(topology);
        scratch.push(...topology.nginx.map((n) => n.prefix));
      }
      // Plain HTTP only to the LAN address (10.a.b.0/30); every topology address must verify TLS.
      dockerd = await startDockerd({ registry, keepDir: KEEP, insecureRegistries: [netns.lanCidr] });
      failed = false;
    },
    { timeout: 10 * 60_000 },
  );

  after(
    async () => {
      const lines = [...results].map(([key, value]) => `  ${key.padEnd(34)} ${value}`);
      console.log(`proxy matrix results (domain ${DOMAIN}, namespace ${netns?.name}):\n${lines.join('\n')}`);
      try {
        await registry.stopAll();
      } finally {
        if (!KEEP && !failed) for (const dir of scratch) await rm(dir, { recursive: true, force: true });
        else if (scratch.length) console.log(`kept for a look: ${scratch.join(' ')}`);
      }
    },
    { timeout: 3 * 60_000 },
  );

  const topology = (id: number): Topology => {
    const found = topologies.find((t) => t.spec.id === id);
    if (!found) throw new Error(`topology ${id} did not start`);
    return found;
  };

  /** Every log that tells what happened, for failure messages (and later for `berth logs explain`). */
  async function logs(through?: Topology, reference = false): Promise<string> {
    const parts = [`--- berth log (${berth.logFile}) ---\n${await tailFile(berth.logFile, 40)}`];
    if (reference) parts.push(`--- reference registry log (${ref.logFile}) ---\n${await tailFile(ref.logFile, 30)}`);
    for (const nginx of through?.nginx ?? []) {
      parts.push(`--- nginx access log (${nginx.accessLog}) ---\n${await tailFile(nginx.accessLog, 30)}`);
      parts.push(`--- nginx error log (${nginx.errorLog}) ---\n${await tailFile(nginx.errorLog, 10)}`);
    }
    return parts.join('\n');
  }

  async function pushPull(client: Client, to: RegistryTarget, timeoutMs?: number): Promise<ClientRun> {
    const image: RandomImage = await createRandomImage({ layerSizes: LAYER_SIZES });
    try {
      const bound = timeoutMs ? { timeoutMs } : {};
      if (client === 'docker') return await pushPullDocker(to, image, { dockerEnv: dockerd.env, ...bound });
      if (client === 'ctr') return await pushPullCtr(to, image, { containerdSocket: dockerd.containerdSocket, ...bound });
      return await pushPullSkopeo(to, image, bound);
    } finally {
      await rm(image.dir, { recursive: true, force: true });
    }
  }

  function berthTarget(client: Client, registryHost: string, tlsMode: ClientTls, where: string): RegistryTarget {
    return {
      registryHost,
      username: 'admin',
      password: berth.adminPassword,
      repository: `matrix/${where}-${client}`,
      tag: `t${Date.now()}`,
      tls: tlsMode,
    };
  }

  /** Runs a push + pull that must succeed; records the outcome. */
  async function mustPass(key: string, client: Client, to: RegistryTarget, through?: Topology, reference = false): Promise<void> {
    try {
      const done = await pushPull(client, to);
      assert.match(done.manifestDigest, /^sha256:[0-9a-f]{64}$/);
      results.set(key, 'pass');
    } catch (error) {
      failed = true;
      results.set(key, `FAILED: ${(error as Error).message.split('\n')[0]}`);
      throw new Error(`${key} failed: ${(error as Error).message}\n${await logs(through, reference)}`, { cause: error });
    }
  }

  /** Access-log lines of every nginx of the topology that match `pattern`. */
  async function accessLogLines(through: Topology, pattern: RegExp): Promise<string[]> {
    const lines: string[] = [];
    for (const nginx of through.nginx) {
      lines.push(...(await readFile(nginx.accessLog, 'utf8').catch(() => '')).split('\n').filter((l) => pattern.test(l)));
    }
    return lines;
  }

  /**
   * Runs a ctr push that must fail AT the push step (import and tag worked, so the setup is sound)
   * and whose cause the proxy's access log must show (`evidence`). ctr reports some failures and
   * hangs on others (a failed upload among concurrent ones), so the push is bounded at 30 s; a
   * hang counts as failing only together with the evidence. Records and returns the error text.
   */
  async function mustFailPush(key: string, to: RegistryTarget, through: Topology, reference: boolean, evidence: RegExp): Promise<string> {
    let failure: ClientFailure | undefined;
    try {
      await pushPull('ctr', to, 30_000);
    } catch (error) {
      if (!(error instanceof ClientFailure)) throw error;
      failure = error;
    }
    if (!failure) {
      failed = true;
      results.set(key, 'FAILED: push succeeded but must fail');
      assert.fail(`${key}: ctr push succeeded, but this topology must break it\n${await logs(through, reference)}`);
    }
    const first = failure.transcript.find((r) => r.code !== 0 || r.timedOut);
    const step = first?.commandLine ?? '(none)';
    if (!first || !/ images push /.test(step)) {
      failed = true;
      results.set(key, `FAILED: failed before the push: ${step}`);
      assert.fail(`${key}: expected the push to fail, but the failing step was ${step}\n${failure.message}`);
    }
    const seen = await accessLogLines(through, evidence);
    if (seen.length === 0) {
      failed = true;
      results.set(key, `FAILED: push failed, but no access-log line matches ${evidence}`);
      assert.fail(`${key}: the push failed, but the proxy log lacks ${evidence}\n${failure.message}\n${await logs(through, reference)}`);
    }
    const said = first.timedOut
      ? 'ctr hung (killed after 30 s)'
      : stripAnsi(first.stderr).trim().split('\n').filter(Boolean).slice(-2).join(' | ');
    // The access-log line without the long query (upload state, digest), which says nothing here.
    const line = (seen[0] ?? '').replace(/\?[^ "]*/, '?…').replace(/sha256:[0-9a-f]{64}/g, 'sha256:…');
    const text = `${said}; proxy log: ${line}`;
    expectedFailures.set(key, text);
    results.set(key, `push fails as expected: ${text}`);
    return text;
  }

  test('the registries listen on the isolated host only: their loopback ports are unreachable from the clients', async () => {
    // Berth is reachable on the LAN address, so it is up; the reference registry listens on the
    // namespace's 127.0.0.1 only and must not answer on the namespace's address from the host.
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: netns.address, port: REF_PORT, timeout: 3_000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve('timeout');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
    const ready = await fetch(`${berth.url}/readyz`);
    assert.equal(ready.status, 200);
  });

  for (const client of CLIENTS) {
    test(`LAN: ${client} pushes and pulls over plain HTTP to the namespace address :${BERTH_PORT}`, { timeout: 5 * 60_000 }, () =>
      mustPass(`lan × ${client}`, client, berthTarget(client, `${netns.address}:${BERTH_PORT}`, 'plain', 'lan')),
    );
  }

  for (const spec of TOPOLOGIES.filter((s) => s.survivable)) {
    for (const client of CLIENTS) {
      test(`t${spec.id} ${spec.slug} (${spec.summary}): ${client} pushes and pulls through Berth`, { timeout: 5 * 60_000 }, () => {
        const t = topology(spec.id);
        return mustPass(`${t.name} × ${client}`, client, berthTarget(client, t.berthHost, t.clientTls, t.name), t);
      });
    }
  }

  for (const spec of TOPOLOGIES.filter((s) => !s.survivable)) {
    test(`t${spec.id} ${spec.slug} (${spec.summary}): ctr push through Berth fails`, { timeout: 4 * 60_000 }, async () => {
      const t = topology(spec.id);
      const evidence = spec.accessLogEvidence;
      assert.ok(evidence, `topology ${spec.id} names no access-log evidence`);
      await mustFailPush(`${t.name} × ctr`, berthTarget('ctr', t.berthHost, t.clientTls, t.name), t, false, evidence);
    });
  }

  // Diagnosis hooks (berth doctor / berth logs explain): for each `t` of `topologies`, doctor runs
  // against t.berthURL and t.refURL (trusting tls.caCert); explain reads berth.logFile,
  // ref.logFile and each t.nginx[i].accessLog / errorLog; `expectedFailures` holds what the client
  // said for t7–t9 and the reference registry through t2. Add those tests here, after the pushes.

  describe('reference registry (CNCF Distribution) behind the same topologies', () => {
    const refTarget = (t: Topology): RegistryTarget => ({
      registryHost: t.refHost,
      username: ref.username,
      password: ref.password,
      repository: `matrix/${t.name}-ctr`,
      tag: `t${Date.now()}`,
      tls: t.clientTls,
    });

    test('control: ctr pushes and pulls through t1 (recommended proxy)', { timeout: 4 * 60_000 }, () => {
      const t = topology(1);
      return mustPass(`ref ${t.name} × ctr`, 'ctr', refTarget(t), t, true);
    });

    const t2Failure = 'ctr push through t2 (Host $host:$server_port) fails: the upload URL names :443, containerd drops credentials';
    test(t2Failure, { timeout: 4 * 60_000 }, async () => {
      const t = topology(2);
      // The registry's absolute Location says `name:443`; containerd follows it without credentials.
      const dropped = new RegExp(`"(PUT|PATCH) /v2/[^"]*" 401 host="${t.refHost.replaceAll('.', '\\.')}:443" auth=none `);
      await mustFailPush(`ref ${t.name} × ctr`, refTarget(t), t, true, dropped);
    });
  });
});
