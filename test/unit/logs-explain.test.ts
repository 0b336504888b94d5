import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { explainLogs, renderText } from '../../src/diagnose/logs/report.ts';
import { parseInputs } from '../../src/diagnose/logs/parse.ts';
import { REPO_ROOT, startBerth } from '../support/berth.ts';

const DIR = path.join(REPO_ROOT, 'test/fixtures/logs');
const load = (name: string) => ({ name, text: readFileSync(path.join(DIR, name), 'utf8') });

/** fixture → the mechanisms it must yield (exactly). */
const EXPECTED: Record<string, string[]> = {
  'healthy-push-berth.log': [],
  'healthy-pull-harbor.log': [],
  'm1-scheme-lost.log': ['M1'],
  'm2-hostport-containerd.log': ['M2'],
  'm2-hostport-berth.log': ['M1', 'M2'],
  'm2-default-host.log': ['M2'],
  'm3-forwarded-conflict.log': ['M1', 'M2', 'M3'],
  'm4-location-outside-v2.log': ['M4'],
  'm5-authorization-stripped.log': ['M5'],
  'm6-redirect-v2.log': ['M6'],
  'm7-body-too-large.log': ['M7'],
  'm8-timeouts.log': ['M8'],
  'm9-token-expired.log': ['M9'],
  'm9-token-expired-berth.log': ['M9'],
  'm10-upload-unknown.log': ['M10'],
  'm10-upload-unknown-berth.log': ['M10'],
  'm11-challenge-scope.log': ['M11'],
  'm2-hostport-harbor-compose.log': ['M2'],
  'healthy-push-harbor-compose.log': [],
  'quota-exceeded-berth.log': ['quota'],
};

test('every mechanism fixture yields its mechanism(s); healthy ones yield none', () => {
  // Hand-written fixtures only: `real-*` files and the real-matrix/ corpus (logs-explain-real.test.ts) are real output.
  const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.log') && !f.startsWith('real-'));
  assert.deepEqual(fixtures.sort(), Object.keys(EXPECTED).sort(), 'each fixture has an expectation');
  for (const [name, want] of Object.entries(EXPECTED)) {
    const report = explainLogs([load(name)]);
    const got = [...new Set(report.findings.map((f) => f.mechanism))].sort();
    assert.deepEqual(got, [...want].sort(), name);
    assert.equal(report.skippedLines, 0, `${name}: every line parses`);
    assert.equal(report.exitCode, want.length ? 1 : 0, name);
    if (!want.length) assert.ok(report.sessions.length > 0 && report.sessions.every((s) => s.verdict === 'ok'), name);
    for (const f of report.findings) {
      assert.ok(f.evidence.length > 0 && f.fix.length > 0 && f.explanation.length > 20, `${name} ${f.mechanism} is complete`);
      for (const ev of f.evidence) assert.ok(ev.file === name && ev.line > 0, `${name}: evidence cites lines`);
    }
  }
});

test('health and metrics probes are part of no session: a readiness 503 while a registry starts or drains is no client failure', () => {
  const healthy = load('healthy-push-berth.log');
  const first = /"time":(\d+),"service":"berth","reqId"/.exec(healthy.text)!;
  const at = Number(first[1]) + 500;
  const probes = ['/readyz', '/healthz', '/metrics', '/debug/health']
    .map((path, i) => `berth-1  | {"level":30,"time":${at + i},"service":"berth","reqId":"p${i}","method":"GET","path":"${path}","route":"ops","status":503,"bytesIn":0,"bytesOut":20,"durationMs":0.3,"host":"hub.example.com","scheme":"http","client":"10.0.0.9","peer":"10.0.0.9","msg":"request"}`)
    .join('\n');
  const report = explainLogs([{ name: healthy.name, text: `${healthy.text.trimEnd()}\n${probes}\n` }]);
  assert.equal(report.exitCode, 0, renderText(report));
  assert.ok(report.sessions.every((s) => s.verdict === 'ok' && s.timeline.every((e) => !/^\/(readyz|healthz|metrics|debug)/.test(e.path ?? ''))));
});

