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
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import { explainLogs, renderText, type LogInput, type MechanismId as LogMechanism } from '../../src/diagnose/logs/report.ts';
import { runDoctor } from '../../src/diagnose/doctor/index.ts';
import { renderReport } from '../../src/diagnose/doctor/render.ts';
import type { MechanismId } from '../../src/diagnose/doctor/types.ts';
import {
  type MatrixRegistry,
  type Topology,
  TOPOLOGIES,
  expectedPush,
  startTopology,
  topologyExternalURL,
  topologyNames,
} from '../support/topologies.ts';

/** A fresh domain per run, so concurrent runs never share hosts entries or docker certs.d dirs (BERTH_MATRIX_DOMAIN fixes it, for reports). */
const DOMAIN = process.env['BERTH_MATRIX_DOMAIN'] ?? `m${randomBytes(3).toString('hex')}.matrix.test`;
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
      await registry.stopAllAndClean(scratch, KEEP || failed);
    },
    { timeout: 3 * 60_000 },
  );

  /** With BERTH_MATRIX_REPORTS=DIR, the doctor and explain reports of the run are kept there. */
  async function saveReport(name: string, text: string): Promise<void> {
    const dir = process.env['BERTH_MATRIX_REPORTS'];
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, name), `${text}\n`);
  }

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

  describe('reference registry (CNCF Distribution) behind the same topologies', () => {
    const refTarget = (t: Topology): RegistryTarget => ({
      registryHost: t.refHost,
      username: ref.username,
      password: ref.password,
      repository: `matrix/ref-${t.name}-ctr`,
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

  // After every push: the run's own logs, and then the doctor against every topology, must name
  // each broken hop. Runs last, so the logs hold the client pushes and nothing else.
  describe('berth logs explain and berth doctor name each broken hop', () => {
    test('logs explain: every failed push of the run is named, every good one is OK', async () => {
      const inputs: LogInput[] = [
        { name: 'berth.log', text: await readFile(berth.logFile, 'utf8') },
        { name: 'registry.log', text: await readFile(ref.logFile, 'utf8') },
      ];
      for (const t of topologies) {
        for (const [i, nginx] of t.nginx.entries()) {
          inputs.push({ name: `${t.name}-nginx${i}-access.log`, text: await readFile(nginx.combinedLog, 'utf8') });
          inputs.push({ name: `${t.name}-nginx${i}-error.log`, text: await readFile(nginx.errorLog, 'utf8') });
        }
      }
      const report = explainLogs(inputs);
      await saveReport('logs-explain.txt', renderText(report));
      const byRepository = (repository: string) => report.sessions.filter((s) => s.repository === repository);
      const expected: [string, LogMechanism][] = [
        [`matrix/${topology(7).name}-ctr`, 'M7'],
        [`matrix/${topology(8).name}-ctr`, 'M5'],
        [`matrix/${topology(9).name}-ctr`, 'M6'],
        [`matrix/ref-${topology(2).name}-ctr`, 'M2'],
      ];
      for (const [repository, mechanism] of expected) {
        const sessions = byRepository(repository).filter((s) => s.verdict === 'failed');
        const named = sessions.flatMap((s) => s.mechanisms);
        assert.ok(named.includes(mechanism), `${repository}: expected ${mechanism}, got [${named.join(', ')}]\n${renderText(report)}`);
      }
      const good = [...results].filter(([, v]) => v === 'pass').map(([k]) => k);
      assert.ok(good.length >= 21, `the run had its passing pushes: ${good.length}`);
      for (const session of report.sessions) {
        if (!session.repository?.startsWith('matrix/')) continue;
        const broken = expected.some(([repository]) => repository === session.repository);
        if (!broken) assert.equal(session.verdict, 'ok', `${session.repository} (${session.userAgent}) passed, so explain must not blame it: ${session.mechanisms.join(', ')}\n${renderText(report)}`);
      }
    });

    /**
     * What the doctor must conclude for each topology: exit 0, or the mechanism it must name. The
     * doctor probes as containerd does, so these are the ctr push facts of PUSH_EXPECTATIONS
     * (topologies.ts), which also state the expectations of the `logs explain` corpus: a healthy
     * verdict where a ctr push passes, else the mechanism that breaks it.
     */
    const doctorWants = (id: number, which: MatrixRegistry): MechanismId | 'healthy' => {
      const outcome = expectedPush(id, which, 'ctr').outcome;
      return outcome === 'pass' ? 'healthy' : outcome;
    };
    for (const spec of TOPOLOGIES) {
      for (const which of ['berth', 'ref'] as const) {
        const want = doctorWants(spec.id, which);
        test(`doctor against ${which === 'berth' ? 'Berth' : 'the reference registry'} through t${spec.id} ${spec.slug}: ${want}`, { timeout: 3 * 60_000 }, async () => {
          const t = topology(spec.id);
          const report = await runDoctor({
            url: which === 'berth' ? t.berthURL : t.refURL,
            username: which === 'berth' ? 'admin' : ref.username,
            password: which === 'berth' ? berth.adminPassword : ref.password,
            ca: await readFile(tls.caCert, 'utf8'),
            timeoutMs: 20_000,
          });
          const text = renderReport(report).join('\n');
          await saveReport(`doctor-${which}-t${spec.id}.txt`, text);
          if (want === 'healthy') {
            assert.equal(report.exitCode, 0, `expected healthy:\n${text}`);
            return;
          }
          const problems = report.findings.filter((f) => f.severity === 'problem');
          // Against a Basic-auth registry a stripped Authorization header looks exactly like a wrong
          // password (same 401, same body): the doctor must then say both, naming M5.
          const named = problems.some((f) => f.mechanism === want || (want === 'M5' && f.mechanism === 'AUTH' && /M5|Authorization/.test(`${f.title} ${f.fix}`)));
          assert.ok(named, `expected ${want}, got [${problems.map((f) => f.mechanism).join(', ')}]:\n${text}`);
          assert.notEqual(report.exitCode, 0, text);
          const finding = problems.find((f) => f.mechanism === want) ?? problems[0]!;
          assert.ok(finding.fix.length > 20, `the finding says how to fix it: ${finding.fix}`);
        });
      }
    }
  });
});
