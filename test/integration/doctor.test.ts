// `berth doctor` against real registries and a real nginx: healthy Berth and CNCF Distribution
// exit 0 and leave nothing behind; nginx misconfigurations are named with their mechanism and fix
// (PROXIES.md M1, M2, M5–M9), and so are broken certificates (unknown CA, wrong name, expired) and a
// probe that could not be deleted again (accounts and roles: doctor-cleanup.test.ts). Every report
// fits 80 columns.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type DoctorReport, type Finding, mainFinding, runDoctor } from '../../src/diagnose/doctor/index.ts';
import { renderReport } from '../../src/diagnose/doctor/render.ts';
import { api, expectStatus } from '../support/api.ts';
import { addHostsEntry, type HostsEntry, randomLoopbackIp } from '../support/hosts.ts';
import { HOST_WITH_PORT_DIRECTIVES, RECOMMENDED_PROXY_DIRECTIVES, type NginxInstance, startNginx } from '../support/nginx.ts';
import { ProcessRegistry, startProcess, tailFile } from '../support/processes.ts';
import { run } from '../support/run.ts';
import { ADMIN_PASSWORD, adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, freePort, tmpDir, waitForHttp } from '../support/system.ts';
import { createTlsMaterial, type TlsMaterial, type TlsOptions } from '../support/tls.ts';

const DOMAIN = 'berth-doctor.test';
const USER = 'doctor';
const PASSWORD = 'doctor-password-1';

