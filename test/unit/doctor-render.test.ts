// The doctor's text report keeps every line within the terminal's width, losing nothing.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderReport } from '../../src/diagnose/doctor/render.ts';
import type { DoctorReport, Exchange } from '../../src/diagnose/doctor/types.ts';
import { layoutTable, wrap } from '../../src/diagnose/doctor/wrap.ts';

const digest = `sha256:${'ab12'.repeat(16)}`;
const exchange = (method: string, url: string, status: number, headers: Record<string, string> = {}): Exchange =>
  ({ method, url, auth: 'bearer', bodyBytes: 0, chunked: false, status, headers, durationMs: 1 });

/** A report with everything long: URLs, challenges, notes, evidence, fixes. */
function longReport(): DoctorReport {
  const base = 'https://registry.a-rather-long-host-name.example.com:8443';
  const challenge = `Bearer realm="http://registry.a-rather-long-host-name.example.com:443/service/token",service="registry.a-rather-long-host-name.example.com",scope="repository:team/app:pull,push",error="insufficient_scope"`;
  return {
    target: base,
    registry: { kind: 'berth', version: '0.1.0', auth: 'bearer', tokenExpiresIn: 1800, bodyLimit: { largestPassed: 512 * 1024, firstFailed: 1024 ** 2 + 1 } },
    steps: [
      { id: 'ping', title: 'ping GET /v2/', exchange: exchange('GET', `${base}/v2/`, 401, { 'www-authenticate': challenge }), ok: true },
      { id: 'realm', title: 'token realm', ok: false, note: 'realm uses http:// while the registry is https://: credentials would travel in clear text, or hit a redirect' },
      { id: 'layer-put', title: 'PUT layer ?digest (Location moved onto the typed origin)', exchange: exchange('PUT', `${base}/v2/team/a-long-repository-name/with/many/components/blobs/uploads/0123456789abcdef0123456789abcdef?_state=${'x'.repeat(300)}&digest=${encodeURIComponent(digest)}`, 201, { location: `${base}/v2/team/app/blobs/${digest}` }), ok: true },
      { id: 'delete-manifest', title: 'DELETE manifest by digest', exchange: exchange('DELETE', `${base}/v2/team/app/manifests/${digest}`, 403), ok: false, note: `not deleted: DELETE answered 403 DENIED: requested access to the resource is denied: delete on repository team/app (${'a'.repeat(120)})` },
    ],
    findings: [{
      mechanism: 'CLEANUP',
      severity: 'problem',
      title: 'the doctor could not delete 2 things it made',
      evidence: [`left behind: manifest team/app@${digest} (tag doctor-1796417462630) — DELETE answered 403 DENIED`, `left behind: layer blob ${digest} in team/app — kept: the manifest that references it could not be deleted`],
      fix: 'As a user who may delete in project team (maintainer or projectAdmin; the portal does the same): `DELETE /api/v1/repositories/team/app/artifacts/' + digest + '` (the probe and its tag); or run the doctor with --repository in a project where you may delete.',
      clients: ['containerd', 'docker', 'containers-image'],
    }],
    cleanup: { removed: [`config blob ${digest} in team/app`], leftBehind: [{ what: `manifest team/app@${digest} (tag doctor-1796417462630)`, why: 'DELETE answered 403 DENIED' }] },
    verdict: `push and pull work, but the doctor left behind what it could not delete: manifest team/app@${digest} (tag doctor-1796417462630) — DELETE answered 403 DENIED. Fix: …`,
    exitCode: 1,
  };
}

const squeeze = (text: string): string => text.replace(/\s+/g, '');

describe('report width', () => {
  for (const width of [200, 120, 100, 80, 60, 40]) {
    test(`every line fits ${width} columns`, () => {
      const lines = renderReport(longReport(), width);
      const long = lines.filter((l) => l.length > width);
      assert.deepEqual(long, [], `lines over ${width}:\n${long.join('\n')}`);
    });
  }

  test('80 columns by default (not a terminal)', () => {
    assert.ok(renderReport(longReport()).every((l) => l.length <= 80));
  });

  test('nothing is lost by wrapping: every note, evidence, fix and the verdict are there in full', () => {
    const report = longReport();
    const text = squeeze(renderReport(report, 80).join(''));
    for (const s of report.steps) {
      assert.ok(text.includes(squeeze(s.title)), s.title);
      if (s.note) assert.ok(text.includes(squeeze(s.note)), s.note);
    }
    for (const e of report.findings[0]!.evidence) assert.ok(text.includes(squeeze(e)), e);
    assert.ok(text.includes(squeeze(report.findings[0]!.fix)));
    assert.ok(text.includes(squeeze(report.verdict)));
  });

  test('a wide terminal keeps the one-line table with STEP, SENT and GOT columns', () => {
    const lines = renderReport(longReport(), 400);
    assert.ok(lines.some((l) => /^#\s+STEP\s+SENT\s+GOT$/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^1\s+✓\s+ping GET \/v2\/\s+GET \/v2\/ \[bearer\]\s+401 WWW-Authenticate: /.test(l)));
  });

  test('at 80 columns one block per step: title, what was sent, → what came back, ↳ the note', () => {
    const lines = renderReport(longReport(), 80);
    const at = lines.findIndex((l) => /^1 ✓ ping GET \/v2\/$/.test(l));
    assert.ok(at >= 0, lines.join('\n'));
    assert.equal(lines[at + 1], '    GET /v2/ [bearer]');
    assert.match(lines[at + 2]!, /^ {4}→ 401 WWW-Authenticate: Bearer/);
    assert.ok(lines.some((l) => /^ {4}↳ realm uses http:\/\//.test(l)));
  });
});

describe('wrap and layoutTable', () => {
  test('wrap breaks at spaces, hangs the indent, and cuts over-long words after / ? & , ; = :', () => {
    assert.deepEqual(wrap('fix: one two three four', 12, '  '), ['  fix: one', '  two three', '  four']);
    assert.deepEqual(wrap('a b', 10, 'x: ', '   '), ['x: a b']);
    const url = 'https://hub.example.com/v2/team/app/blobs/uploads/abc?_state=xyz&digest=sha256%3A0123';
    const lines = wrap(url, 30, '  ', '    ');
    assert.ok(lines.every((l) => l.length <= 30), lines.join('\n'));
    assert.equal(lines.map((l) => l.trim()).join(''), url);
    assert.match(lines[0]!, /\/$/, 'the first cut is after a slash');
    assert.deepEqual(wrap('', 20, 'note: '), ['note:']);
  });

  test('layoutTable keeps natural widths when they fit, else shrinks the long columns first', () => {
    const rows = [['#', 'A', 'B'], ['1', 'short', 'a much longer cell that has to wrap somewhere']];
    assert.deepEqual(layoutTable(rows, 100, [0])!.widths, [1, 5, 45]);
    const narrow = layoutTable(rows, 30, [0], 5)!;
    assert.deepEqual(narrow.widths, [1, 5, 20]);
    assert.ok(narrow.row(rows[1]!).every((l) => l.length <= 30));
    assert.equal(layoutTable(rows, 12, [0], 8), undefined, 'too narrow for readable columns');
  });
});