test('the classic case names dropped credentials and the Host rewrite, citing the PUT lines', () => {
  const report = explainLogs([load('m2-hostport-containerd.log')]);
  assert.equal(report.sessions.length, 1);
  const s = report.sessions[0]!;
  assert.equal(s.kind, 'push');
  assert.equal(s.repository, 'team/app');
  assert.equal(s.client, '203.0.113.9');
  const [m2] = report.findings;
  assert.match(m2!.title, /Credentials dropped on PUT/);
  assert.match(m2!.title, /hub\.example\.com:443/);
  assert.ok(m2!.fix.some((f) => f.includes('proxy_set_header Host $http_host;')));
  assert.ok(m2!.fix.some((f) => f.includes('externalURL')));
  assert.deepEqual(m2!.evidence.map((e) => e.line).filter((l) => l >= 12), [12, 13]);
  assert.equal(s.failingStep?.line, 12);
});

test('the same logs split into an nginx file and a registry file give the same diagnosis', () => {
  const text = load('m2-hostport-containerd.log').text.split('\n').filter(Boolean);
  const nginx = text.filter((l) => l.startsWith('nginx')).map((l) => l.replace(/^\S+\s*\| /, '')).join('\n');
  const registry = text.filter((l) => l.startsWith('registry')).map((l) => l.replace(/^\S+\s*\| /, '')).join('\n');
  const report = explainLogs([{ name: 'access.log', text: nginx }, { name: 'registry.log', text: registry }]);
  assert.deepEqual(report.findings.map((f) => f.mechanism), ['M2']);
  assert.ok(report.findings[0]!.evidence.some((e) => e.file === 'access.log') && report.findings[0]!.evidence.some((e) => e.file === 'registry.log'));
});

test('real Distribution output (text and JSON) folds its several lines per request into one event', () => {
  const json = parseInputs([load('real-distribution-json.log')]);
  const reqs = json.events.filter((e) => e.method);
  assert.deepEqual(reqs.map((e) => `${e.method} ${e.status} ${e.role}`), ['POST 202 registry', 'PUT 201 registry', 'PATCH 404 registry']);
  assert.match(reqs[1]!.query ?? '', /&digest=sha256:/);
  assert.equal(reqs[0]!.host, 'hub.example.com:443');
  assert.match(reqs[2]!.error ?? '', /blob upload invalid/);
  const text = parseInputs([load('real-distribution-text.log')]);
  const put = text.events.find((e) => e.method === 'PUT')!;
  assert.equal(put.status, 401);
  assert.equal(put.auth, 'bearer');
  assert.equal(text.events.find((e) => e.method === 'POST')!.auth, 'none');
  assert.equal(text.stats[0]!.skipped, 0);
});

test('unparseable lines are skipped and counted; nothing parseable gives exit code 2', () => {
  const mixed = explainLogs([{ name: 'x.log', text: `garbage line\n${load('healthy-pull-harbor.log').text}\n<html>oops</html>\n` }]);
  assert.equal(mixed.skippedLines, 2);
  assert.equal(mixed.exitCode, 0);
  const none = explainLogs([{ name: 'y.log', text: 'hello\nworld\n' }]);
  assert.equal(none.exitCode, 2);
});

function cli(args: string[], input?: string) {
  return spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/berth.js'), 'logs', 'explain', ...args], { cwd: REPO_ROOT, input, encoding: 'utf8' });
}

test('the CLI prints the verdict and exits 1 / 0 / 2', () => {
  const bad = cli([path.join(DIR, 'm2-hostport-containerd.log')]);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stdout, /Verdict: M2 — Credentials dropped on PUT/);
  assert.match(bad.stdout, /proxy_set_header Host \$http_host;/);
  const ok = cli([path.join(DIR, 'healthy-push-berth.log')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /Verdict: OK/);
  const junk = cli(['-'], 'not a log line\n');
  assert.equal(junk.status, 2);
  const json = cli(['--json', '-'], load('m7-body-too-large.log').text);
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stdout).findings.map((f: { mechanism: string }) => f.mechanism), ['M7']);
});