/** CNCF Distribution (Debian's docker-registry) with htpasswd auth on 127.0.0.1:<random>; deletes allowed unless `deletes: false`. */
async function startDistribution(registry: ProcessRegistry, scratch: string[], deletes = true): Promise<string> {
  await ensurePackages([{ binary: 'docker-registry', pkg: 'docker-registry' }, { binary: 'htpasswd', pkg: 'apache2-utils' }]);
  const dir = await tmpDir('berth-doctor-distribution');
  scratch.push(dir);
  const htpasswd = await run('htpasswd', ['-Bbn', USER, PASSWORD], { redact: [PASSWORD] });
  await writeFile(path.join(dir, 'htpasswd'), htpasswd.stdout);
  const port = await freePort();
  await writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${path.join(dir, 'data')} }, delete: { enabled: ${deletes} } }`,
    `http: { addr: "127.0.0.1:${port}", secret: doctor-test-secret }`,
    `auth: { htpasswd: { realm: doctor-test, path: ${path.join(dir, 'htpasswd')} } }`,
    '',
  ].join('\n'));
  const child = await registry.start({ name: 'docker-registry', command: 'docker-registry', args: ['serve', path.join(dir, 'config.yml')], logFile: path.join(dir, 'registry.log') });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, { timeoutMs: 20_000, status: 401, abortIf: () => child.exitDescription() });
  return url;
}

/** What {@link startHop} changes on the way through; everything else passes unchanged, Host included. */
interface HopOptions {
  /** Shifts the Date of every answer: a proxy host with a wrong clock (nginx sets Date from its own clock). */
  readonly dateOffsetSeconds?: number;
  /**
   * Answers 411 to request bodies sent with `Transfer-Encoding: chunked`, as nginx before 1.3.9 and
   * some load balancers do. nginx 1.22 accepts chunked bodies whatever its configuration
   * (`chunked_transfer_encoding off;` only concerns responses), so a hop of our own plays that proxy.
   */
  readonly refuseChunked?: boolean;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade'];

/** A real HTTP reverse proxy (node:http) on 127.0.0.1:`port` in front of `upstream`. */
async function startHop(port: number, upstream: string, options: HopOptions): Promise<{ url: string; close(): Promise<void> }> {
  const strip = (headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders =>
    Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.includes(name)));
  const server = http.createServer((req, res) => {
    if (options.refuseChunked && /chunked/i.test(req.headers['transfer-encoding'] ?? '')) {
      res.writeHead(411, { 'Content-Type': 'text/html', Connection: 'close' });
      res.end('<html><head><title>411 Length Required</title></head></html>\n');
      req.resume();
      return;
    }
    const forward = http.request(new URL(req.url ?? '/', upstream), { method: req.method, headers: strip(req.headers) }, (answer) => {
      const headers = strip(answer.headers);
      if (options.dateOffsetSeconds !== undefined) {
        headers['date'] = new Date(Date.now() + options.dateOffsetSeconds * 1000).toUTCString();
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Prints the report when an assertion fails, so the failure explains itself. Every report must fit 80 columns. */
function check(report: DoctorReport, assertions: () => void): void {
  try {
    for (const width of [80, 120]) {
      const long = renderReport(report, width).filter((line) => line.length > width);
      assert.deepEqual(long, [], `every line of the report fits ${width} columns`);
    }
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

  /**
   * nginx on DOMAIN:443 (with `setup.tls`, default the suite's certificate) or, `plain`, on
   * DOMAIN:80, in front of `upstream` for the duration of `task`.
   */
  async function behindNginx<T>(
    upstream: string,
    directives: readonly string[],
    task: (nginx: NginxInstance) => Promise<T>,
    setup: { tls?: TlsMaterial; plain?: boolean; serverDirectives?: readonly string[] } = {},
  ): Promise<T> {
    const nginx = await startNginx({
      listenIp: hosts.ip, listenPort: setup.plain ? 80 : 443, serverName: DOMAIN, tls: setup.plain ? undefined : (setup.tls ?? tls),
      upstream, locationDirectives: directives, serverDirectives: setup.serverDirectives,
    });
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
      assert.equal(report.registry.tokenExpiresIn, 1800);
      assert.deepEqual(report.findings.filter((f) => f.mechanism === 'M9'), [], 'default 30 min tokens outlive a 10GiB upload; the clocks agree');
      assert.deepEqual(report.cleanup.leftBehind, []);
      assert.ok(report.cleanup.removed.some((r) => /^manifest berth-doctor\/probe@sha256:[0-9a-f]{64} \(tag doctor-\d+\)$/.test(r)), report.cleanup.removed.join('\n'));
      assert.ok(report.cleanup.removed.includes('repository berth-doctor/probe'), 'the repository it created is deleted');
      assert.ok(report.cleanup.removed.includes('project berth-doctor'), 'the project an administrator\'s push created is deleted');
    });
    // Nothing of the run is left: no project, no repository.
    await expectStatus(await api(berth.url, 'GET', '/projects/berth-doctor', { auth: adminBasic() }), 404);
    const repositories = await expectStatus<{ items: unknown[] }>(await api(berth.url, 'GET', '/repositories?q=berth-doctor', { auth: adminBasic() }), 200);
    assert.deepEqual(repositories.items, []);
  });

  test('healthy CNCF Distribution with htpasswd: exit 0', async () => {
    const report = await runDoctor({ url: distribution, username: USER, password: PASSWORD });
    check(report, () => {
      assert.equal(report.exitCode, 0, report.verdict);
      assert.equal(report.registry.kind, 'distribution');
      assert.equal(report.registry.auth, 'basic');
      assert.deepEqual(report.findings.filter((f) => f.severity === 'problem'), []);
      assert.deepEqual(report.cleanup.leftBehind, []);
      assert.ok(report.cleanup.removed.some((r) => r.startsWith('manifest berth-doctor/probe@sha256:')));
    });
    const tags = await fetch(`${distribution}/v2/berth-doctor/probe/tags/list`, { headers: { Authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` } });
    const listed = tags.status === 200 ? ((await tags.json()) as { tags: string[] | null }).tags ?? [] : [];
    assert.deepEqual(listed.filter((t) => t.startsWith('doctor-')), [], 'the probe tag went with its manifest');
  });

  test('CNCF Distribution with deletes disabled: not healthy, exit 1, the probe named as left behind', async () => {
    const noDeletes = await startDistribution(registry, scratch, false);
    const report = await runDoctor({ url: noDeletes, username: USER, password: PASSWORD });
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      assert.equal(mainFinding(report.findings)?.mechanism, 'CLEANUP');
      const manifest = report.cleanup.leftBehind.find((l) => l.what.startsWith('manifest '));
      assert.match(manifest?.what ?? '', /^manifest berth-doctor\/probe@sha256:[0-9a-f]{64} \(tag doctor-\d+\)$/);
      assert.match(manifest!.why, /deletes are disabled/);
      assert.match(report.verdict, /^push and pull work, but the doctor left behind/);
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

  /** A certificate for DOMAIN (or `names`) from a fresh CA, cleaned up with the suite. */
  async function certificate(options: Partial<TlsOptions> = {}): Promise<{ tls: TlsMaterial; ca: string }> {
    const material = await createTlsMaterial({ dnsNames: [DOMAIN], ...options });
    scratch.push(material.dir);
    return { tls: material, ca: await readFile(material.caCert, 'utf8') };
  }

  /** The TLS finding of a run that could not start: exit 2, nothing sent after the ping. */
  function tlsFailure(report: DoctorReport): Finding {
    assert.equal(report.exitCode, 2, report.verdict);
    const main = mainFinding(report.findings);
    assert.equal(main?.mechanism, 'TLS');
    assert.deepEqual(report.steps.map((s) => s.id), ['ping']);
    return main!;
  }

  test('TLS, CA not trusted (no --ca-file): exit 2, fix names --ca-file and the certs.d paths', async () => {
    const report = await behindNginx(berth.url, RECOMMENDED_PROXY_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD }));
    check(report, () => {
      const main = tlsFailure(report);
      const issuer = new X509Certificate(ca).subject;
      assert.equal(main.title, `TLS: certificate not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): issued by "${issuer}"`);
      assert.match(main.fix, /--ca-file/);
      assert.ok(main.fix.includes(`/etc/docker/certs.d/${DOMAIN}/ca.crt`), main.fix);
      assert.ok(main.fix.includes(`/etc/containerd/certs.d/${DOMAIN}/hosts.toml`), main.fix);
    });
  });

  test('TLS, certificate for another name: exit 2, fix names the subjectAltName', async () => {
    const other = await certificate({ dnsNames: ['another-name.test'] });
    const report = await behindNginx(berth.url, RECOMMENDED_PROXY_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca: other.ca }), { tls: other.tls });
    check(report, () => {
      const main = tlsFailure(report);
      assert.equal(main.title, `TLS: the certificate is not valid for ${DOMAIN}`);
      assert.ok(main.evidence.some((e) => e.includes('ERR_TLS_CERT_ALTNAME_INVALID') && e.includes('DNS:another-name.test')), main.evidence.join('\n'));
      assert.match(main.fix, new RegExp(`subjectAltName includes ${DOMAIN.replace(/\./g, '\\.')}`));
    });
  });

  test('TLS, expired certificate: exit 2, fix says renew', async () => {
    const day = 86_400_000;
    const expired = await certificate({ validity: { notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) } });
    const report = await behindNginx(berth.url, RECOMMENDED_PROXY_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca: expired.ca }), { tls: expired.tls });
    const notAfter = new Date(new X509Certificate(await readFile(expired.tls.serverCert)).validTo).toISOString().replace('.000Z', 'Z');
    check(report, () => {
      const main = tlsFailure(report);
      assert.equal(main.title, `TLS: the certificate has expired (valid until ${notAfter})`);
      assert.ok(main.evidence.some((e) => e.includes('CERT_HAS_EXPIRED')));
      assert.match(main.fix, /Renew the certificate/);
    });
  });

  test('plain-http server redirecting to https (return 301): M6, fix names the https URL', async () => {
    const report = await behindNginx(berth.url, RECOMMENDED_PROXY_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD }), {
      plain: true,
      serverDirectives: ['return 301 https://$host$request_uri;'],
    });
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'M6');
      assert.equal(main!.title, `301 redirect on GET /v2/ to https://${DOMAIN}/v2/`);
      assert.ok(main!.fix.includes(`(https://${DOMAIN})`), main!.fix);
    });
  });

  test('token realm on http:// behind an http→https redirect: M6 on the token endpoint', async () => {
    // Berth told its public URL is http://, TLS added later at nginx: the realm still says http://.
    const plainRealm = await startTestServer({ externalURL: [`http://${DOMAIN}`] });
    try {
      const report = await behindNginx(plainRealm.url, RECOMMENDED_PROXY_DIRECTIVES, () =>
        behindNginx(plainRealm.url, [], () => runDoctor({ url: `https://${DOMAIN}`, username: 'admin', password: ADMIN_PASSWORD, ca }), {
          plain: true,
          serverDirectives: ['return 301 https://$host$request_uri;'],
        }));
      check(report, () => {
        assert.equal(report.exitCode, 1, report.verdict);
        const main = mainFinding(report.findings);
        assert.equal(main?.mechanism, 'M6');
        assert.equal(main!.title, `301 redirect on the token endpoint to https://${DOMAIN}/service/token`);
        assert.equal(report.findings.filter((f) => f.mechanism === 'M6').length, 1, 'the POST and the GET redirect to one place: one finding');
        assert.match(main!.fix, /make the realm that URL/);
        assert.match(main!.fix, /`externalURL`/);
        assert.ok(report.steps.some((s) => s.id === 'realm' && /uses http:\/\//.test(s.note ?? '')), 'the realm scheme is pointed out');
      });
    } finally {
      await plainRealm.close();
    }
  });

  test('Berth without externalURL behind nginx terminating TLS, Host $host:$server_port: realm https://name, healthy', async () => {
    const bare = await startTestServer();
    try {
      const report = await behindNginx(bare.url, HOST_WITH_PORT_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca }));
      check(report, () => {
        assert.equal(report.exitCode, 0, report.verdict);
        assert.equal(report.registry.realm, `https://${DOMAIN}/service/token`, 'not http://name:443');
        assert.ok(report.findings.some((f) => f.mechanism === 'M2' && f.severity === 'info' && f.title.includes(`"${DOMAIN}:443"`)), 'Berth did receive Host name:443 over plain HTTP');
        assert.deepEqual(report.cleanup.leftBehind, []);
      });
    } finally {
      await bare.close();
    }
  });

  test('http realm on an https registry (externalURL http://name:443): PROBLEM M1 naming the realm and externalURL, not "not tested"', async () => {
    // The realm Berth without externalURL built behind this proxy before: plain HTTP to nginx's TLS port (400).
    const plainRealm = await startTestServer({ externalURL: [`http://${DOMAIN}:443`] });
    try {
      const report = await behindNginx(plainRealm.url, HOST_WITH_PORT_DIRECTIVES, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca }));
      check(report, () => {
        assert.equal(report.exitCode, 1, report.verdict);
        const main = mainFinding(report.findings);
        assert.equal(main?.mechanism, 'M1');
        assert.equal(main!.title, `token realm http://${DOMAIN}:443/service/token uses http:// while the registry is https://`);
        assert.match(main!.fix, new RegExp(`set \`externalURL\` to https://${DOMAIN.replace(/\./g, '\\.')}`));
        assert.ok(main!.evidence.some((e) => / → 400$/.test(e)), 'the failed token request is the evidence');
        assert.match(report.verdict, /^M1 \(scheme lost between the TLS terminator and the registry\): token realm http:/);
        assert.doesNotMatch(report.verdict, /could not test|stopped early/);
        assert.ok(report.steps.some((s) => s.id === 'realm' && s.ok === false));
      });
    } finally {
      await plainRealm.close();
    }
  });

  test('Berth without externalURL behind a TLS proxy sending Host $host: realm http://name, the fix names externalURL and trustedProxies', async () => {
    const bare = await startTestServer();
    const directives = [...RECOMMENDED_PROXY_DIRECTIVES.filter((d) => !d.startsWith('proxy_set_header Host')), 'proxy_set_header Host $host;'];
    try {
      const report = await behindNginx(bare.url, directives, (nginx) => runDoctor({ url: nginx.url, username: 'admin', password: ADMIN_PASSWORD, ca }));
      check(report, () => {
        assert.equal(report.exitCode, 1, report.verdict);
        const main = mainFinding(report.findings);
        assert.equal(main?.mechanism, 'M1');
        assert.equal(main!.title, `token realm http://${DOMAIN}/service/token uses http:// while the registry is https://`);
        assert.match(main!.fix, new RegExp(`set \`externalURL: https://${DOMAIN.replace(/\./g, '\\.')}\``));
        assert.match(main!.fix, /`trustedProxies` so its `X-Forwarded-Proto` is believed/);
      });
    } finally {
      await bare.close();
    }
  });

  test('a hop refusing chunked request bodies (411): M8, the rest of the push works', async () => {
    const hop = await startHop(0, distribution, { refuseChunked: true });
    try {
      const report = await runDoctor({ url: hop.url, username: USER, password: PASSWORD });
      check(report, () => {
        assert.equal(report.exitCode, 1, report.verdict);
        const main = mainFinding(report.findings);
        assert.equal(main?.mechanism, 'M8');
        assert.match(main!.title, /chunked request body was refused \(411\)/);
        assert.match(main!.fix, /Transfer-Encoding: chunked/);
        assert.ok(report.steps.some((s) => s.id === 'manifest-put' && s.ok === true));
      });
    } finally {
      await hop.close();
    }
  });

  test('token lifetime against a 10GiB upload at the measured speed: M9 exactly when it would not fit', async () => {
    // Whatever this machine's speed, the report must judge it consistently (the rule itself, at
    // fixed speeds, is tested in test/unit/doctor-urls.test.ts).
    const shortTokens = await startTestServer({ auth: { tokenTTL: 10 } });
    try {
      const report = await runDoctor({ url: shortTokens.url, username: 'admin', password: ADMIN_PASSWORD });
      check(report, () => {
        assert.equal(report.exitCode, 0, report.verdict);
        assert.equal(report.registry.tokenExpiresIn, 10);
        const speed = report.registry.uploadBytesPerSecond;
        assert.ok(speed && speed > 0, 'the body probe measured a speed');
        const m9 = report.findings.find((f) => f.mechanism === 'M9');
        assert.equal(m9 !== undefined, (10 * 1024 ** 3) / speed > 10, `measured ${speed} B/s`);
        if (m9) assert.match(m9.fix, /auth\.tokenTTL/);
      });
    } finally {
      await shortTokens.close();
    }
  });

  test('a proxy host whose clock is 10 minutes behind: clock skew reported', async () => {
    const port = await freePort();
    const behind = await startTestServer({ externalURL: [`http://127.0.0.1:${port}`] });
    const hop = await startHop(port, behind.url, { dateOffsetSeconds: -600 });
    try {
      const report = await runDoctor({ url: hop.url, username: 'admin', password: ADMIN_PASSWORD });
      check(report, () => {
        assert.equal(report.exitCode, 0, report.verdict);
        const skew = report.registry.clockSkewSeconds;
        assert.ok(skew !== undefined && Math.abs(skew + 600) <= 2, `skew ${skew}`);
        const finding = report.findings.find((f) => /clock skew/.test(f.title));
        assert.equal(finding?.severity, 'warning');
        assert.match(finding!.title, new RegExp(`clock skew of ${skew}s`));
        assert.match(finding!.fix, /NTP/);
      });
    } finally {
      await hop.close();
      await behind.close();
    }
  });
});
