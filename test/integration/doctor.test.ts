// `berth doctor` against real registries and a real nginx: healthy Berth and CNCF Distribution
// exit 0; nginx misconfigurations are named with their mechanism and fix (PROXIES.md M2, M5, M7).
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DoctorReport, mainFinding, runDoctor } from '../../src/diagnose/doctor/index.ts';
import { renderReport } from '../../src/diagnose/doctor/render.ts';
import { addHostsEntry, type HostsEntry, randomLoopbackIp } from '../support/hosts.ts';
import { HOST_WITH_PORT_DIRECTIVES, RECOMMENDED_PROXY_DIRECTIVES, type NginxInstance, startNginx } from '../support/nginx.ts';
import { ProcessRegistry, startProcess, tailFile } from '../support/processes.ts';
import { run } from '../support/run.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, freePort, tmpDir, waitForHttp } from '../support/system.ts';
import { createTlsMaterial, type TlsMaterial } from '../support/tls.ts';

const DOMAIN = 'berth-doctor.test';
const USER = 'doctor';
const PASSWORD = 'doctor-password-1';

/** CNCF Distribution (Debian's docker-registry) with htpasswd auth on 127.0.0.1:<random>. */
async function startDistribution(registry: ProcessRegistry, scratch: string[]): Promise<string> {
  await ensurePackages([{ binary: 'docker-registry', pkg: 'docker-registry' }, { binary: 'htpasswd', pkg: 'apache2-utils' }]);
  const dir = await tmpDir('berth-doctor-distribution');
  scratch.push(dir);
  const htpasswd = await run('htpasswd', ['-Bbn', USER, PASSWORD], { redact: [PASSWORD] });
  await writeFile(path.join(dir, 'htpasswd'), htpasswd.stdout);
  const port = await freePort();
  await writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${path.join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}", secret: doctor-test-secret }`,
    `auth: { htpasswd: { realm: doctor-test, path: ${path.join(dir, 'htpasswd')} } }`,
    '',
  ].join('\n'));
  const child = await registry.start({ name: 'docker-registry', command: 'docker-registry', args: ['serve', path.join(dir, 'config.yml')], logFile: path.join(dir, 'registry.log') });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, { timeoutMs: 20_000, status: 401, abortIf: () => child.exitDescription() });
  return url;
}

/** Prints the report when an assertion fails, so the failure explains itself. */
function check(report: DoctorReport, assertions: () => void): void {
  try {
    assertions();
  } catch (error) {
    console.error(renderReport(report).join('\n'));
    throw error;
  }
}