/** One raw HTTP request to Berth with exactly the headers given (Host included). */
function send(url: string, method: string, p: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, method, path: p, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a real Berth log: a healthy upload is OK, an upload finished without credentials is named M2', async (t) => {
  const berth = await startBerth({ adminPassword: 'secret123' });
  t.after(() => berth.stop());
  const basic = `Basic ${Buffer.from('admin:secret123').toString('base64')}`;
  const host = `127.0.0.1:${berth.port}`;
  const blob = Buffer.from('logs explain test blob');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  async function push(agent: string, hostHeader: string, dropOnPut: boolean) {
    const tok = await send(berth.url, 'GET', '/service/token?service=berth&scope=repository:team/app:pull,push', { Host: hostHeader, Authorization: basic, 'User-Agent': agent });
    assert.equal(tok.status, 200, tok.body);
    const bearer = `Bearer ${(JSON.parse(tok.body) as { token: string }).token}`;
    const start = await send(berth.url, 'POST', '/v2/team/app/blobs/uploads/', { Host: hostHeader, Authorization: bearer, 'User-Agent': agent });
    assert.equal(start.status, 202, start.body);
    const loc = new URL(String(start.headers.location), `http://${hostHeader}`);
    const put = await send(berth.url, 'PUT', `${loc.pathname}${loc.search ? `${loc.search}&` : '?'}digest=${digest}`, { Host: hostHeader, 'User-Agent': agent, ...(dropOnPut ? {} : { Authorization: bearer }) }, blob);
    assert.equal(put.status, dropOnPut ? 401 : 201, put.body);
  }
  await push('skopeo/1.13.3', host, false);
  await push('containerd/1.7.24', 'hub.example.com:443', true);
  await new Promise((r) => setTimeout(r, 300));
  const log = readFileSync(berth.logFile, 'utf8');
  const copy = path.join(mkdtempSync(path.join(tmpdir(), 'berth-logs-')), 'berth.log');
  writeFileSync(copy, log);
  const report = explainLogs([{ name: copy, text: log }]);
  const skopeo = report.sessions.find((s) => s.userAgent === 'skopeo/1.13.3')!;
  const containerd = report.sessions.find((s) => s.userAgent === 'containerd/1.7.24')!;
  assert.equal(skopeo.verdict, 'ok', JSON.stringify(skopeo.timeline));
  assert.ok(containerd.mechanisms.includes('M2'), JSON.stringify(report.findings));
  const out = cli([copy]);
  assert.equal(out.status, 1);
  assert.match(out.stdout, /Credentials dropped on PUT .*hub\.example\.com:443/);
});

// Harbor's bundled nginx logs `$remote_addr - "$request" $status $body_bytes_sent "$http_referer"
// "$http_user_agent" $request_time $upstream_response_time $pipe`: no user, no time.
const HARBOR_M2 = 'm2-hostport-harbor-compose.log';
const stripCompose = (text: string) => text.split('\n').map((l) => l.replace(/^[\w.-]+\s*\| /, '')).join('\n');

test('Harbor compose logs: every nginx line is parsed, borrows its time, and keeps its place between the other services', () => {
  const { events, stats } = parseInputs([load(HARBOR_M2)]);
  assert.deepEqual({ parsed: stats[0]!.parsed, skipped: stats[0]!.skipped, ignored: stats[0]!.ignored }, { parsed: 12, skipped: 0, ignored: 4 });
  const nginx = events.filter((e) => e.format === 'nginx-harbor');
  assert.deepEqual(nginx.map((e) => `${e.method} ${e.status}`), ['HEAD 401', 'POST 405', 'GET 200', 'HEAD 404', 'POST 202', 'PUT 401']);
  assert.ok(nginx.every((e) => e.role === 'proxy' && e.timeFrom === 'neighbour' && e.client === '172.20.31.7'));
  assert.match(nginx[0]!.userAgent ?? '', /containerd-client\/2\.1\.4.*\\\(linux\\\)\)$/, 'nginx escapes (\\x5C) are undone');
  // Times come from the nearest dated line above: harbor-core's (line 3) for the first three, the registry's after that.
  assert.equal(new Date(nginx[0]!.time).toISOString(), '2025-10-29T15:38:21.000Z');
  assert.equal(new Date(nginx[5]!.time).toISOString(), '2025-10-29T15:38:24.000Z');
  const lines = events.map((e) => e.line);
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b), 'one file keeps its line order');
  assert.ok(!events.some((e) => /portal|registryctl/.test(e.source)), 'portal and registryctl lines lend their time only');
});

