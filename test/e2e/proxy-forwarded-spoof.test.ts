// A client must not be able to choose the address Berth records for it by sending forwarding headers
// of its own through a trusted proxy (PROXIES.md M3). Real nginx, two ways:
//  - with the configuration `berth proxy-config nginx` writes: the proxy drops a client's Forwarded
//    and overwrites X-Real-IP, so Berth sees only what nginx wrote;
//  - with a hand-written configuration that sets only X-Forwarded-* (the PROXIES.md recipe) and so
//    passes a client's Forwarded and X-Real-IP on: Berth sees headers that disagree and believes none.
// The client connects from its own loopback address (never 127.0.0.1: that is nginx's address as
// Berth sees it, a trusted proxy), so the real client address is known and differs from the proxy's.
// Failed logins are checked where they matter: the audit log, the access log and the login warning.
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomInt, randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../support/berth.ts';
import { randomLoopbackIp } from '../support/hosts.ts';
import { RECOMMENDED_PROXY_DIRECTIVES, startGeneratedNginx, startNginx } from '../support/nginx.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { run } from '../support/run.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, freePort, tmpDir } from '../support/system.ts';

/** What a client forges: every header a proxy might use to name the client. */
const FORGED = {
  Forwarded: 'for=198.51.100.66;proto=https',
  'X-Forwarded-For': '198.51.100.77',
  'X-Real-IP': '198.51.100.88',
};
const FORGED_ADDRESS = /198\.51\.100\./;

interface Reply {
  status: number;
  body: string;
}

/** One HTTP/1.1 request from `localAddress` (so the proxy sees a client address of our choosing). */
function send(target: { ip: string; port: number }, localAddress: string, requestPath: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: target.ip, port: target.port, localAddress, path: requestPath, headers, agent: false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.ip}:${target.port}${requestPath}`)));
    req.on('error', reject);
    req.end();
  });
}

/** A loopback client address distinct from 127.0.0.1 (trusted) and from the proxies' listen addresses. */
function clientLoopbackIp(): string {
  return `127.88.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

