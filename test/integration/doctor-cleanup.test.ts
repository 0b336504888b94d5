// `berth doctor` as different accounts against a real Berth: it deletes everything it made (an
// administrator's probe project included) and never more; an account that may not push is told so,
// with the fix; an account that may push but not delete gets exit 1 listing exactly what stayed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DoctorReport, mainFinding, runDoctor } from '../../src/diagnose/doctor/index.ts';
import { renderReport } from '../../src/diagnose/doctor/render.ts';
import { api, expectStatus } from '../support/api.ts';
import { EMPTY_JSON, MEDIA, artifactManifest, descriptorOf, manifestBytes, pushBlob, pushManifest, randomBlob } from '../support/oci.ts';
import { ADMIN_PASSWORD, adminBasic, startTestServer, type TestServer } from '../support/server.ts';

/** Prints the report when an assertion fails; every line must fit 80 columns. */
function check(report: DoctorReport, assertions: () => void): void {
  try {
    const long = renderReport(report, 80).filter((line) => line.length > 80);
    assert.deepEqual(long, [], 'every line of the report fits 80 columns');
    assertions();
  } catch (error) {
    console.error(renderReport(report).join('\n'));
    throw error;
  }
}

describe('berth doctor cleans up after itself, as whoever runs it', () => {
  let berth: TestServer;

  before(async () => {
    berth = await startTestServer();
    await expectStatus(await api(berth.url, 'POST', '/projects', { auth: adminBasic(), body: { name: 'team' } }), 201);
  });
  after(() => berth.close());

  /** A user made through the management API, with `role` in the project `team` when given; returns the password. */
  async function user(name: string, role?: string): Promise<string> {
    const password = `${name}-password-1`;
    await expectStatus(await api(berth.url, 'POST', '/users', { auth: adminBasic(), body: { username: name, password } }), 201);
    if (role) await expectStatus(await api(berth.url, 'POST', '/projects/team/members', { auth: adminBasic(), body: { username: name, role } }), 201);
    return password;
  }

  test('a user without any project role: "may not push", the fix names --repository; exit 2, nothing made', async () => {
    const password = await user('carol');
    const report = await runDoctor({ url: berth.url, username: 'carol', password });
    check(report, () => {
      assert.equal(report.exitCode, 2, report.verdict);
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'DENIED');
      assert.equal(main!.title, 'carol may not push to berth-doctor/probe');
      assert.match(main!.fix, /run with --repository <a project you can push to>\//i);
      assert.match(main!.fix, /ask a project admin of berth-doctor for the developer role/);
      assert.ok(main!.evidence.some((e) => / → 403$/.test(e)), main!.evidence.join('\n'));
      assert.ok(main!.evidence.some((e) => /DENIED/.test(e) && /berth-doctor\/probe/.test(e)), 'the registry\'s own refusal is quoted');
      assert.ok(main!.evidence.some((e) => /the token grants nothing/.test(e)), 'what the token service granted is shown');
      assert.match(report.verdict, /carol may not push to berth-doctor\/probe\. Fix: Run with --repository/);
      assert.doesNotMatch(report.verdict, /cannot name|stopped early/);
      assert.deepEqual(report.cleanup, { removed: [], leftBehind: [] });
      assert.ok(!report.steps.some((s) => s.id.startsWith('body-')), 'no body probe where pushing is refused');
    });
  });

  test('--repository in a project where the user is maintainer: only the probe is deleted, the team\'s artifact and shared config stay', async () => {
    const password = await user('mia', 'maintainer');
    // An artifact of the team's own, with the empty config the probe uses too.
    await pushBlob(berth.url, 'team/app', EMPTY_JSON);
    const layer = randomBlob(512);
    await pushBlob(berth.url, 'team/app', layer);
    const own = manifestBytes(artifactManifest({ artifactType: 'application/vnd.example.doctor-test', layers: [descriptorOf(MEDIA.ociLayer, layer)] }));
    const ownDigest = await pushManifest(berth.url, 'team/app', 'keep', own, MEDIA.ociManifest);
    const report = await runDoctor({ url: berth.url, username: 'mia', password, repository: 'team/app' });
    check(report, () => {
      assert.equal(report.exitCode, 0, report.verdict);
      assert.deepEqual(report.cleanup.leftBehind, []);
      const probe = report.cleanup.removed.find((r) => r.startsWith('manifest team/app@sha256:'));
      assert.match(probe ?? '', /^manifest team\/app@sha256:[0-9a-f]{64} \(tag doctor-\d+\)$/, report.cleanup.removed.join('\n'));
      assert.ok(!report.cleanup.removed.some((r) => r.startsWith('config blob')), 'the empty config was there before the run: it stays');
      assert.ok(!report.cleanup.removed.some((r) => r.startsWith('repository') || r.startsWith('project')), 'the repository and project were there before the run');
      assert.ok(renderReport(report).some((l) => l.startsWith('deleted again: manifest team/app@sha256:')), 'the report says what it deleted');
    });
    const artifacts = await expectStatus<{ items: { digest: string; tags: string[] }[] }>(await api(berth.url, 'GET', '/repositories/team/app/artifacts', { auth: adminBasic() }), 200);
    assert.deepEqual(artifacts.items.map((a) => [a.digest, a.tags]), [[ownDigest, ['keep']]], 'only the team\'s own artifact is left');
    const config = await fetch(`${berth.url}/v2/team/app/blobs/${descriptorOf(MEDIA.ociEmpty, EMPTY_JSON).digest}`, { headers: { Authorization: adminBasic() } });
    assert.equal(config.status, 200, 'the shared empty config is still there');
  });

  test('--repository as a developer (may push, not delete): never healthy; exit 1 lists the artifact by digest and tag, with the 403', async () => {
    const password = await user('dave', 'developer');
    const report = await runDoctor({ url: berth.url, username: 'dave', password, repository: 'team/dave' });
    check(report, () => {
      assert.equal(report.exitCode, 1, report.verdict);
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'CLEANUP');
      assert.doesNotMatch(report.verdict, /healthy/);
      const manifest = report.cleanup.leftBehind.find((l) => l.what.startsWith('manifest '));
      assert.match(manifest?.what ?? '', /^manifest team\/dave@sha256:[0-9a-f]{64} \(tag doctor-\d+\)$/, JSON.stringify(report.cleanup));
      assert.match(manifest!.why, /403 DENIED/);
      assert.ok(report.cleanup.leftBehind.some((l) => /^layer blob sha256:[0-9a-f]{64} in team\/dave$/.test(l.what)));
      assert.ok(report.cleanup.leftBehind.some((l) => l.what.startsWith('repository team/dave') && /403/.test(l.why)), 'the repository the run created stays too');
      assert.ok(report.verdict.includes(manifest!.what), 'the verdict names the artifact exactly');
      assert.match(main!.fix, /DELETE \/api\/v1\/repositories\/team\/dave`/);
      assert.ok(main!.evidence.some((e) => e.startsWith(`left behind: ${manifest!.what} — `)));
    });
    const artifacts = await expectStatus<{ items: { digest: string; tags: string[] }[] }>(await api(berth.url, 'GET', '/repositories/team/dave/artifacts', { auth: adminBasic() }), 200);
    assert.equal(artifacts.items.length, 1);
    assert.ok(report.cleanup.leftBehind.some((l) => l.what.includes(artifacts.items[0]!.digest) && l.what.includes(artifacts.items[0]!.tags[0]!)), 'what is reported is what is there');
  });

  test('a project over its quota: named as such (not "may not push"), exit 2, the unfinished upload deleted', async () => {
    await expectStatus(await api(berth.url, 'POST', '/projects', { auth: adminBasic(), body: { name: 'tiny', quotaBytes: 100 } }), 201);
    const report = await runDoctor({ url: berth.url, username: 'admin', password: ADMIN_PASSWORD, repository: 'tiny/probe' });
    check(report, () => {
      assert.equal(report.exitCode, 2, report.verdict);
      const main = mainFinding(report.findings);
      assert.equal(main?.mechanism, 'DENIED');
      assert.equal(main!.title, 'pushing to tiny/probe is refused: the project is over its quota');
      assert.match(main!.fix, /berth project update tiny --quota/);
      assert.ok(main!.evidence.some((e) => /quota exceeded/.test(e)), main!.evidence.join('\n'));
      assert.deepEqual(report.cleanup.leftBehind, []);
      assert.ok(report.cleanup.removed.some((r) => r.startsWith('an unfinished upload session /v2/tiny/probe/blobs/uploads/')), report.cleanup.removed.join('\n'));
    });
  });
});