test('Harbor behind a proxy that sends Host $host:$server_port: M2, citing the registry lines, with a fix a Harbor admin can apply', () => {
  const report = explainLogs([load(HARBOR_M2)]);
  assert.equal(report.exitCode, 1);
  assert.equal(report.sessions.length, 1);
  const s = report.sessions[0]!;
  assert.equal(s.kind, 'push');
  assert.equal(s.repository, 'ml/trainer');
  assert.equal(s.failingStep?.line, 15, 'the PUT without credentials fails; the token POST answered 405 does not');
  assert.ok(s.timeline.some((t) => t.method === 'POST' && t.path === '/service/token' && t.status === 405));
  const [m2] = report.findings;
  assert.equal(m2!.mechanism, 'M2');
  assert.match(m2!.title, /Credentials dropped on PUT .*in front of Harbor rewrote Host to cr\.lab\.example:443/);
  const registry = m2!.evidence.filter((e) => e.source === 'registry');
  assert.ok(registry.length >= 1 && registry.every((e) => /Host=cr\.lab\.example:443/.test(e.text)), JSON.stringify(m2!.evidence));
  assert.deepEqual(m2!.evidence.map((e) => e.line), [7, 10, 14, 15]);
  assert.ok(!m2!.evidence.some((e) => e.line === 5), 'the 405 on POST /service/token is not evidence of anything');
  assert.match(m2!.explanation, /from 172\.20\.31\.7, while the registry names the client 198\.51\.100\.77: that is the proxy/);
  assert.match(m2!.fix[0]!, /proxy in front of Harbor/);
  assert.match(m2!.fix[0]!, /replace `proxy_set_header Host \$host:\$server_port;` with `proxy_set_header Host \$http_host;`/);
  assert.match(m2!.fix[0]!, /`proxy_set_header Host \$host;`, the name without the port/);
  assert.ok(m2!.fix.some((f) => /Berth/.test(f) && /externalURL/.test(f)));
});

test('the same Harbor format for a healthy push is OK (405 on the token POST, then GET, is the normal fallback)', () => {
  const report = explainLogs([load('healthy-push-harbor-compose.log')]);
  assert.equal(report.exitCode, 0);
  assert.deepEqual(report.findings, []);
  assert.equal(report.sessions.length, 1);
  assert.equal(report.sessions[0]!.verdict, 'ok');
  assert.equal(report.sessions[0]!.failingStep, undefined);
  assert.deepEqual(report.sessions[0]!.timeline.filter((t) => t.source === 'nginx').map((t) => t.status), [401, 405, 200, 404, 202, 201, 201]);
});

test('Harbor logs without the compose prefix give the same diagnosis', () => {
  const report = explainLogs([{ name: 'harbor.log', text: stripCompose(load(HARBOR_M2).text) }]);
  assert.deepEqual([...new Set(report.findings.map((f) => f.mechanism))], ['M2']);
  const m2 = report.findings[0]!;
  assert.match(m2.title, /Host to cr\.lab\.example:443/);
  assert.ok(m2.evidence.some((e) => e.line === 15 && e.source === 'nginx'));
  assert.ok(m2.evidence.some((e) => e.source === 'registry' && /Host=cr\.lab\.example:443/.test(e.text)));
  const { events } = parseInputs([{ name: 'harbor.log', text: stripCompose(load(HARBOR_M2).text) }]);
  assert.ok(events.filter((e) => e.format === 'nginx-harbor').every((e) => e.role === 'proxy'), 'a file with logrus lines does not make Harbor nginx lines the registry\'s');
});

test('Harbor nginx lines with no timestamp anywhere are still parsed and ordered by position', () => {
  const lone = explainLogs([{ name: 'lone.log', text: '172.20.31.7 - "GET /v2/ HTTP/1.1" 401 76 "-" "docker/28.4.0 go/go1.24.7 os/linux arch/amd64" 0.001 0.001 .\n' }]);
  assert.deepEqual([lone.parsedLines, lone.skippedLines, lone.exitCode], [1, 0, 0]);
  assert.equal(lone.sessions.length, 1);
  assert.equal(lone.sessions[0]!.start, '?');
  assert.deepEqual(lone.sessions[0]!.timeline.map((t) => [t.time, t.timeFrom, t.method, t.status]), [['?', 'position', 'GET', 401]]);
  // Only the nginx lines of the failing push: no time at all, yet the push is followed step by step.
  const nginxOnly = load(HARBOR_M2).text.split('\n').filter((l) => l.startsWith('nginx')).map((l) => l.replace(/^nginx\s*\| /, '')).join('\n');
  const report = explainLogs([{ name: 'proxy.log', text: nginxOnly }]);
  assert.equal(report.parsedLines, 6);
  const s = report.sessions[0]!;
  assert.deepEqual(s.timeline.map((t) => t.line), [1, 2, 3, 4, 5, 6]);
  assert.ok(s.timeline.every((t) => t.time === '?'));
  assert.equal(s.failingStep?.line, 6);
  assert.deepEqual(report.findings.map((f) => f.mechanism), ['M2']);
  assert.match(report.findings[0]!.fix[0]!, /proxy in front of Harbor/);
  assert.match(renderText(report), /no time logged \(lines in file order\)/);
});

