// `berth logs explain` over REAL logs: what nginx, Berth and the reference registry (Distribution
// 2.8) wrote while ctr, docker and skopeo pushed through the proxy matrix's topologies
// (test/fixtures/logs/real-matrix/, captured by test/support/capture-logs.ts). Each case's expected
// verdict is derived from the topology that produced it (PUSH_EXPECTATIONS in topologies.ts — the
// facts the matrix asserts), never from what the explainer printed: a disagreement here is a finding
// about the explainer, not an expectation to adjust.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explainLogs, renderText } from '../../src/diagnose/logs/report.ts';
import type { CorpusCase } from '../support/capture-logs.ts';
import { TOPOLOGIES, expectedPush } from '../support/topologies.ts';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'logs', 'real-matrix');
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { cases: CorpusCase[] };
const inputsOf = (c: CorpusCase) => c.files.map((name) => ({ name: `${c.name}/${name}`, text: readFileSync(path.join(DIR, c.name, name), 'utf8') }));

describe('the real-log corpus is what the topologies say', () => {
  test('every topology is covered, against Berth and the reference registry, plus the LAN', () => {
    const covered = new Set(manifest.cases.map((c) => `${c.topology?.id ?? 'lan'}/${c.registry}`));
    for (const spec of TOPOLOGIES) for (const registry of ['berth', 'ref']) assert.ok(covered.has(`${spec.id}/${registry}`), `t${spec.id} against ${registry}`);
    assert.ok(covered.has('lan/berth'));
  });

  test('each expectation is the topology\'s (not a copy that drifted) and the client\'s own outcome agrees with it', () => {
    for (const c of manifest.cases) {
      const spec = TOPOLOGIES.find((s) => s.id === c.topology?.id);
      if (c.topology) {
        assert.ok(spec && spec.slug === c.topology.slug, `${c.name}: topology ${c.topology.id} is ${spec?.slug}`);
        const want = expectedPush(c.topology.id, c.registry, c.client);
        assert.equal(c.expected, want.outcome === 'pass' ? 'OK' : want.outcome, c.name);
        assert.equal(c.why, want.why, c.name);
        // The matrix's own split: Berth survives exactly the survivable topologies.
        if (c.registry === 'berth') assert.equal(want.outcome === 'pass', spec.survivable, c.name);
        if (want.outcome !== 'pass') assert.ok(spec.mechanisms.includes(want.outcome), `${c.name}: ${want.outcome} is one of t${spec.id}'s mechanisms`);
      } else {
        assert.equal(c.expected, 'OK', c.name);
      }
      assert.equal(c.push, c.expected === 'OK' ? 'pass' : 'failed', `${c.name}: the client's outcome (${c.clientSaid ?? 'pass'})`);
    }
  });
});

describe('logs explain on real logs names the mechanism the topology causes', () => {
  for (const c of manifest.cases) {
    test(`${c.name}: ${c.expected} — ${c.why}`, () => {
      const report = explainLogs(inputsOf(c));
      const text = renderText(report);
      const mine = report.sessions.filter((s) => s.repository === c.repository);
      assert.ok(mine.length > 0, `a session for ${c.repository}:\n${text}`);
      const got = [...new Set(report.findings.map((f) => f.mechanism))].sort();
      if (c.expected === 'OK') {
        assert.deepEqual(got, [], `the push passed, so nothing may be blamed:\n${text}`);
        assert.ok(report.sessions.every((s) => s.verdict === 'ok'), text);
        assert.ok(mine.some((s) => s.kind === 'push'), `the push is seen as one:\n${text}`);
        assert.equal(report.exitCode, 0, text);
      } else {
        // Each finding must name the expected mechanism: as its verdict, or — where the logs hold
        // nothing that tells two apart (t4 and t6 against the reference registry leave the same
        // lines: neither nginx's combined format nor Distribution's info lines record the port or
        // the Location) — as an alternative the report states it cannot rule out.
        const candidates = report.findings.map((f) => [f.mechanism, ...(f.alternatives ?? [])]);
        assert.ok(candidates.length > 0 && candidates.every((names) => names.includes(c.expected as never)), `expected ${c.expected} (got ${got.join(', ')}):\n${text}`);
        assert.ok(got.length === 1, `one mechanism blamed:\n${text}`);
        assert.ok(mine.some((s) => s.verdict === 'failed'), text);
        assert.equal(report.exitCode, 1, text);
      }
    });
  }
});

test('every line of the real corpus parses', () => {
  for (const c of manifest.cases) {
    const report = explainLogs(inputsOf(c));
    const skipped = report.inputs.flatMap((i) => i.skippedSamples.map((s) => `${i.name}:${s.line}: ${s.text}`));
    assert.equal(report.skippedLines, 0, `${c.name}:\n${skipped.join('\n')}`);
  }
});
