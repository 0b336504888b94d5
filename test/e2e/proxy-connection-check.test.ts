// The connection check (/api/v1/system/connection) through a real nginx: one configured as
// PROXIES.md recommends (Host as the client sent it) agrees with the external URL; one that leaves
// nginx's default Host (`$proxy_host`, the upstream's own address) does not, and says M2 with the
// directive that cures it — what the portal's banner shows administrators.
import assert from 'node:assert/strict';
import http from 'node:http';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { randomLoopbackIp } from '../support/hosts.ts';
import { RECOMMENDED_PROXY_DIRECTIVES, STREAMING_PROXY_DIRECTIVES, startNginx } from '../support/nginx.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { adminBasic, startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, freePort, tmpDir } from '../support/system.ts';

interface Connection {
  request: { host: string | null; forwarded: Record<string, string>; peer: string; trustedProxy: boolean };
  origin: string;
  agrees: boolean;
  problems: { id: string; mechanism: string | null; fix: string }[];
  doctorCommand: string;
}

/** GET /api/v1/system/connection at `ip:port` with the Host a client that typed `host` sends. */
function check(ip: string, port: number, host: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ip, port, path: '/api/v1/system/connection', headers: { Host: host, Authorization: adminBasic() }, agent: false, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}: ${text}`));
        else resolve(JSON.parse(text) as Connection);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${ip}:${port}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('connection check through a real nginx', { timeout: 3 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  let berth: TestServer;
  let berthPort: number;
  let good: { ip: string; port: number };
  let rewriting: { ip: string; port: number };
  let external: string;

  before(async () => {
    await ensurePackages([{ binary: 'nginx', pkg: 'nginx' }]);
    berthPort = await freePort();
    good = { ip: randomLoopbackIp(), port: 0 };
    good.port = await freePort(good.ip);
    rewriting = { ip: randomLoopbackIp(), port: 0 };
    rewriting.port = await freePort(rewriting.ip);
    external = `http://berth-conn.test:${good.port}`;
    berth = await startTestServer({ addr: `127.0.0.1:${berthPort}`, externalURL: [external], trustedProxies: ['127.0.0.1'] });
    registry.defer('berth', () => berth.close());
    for (const [proxy, directives] of [
      [good, RECOMMENDED_PROXY_DIRECTIVES],
      // No Host directive: nginx sends `Host: 127.0.0.1:<berth's port>` ($proxy_host).
      [rewriting, [...STREAMING_PROXY_DIRECTIVES, 'proxy_set_header X-Forwarded-Proto $scheme;', 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;']],
    ] as const) {
      const prefix = await tmpDir('berth-conn-nginx');
      registry.defer('nginx scratch', () => rm(prefix, { recursive: true, force: true }));
      await startNginx({ prefix, listenIp: proxy.ip, listenPort: proxy.port, serverName: 'berth-conn.test', upstream: `http://127.0.0.1:${berthPort}`, locationDirectives: directives, registry });
    }
  });
  after(() => registry.stopAll());

  test('a proxy passing Host as sent: agrees, no problems', async () => {
    const c = await check(good.ip, good.port, `berth-conn.test:${good.port}`);
    assert.equal(c.request.trustedProxy, true);
    assert.equal(c.request.forwarded['x-forwarded-proto'], 'http');
    assert.equal(c.origin, external);
    assert.equal(c.agrees, true, JSON.stringify(c.problems));
    assert.deepEqual(c.problems, []);
    assert.equal(c.doctorCommand, `berth doctor ${external} -u admin`);
  });

  test('a proxy that rewrites Host to the upstream address: agrees false, host-mismatch (M2) with the fix', async () => {
    // The client typed the external URL; DNS (here: the address) leads it to this proxy.
    const c = await check(rewriting.ip, rewriting.port, `berth-conn.test:${good.port}`);
    assert.equal(c.request.host, `127.0.0.1:${berthPort}`, 'nginx sent its upstream address as Host');
    assert.equal(c.origin, `http://127.0.0.1:${berthPort}`);
    assert.equal(c.agrees, false);
    assert.deepEqual(c.problems.map((p) => `${p.id}/${p.mechanism}`), ['host-mismatch/M2']);
    assert.match(c.problems[0]!.fix, /proxy_set_header Host \$http_host;/);
    assert.equal(c.doctorCommand, `berth doctor ${external} -u admin`);
  });
});