test('a time stamp before a Harbor nginx line (`docker compose logs -t`, syslog) is its time', () => {
  const ua = '"docker/28.4.0 go/go1.24.7 os/linux arch/amd64"';
  const stamped = parseInputs([{ name: 't.log', text: `nginx  | 2025-10-29T15:38:25.250118402Z 172.20.31.7 - "GET /v2/ HTTP/1.1" 401 76 "-" ${ua} 0.001 0.001 .\n` }]);
  assert.equal(new Date(stamped.events[0]!.time).toISOString(), '2025-10-29T15:38:25.250Z');
  assert.equal(stamped.events[0]!.timeFrom, undefined);
  const syslog = parseInputs([{ name: 'proxy.log', text: [
    `Oct 29 15:38:24 172.18.0.1 core[9]: 2025-10-29T15:38:24Z [INFO] [/server/middleware/log/log.go:30]: start`,
    `Oct 29 15:38:25 172.18.0.1 proxy[7]: 172.20.31.7 - "GET /v2/ HTTP/1.1" 401 76 "-" ${ua} 0.001 0.001 .`,
  ].join('\n') }]);
  const nginx = syslog.events.find((e) => e.format === 'nginx-harbor')!;
  assert.equal(new Date(nginx.time).toISOString(), '2025-10-29T15:38:25.000Z', 'the year comes from the dated line');
});

test('a push refused by the quota is a quota problem naming project, usage, quota and size — never a permission one', () => {
  const report = explainLogs([load('quota-exceeded-berth.log')]);
  assert.deepEqual(report.findings.map((f) => f.mechanism), ['quota']);
  const [q] = report.findings;
  assert.match(q!.title, /project "team"/);
  assert.match(q!.title, /812345 of 1000000 bytes used, 1400000 more needed/);
  assert.match(q!.explanation, /793\.3 KiB \(812345 bytes\) of its 976\.6 KiB \(1000000 bytes\) quota/);
  assert.match(q!.explanation, /1\.3 MiB \(1400000 bytes\)/);
  assert.deepEqual(q!.evidence.map((e) => e.line), [6]);
  assert.equal(q!.fix.length, 3);
  assert.match(q!.fix[0]!, /berth project update team --quota 3MiB/);
  assert.match(q!.fix[1]!, /delete/);
  assert.match(q!.fix[2]!, /another project/);
  assert.ok(!q!.fix.some((f) => /grant|member|role|permission/i.test(f)), 'no permission advice');
  assert.doesNotMatch(q!.explanation, /permission problem/);
  assert.match(renderText(report), /Verdict: QUOTA — Storage quota exceeded in project "team"/);
});

test('older quota lines (DENIED with only the text) are quota too; a plain DENIED stays a permission problem', () => {
  const line = load('quota-exceeded-berth.log').text.trim().split('\n').at(-1)!;
  const obj = JSON.parse(line) as Record<string, unknown>;
  const text = (obj.diagnosis as { message: string }).message;
  const variants = {
    message: { ...obj, diagnosis: undefined, message: text },
    stringDiagnosis: { ...obj, diagnosis: text },
    otherCode: { ...obj, diagnosis: { code: 'denied', message: text } },
  };
  for (const [name, v] of Object.entries(variants)) {
    const report = explainLogs([{ name: `${name}.log`, text: JSON.stringify(v) }]);
    assert.deepEqual(report.findings.map((f) => f.mechanism), ['quota'], name);
    assert.match(report.findings[0]!.title, /project "team": .* \(812345 of 1000000 bytes used, 1400000 more needed\)/, name);
  }
  const plain = explainLogs([{ name: 'plain.log', text: JSON.stringify({ ...obj, diagnosis: undefined }) }]);
  assert.deepEqual(plain.findings.map((f) => f.mechanism), ['other']);
  assert.match(plain.findings[0]!.explanation, /permission problem/);
});

test('the CLI explains the Harbor compose log', () => {
  const out = cli([path.join(DIR, HARBOR_M2)]);
  assert.equal(out.status, 1, out.stderr);
  assert.match(out.stdout, /Verdict: M2 — Credentials dropped on PUT/);
  assert.match(out.stdout, /proxy in front of Harbor/);
  assert.match(out.stdout, /4 from services outside the push path/);
});
