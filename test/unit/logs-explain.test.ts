import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { explainLogs } from '../../src/diagnose/logs/report.ts';
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
};

test('every mechanism fixture yields its mechanism(s); healthy ones yield none', () => {
  const fixtures = readdirSync(DIR).filter((f) => !f.startsWith('real-'));
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