describe('a client cannot fake its address through a trusted nginx', { timeout: 5 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const logLines: Record<string, unknown>[] = [];
  let berth: TestServer;
  /** nginx running `berth proxy-config nginx` output. */
  let generated: { ip: string; port: number; host: string; logs: string[] };
  /** nginx setting only Host, X-Forwarded-Proto and X-Forwarded-For (PROXIES.md's recipe). */
  let handWritten: { ip: string; port: number; host: string; logs: string[] };

  before(async () => {
    await ensurePackages([{ binary: 'nginx', pkg: 'nginx' }]);
    const berthPort = await freePort();
    const ip = randomLoopbackIp();
    const port = await freePort(ip);
    const host = `berth-spoof.test:${port}`;
    // The real CLI writes the proxy configuration; Berth gets the settings it ends with.
    const config = (
      await run(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), 'proxy-config', 'nginx', '--external-url', `http://${host}`, '--upstream', `http://127.0.0.1:${berthPort}`, '--listen', `${ip}:${port}`], {
        cwd: REPO_ROOT,
        timeoutMs: 60_000,
      })
    ).stdout;
    const trusted = /^#\s+trustedProxies: (\[[^\]]*\])/m.exec(config)?.[1];
    assert.ok(trusted, `generated config names no trustedProxies:\n${config}`);
    berth = await startTestServer({ addr: `127.0.0.1:${berthPort}`, externalURL: [`http://${host}`], trustedProxies: JSON.parse(trusted) as string[] }, undefined, logLines);
    registry.defer('berth', () => berth.close());

    const generatedDir = await tmpDir('berth-spoof-nginx');
    registry.defer('nginx scratch', () => rm(generatedDir, { recursive: true, force: true }));
    const { logs } = await startGeneratedNginx({
      prefix: generatedDir,
      config,
      ip,
      port,
      registry,
      logFormat: '$remote_addr "$request" $status forwarded="$http_forwarded" xff="$http_x_forwarded_for" real_ip="$http_x_real_ip"',
    });
    generated = { ip, port, host, logs };

    const ip2 = randomLoopbackIp();
    const port2 = await freePort(ip2);
    const prefix = await tmpDir('berth-spoof-nginx');
    registry.defer('nginx scratch', () => rm(prefix, { recursive: true, force: true }));
    const nginx = await startNginx({
      prefix,
      listenIp: ip2,
      listenPort: port2,
      serverName: 'berth-spoof.test',
      upstream: `http://127.0.0.1:${berthPort}`,
      locationDirectives: RECOMMENDED_PROXY_DIRECTIVES,
      registry,
    });
    handWritten = { ip: ip2, port: port2, host: `berth-spoof.test:${port2}`, logs: [nginx.accessLog, nginx.errorLog] };
  });

  after(() => registry.stopAll());

  /** A wrong-password token request through `proxy` from `client`; returns what Berth recorded. */
  async function failedLogin(proxy: typeof generated, client: string, extra: Record<string, string>): Promise<{ audit: string; access: unknown; warning: unknown }> {
    const user = `spoof-${randomUUID().slice(0, 8)}`;
    const requestId = randomUUID();
    const res = await send(proxy, client, '/service/token?service=berth', {
      Host: proxy.host,
      Authorization: `Basic ${Buffer.from(`${user}:wrong`).toString('base64')}`,
      'X-Request-Id': requestId,
      ...extra,
    });
    assert.equal(res.status, 401, res.body);
    const audit = await fetch(`${berth.url}/api/v1/audit?actor=${user}&action=login.failed`, { headers: { Authorization: adminBasic() } });
    assert.equal(audit.status, 200);
    const rows = ((await audit.json()) as { items: { client: string }[] }).items;
    assert.equal(rows.length, 1, `one login.failed row for ${user}`);
    // The access log line is written when the response has finished: give it a moment.
    let access: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !access; i++) {
      access = logLines.find((l) => l['reqId'] === requestId && l['msg'] === 'request');
      if (!access) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(access, `no access log line for request ${requestId}`);
    const warning = logLines.find((l) => l['reqId'] === requestId && l['msg'] === 'login failed');
    assert.ok(warning, `no "login failed" line for request ${requestId}`);
    return { audit: rows[0]!.client, access: access['client'], warning: warning['client'] };
  }

  async function explain<T>(proxy: typeof generated, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      const logs = await Promise.all(proxy.logs.map(async (f) => `--- ${f} ---\n${await tailFile(f, 10)}`));
      throw new Error(`${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    }
  }

  test('generated nginx config: Berth receives no client-sent Forwarded, and X-Real-IP is nginx\'s own', () =>
    explain(generated, async () => {
      const client = clientLoopbackIp();
      const res = await send(generated, client, '/v2/_berth/echo', { Host: generated.host, ...FORGED, 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Port': '1' });
      assert.equal(res.status, 200, res.body);
      const received = (JSON.parse(res.body) as { received: { peer: string; client: string; forwarded: Record<string, string>; origin: { host: string } } }).received;
      assert.equal(received.peer, '127.0.0.1', 'nginx reaches Berth from 127.0.0.1 (the trusted proxy)');
      assert.equal(received.forwarded['forwarded'], undefined, 'the client-sent Forwarded header was dropped by nginx');
      assert.equal(received.forwarded['x-real-ip'], client, 'X-Real-IP is the address nginx saw');
      assert.equal(received.forwarded['x-forwarded-for'], `198.51.100.77, ${client}`, 'X-Forwarded-For: nginx appended the address it saw');
      assert.equal(received.forwarded['x-forwarded-host'], undefined, 'a client-sent X-Forwarded-Host was dropped');
      assert.equal(received.forwarded['x-forwarded-port'], undefined, 'a client-sent X-Forwarded-Port was dropped');
      assert.equal(received.client, client);
      assert.equal(received.origin.host, generated.host);
    }));

  test('generated nginx config: a failed login with forged headers is recorded under the real client address', () =>
    explain(generated, async () => {
      const client = clientLoopbackIp();
      const forged = await failedLogin(generated, client, FORGED);
      assert.deepEqual(forged, { audit: client, access: client, warning: client });
      const honest = await failedLogin(generated, client, {});
      assert.deepEqual(honest, { audit: client, access: client, warning: client });
      const proxyLog = await readFile(generated.logs[0]!, 'utf8');
      assert.match(proxyLog, new RegExp(`^${client.replace(/\./g, '\\.')} "GET /service/token`, 'm'), 'nginx saw the client at its own address');
    }));

  test('nginx passing Forwarded and X-Real-IP through: disagreeing headers are not believed', () =>
    explain(handWritten, async () => {
      const client = clientLoopbackIp();
      // Berth receives Forwarded: for=198.51.100.66 and X-Real-IP: 198.51.100.88 as the client sent
      // them, and X-Forwarded-For: 198.51.100.77, <client> from nginx. They name different clients,
      // so Berth records the one address it knows: the proxy's.
      const forged = await failedLogin(handWritten, client, FORGED);
      assert.deepEqual(forged, { audit: '127.0.0.1', access: '127.0.0.1', warning: '127.0.0.1' });
      for (const [name, value] of Object.entries(FORGED)) {
        const one = await failedLogin(handWritten, client, { [name]: value });
        assert.doesNotMatch(String(one.audit), FORGED_ADDRESS, `forged ${name} alone`);
        assert.ok(one.audit === client || one.audit === '127.0.0.1', `forged ${name} alone: ${one.audit}`);
        assert.equal(one.access, one.audit);
      }
      const honest = await failedLogin(handWritten, clientLoopbackIp(), {});
      assert.notEqual(honest.audit, '127.0.0.1');
      assert.match(String(honest.audit), /^127\.88\./);
    }));
});