describe('berth doctor', { timeout: 5 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let berth: TestServer;
  let distribution: string;
  let tls: TlsMaterial;
  let hosts: HostsEntry;
  let ca: string;

  before(async () => {
    if (process.getuid?.() !== 0) throw new Error('the doctor integration suite must run as root: it edits /etc/hosts and binds port 443');
    const port = await freePort();
    berth = await startTestServer({ addr: `127.0.0.1:${port}`, externalURL: [`https://${DOMAIN}`, `http://127.0.0.1:${port}`] });
    registry.defer('berth', () => berth.close());
    distribution = await startDistribution(registry, scratch);
    hosts = await addHostsEntry(randomLoopbackIp(), DOMAIN);
    registry.defer('hosts entry', () => hosts.remove());
    tls = await createTlsMaterial({ dnsNames: [DOMAIN] });
    scratch.push(tls.dir);
    ca = await readFile(tls.caCert, 'utf8');
  }, { timeout: 3 * 60_000 });

  after(async () => {
    try {
      await registry.stopAll();
    } finally {
      for (const dir of scratch) await rm(dir, { recursive: true, force: true });
    }
  });

  /** nginx on DOMAIN:443 in front of `upstream` for the duration of `task`. */
  async function behindNginx<T>(upstream: string, directives: readonly string[], task: (nginx: NginxInstance) => Promise<T>): Promise<T> {
    const nginx = await startNginx({ listenIp: hosts.ip, listenPort: 443, serverName: DOMAIN, tls, upstream, locationDirectives: directives });
    try {
      return await task(nginx);
    } catch (error) {
      console.error(`--- nginx access log ---\n${await tailFile(nginx.accessLog, 40)}`);
      throw error;
    } finally {
      await nginx.stop();
      await rm(nginx.prefix, { recursive: true, force: true });
    }
  }

  test('healthy Berth: exit 0, detected as Berth through its echo endpoint', async () => {
    const report = await runDoctor({ url: berth.url, username: 'admin', password: ADMIN_PASSWORD });
    check(report, () => {
      assert.equal(report.exitCode, 0, report.verdict);
      assert.equal(report.registry.kind, 'berth');
      assert.equal(report.registry.auth, 'bearer');
      assert.ok(report.steps.some((s) => s.id === 'manifest-put' && s.ok === true));
      assert.ok(report.steps.some((s) => s.id === 'blob-get' && s.ok === true));
    });
  });

  test('healthy CNCF Distribution with htpasswd: exit 0', async () => {
    const report = await runDoctor({ url: distribution, username: USER, password: PASSWORD });
    check(report, () => {
      assert.equal(report.exitCode, 0, report.verdict);
      assert.equal(report.registry.kind, 'distribution');
      assert.equal(report.registry.auth, 'basic');
      assert.deepEqual(report.findings.filter((f) => f.severity === 'problem'), []);
    });
  });

  test('wrong password: exit 2 (could not test)', async () => {
    const report = await runDoctor({ url: distribution, username: USER, password: 'not-the-password' });
    check(report, () => {
      assert.equal(report.exitCode, 2, report.verdict);
      assert.equal(mainFinding(report.findings)?.mechanism, 'AUTH');
    });
  });

  test('nginx with Host $host:$server_port in front of Distribution: M2, containerd gets 401, fix names $http_host', async () => {
    const report = await behindNginx(distribution, HOST_WITH_PORT_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: USER, password: PASSWORD, ca }));
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'M2');
      assert.match(main!.fix, /proxy_set_header Host \$http_host;/);
      assert.deepEqual(main!.clients, ['containerd']);
      const strict = report.steps.find((s) => s.id.endsWith('-as-containerd'));
      assert.equal(strict?.exchange?.status, 401, 'the request sent without credentials, as containerd does, is refused');
      assert.equal(strict?.exchange?.auth, 'none');
      assert.ok(report.steps.some((s) => s.id === 'manifest-put' && s.ok === true), 'with credentials the rest of the push works');
    });
  });

  test('nginx with client_max_body_size 1m: M7 with the largest body that passed', async () => {
    const directives = [...RECOMMENDED_PROXY_DIRECTIVES.filter((d) => !d.startsWith('client_max_body_size')), 'client_max_body_size 1m;'];
    const report = await behindNginx(distribution, directives, (nginx) => runDoctor({ url: nginx.url, username: USER, password: PASSWORD, ca }));
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      assert.equal(mainFinding(report.findings)?.mechanism, 'M7');
      assert.deepEqual(report.registry.bodyLimit, { largestPassed: 512 * 1024, firstFailed: 1024 ** 2 + 1 });
      assert.match(mainFinding(report.findings)!.fix, /client_max_body_size 0;/);
    });
  });

  test('nginx stripping Authorization in front of Berth: M5', async () => {
    const directives = [...RECOMMENDED_PROXY_DIRECTIVES, 'proxy_set_header Authorization "";'];
    const report = await behindNginx(berth.url, directives, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca }));
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      assert.equal(report.registry.kind, 'berth');
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'M5');
      assert.match(main!.fix, /proxy_set_header Authorization ""/);
      const echoed = report.findings.find((f) => f.mechanism === 'M5' && f.evidence.some((e) => e.includes('authorization.present: false')));
      assert.ok(echoed, 'the echo endpoint confirms that the header never reached Berth');
    });
  });
});
