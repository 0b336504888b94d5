// Project quotas with a real client: skopeo pushes an image over the quota and is refused with a
// message naming quota, usage and size; the project's usage and contents stay as they were. Then
// an image that fits is pushed and counted once, however many times its blobs are pushed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { ClientFailure, pushPullSkopeo, type RegistryTarget } from '../support/clients.ts';
import { createRandomImage, type RandomImage } from '../support/images.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { ensurePackages, E2E_PACKAGES } from '../support/system.ts';

const PROJECT = 'quota-team';
const QUOTA = 1_000_000;

describe('project quota enforced on a real push', { timeout: 5 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let berth: BerthServer;
  let failed = false;

  const admin = () => `Basic ${Buffer.from(`admin:${berth.adminPassword}`).toString('base64')}`;
  async function project(): Promise<{ usageBytes: number; quotaBytes: number }> {
    const res = await fetch(`${berth.url}/api/v1/projects/${PROJECT}`, { headers: { Authorization: admin() } });
    assert.equal(res.status, 200);
    return (await res.json()) as { usageBytes: number; quotaBytes: number };
  }
  async function tags(repository: string): Promise<string[]> {
    const token = await fetch(`${berth.url}/service/token?service=berth&scope=repository:${repository}:pull`, { headers: { Authorization: admin() } });
    const res = await fetch(`${berth.url}/v2/${repository}/tags/list`, { headers: { Authorization: `Bearer ${((await token.json()) as { token: string }).token}` } });
    return res.status === 200 ? ((await res.json()) as { tags: string[] }).tags : [];
  }
  const target = (tag: string): RegistryTarget => ({ registryHost: `localhost:${berth.port}`, username: 'admin', password: berth.adminPassword, repository: `${PROJECT}/app`, tag, tls: 'plain' });
  async function image(layerSizes: number[]): Promise<RandomImage> {
    const made = await createRandomImage({ layerSizes });
    scratch.push(made.dir);
    return made;
  }

  before(async () => {
    failed = true;
    await ensurePackages(E2E_PACKAGES);
    berth = await startBerth({ registry });
    scratch.push(berth.dataDir, path.dirname(berth.logFile));
    const res = await fetch(`${berth.url}/api/v1/projects`, {
      method: 'POST',
      headers: { Authorization: admin(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: PROJECT, quotaBytes: QUOTA }),
    });
    assert.equal(res.status, 201, await res.text());
    failed = false;
  });
  after(async () => {
    await registry.stopAllAndClean(scratch, failed);
  });

  test('a push over the quota fails with the quota, usage and size named; nothing is stored', async () => {
    const before = await project();
    assert.equal(before.quotaBytes, QUOTA);
    let failure: ClientFailure | undefined;
    try {
      await pushPullSkopeo(target('too-big'), await image([1_400_000, 2_000]));
    } catch (err) {
      if (!(err instanceof ClientFailure)) throw err;
      failure = err;
    }
    assert.ok(failure, 'the push must fail');
    // skopeo prints the registry's message (inside its logrus line, so quotes come escaped).
    assert.match(failure.message, /denied: quota exceeded: project \\?"quota-team\\?" uses \d+ of 1000000 bytes; storing sha256:[0-9a-f]{64} \(\d+ bytes\) would bring it to \d+/);
    // Berth's own records tell it apart from a permission refusal, with the same figures.
    const figures = /uses (\d+) of 1000000 bytes; storing (sha256:[0-9a-f]{64}) \((\d+) bytes\)/.exec(failure.message);
    assert.ok(figures, failure.message);
    const [usageBytes, digest, sizeBytes] = [Number(figures[1]), figures[2]!, Number(figures[3])];
    const logged = (await readFile(berth.logFile, 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; error?: string; diagnosis?: Record<string, unknown> })
      .filter((l) => l.msg === 'request' && l.diagnosis?.code === 'quota-exceeded' && String(l.diagnosis.message).includes(`uses ${usageBytes} of 1000000 bytes; storing ${digest}`));
    assert.ok(logged.length > 0, 'the refused request\'s access-log line carries a quota-exceeded diagnosis');
    assert.equal(logged[0]!.error, 'DENIED');
    assert.deepEqual({ ...logged[0]!.diagnosis, message: undefined }, { code: 'quota-exceeded', message: undefined, project: PROJECT, quotaBytes: QUOTA, usageBytes, sizeBytes });
    const audit = await fetch(`${berth.url}/api/v1/audit?action=quota.exceeded&project=${PROJECT}`, { headers: { Authorization: admin() } });
    assert.equal(audit.status, 200);
    const events = ((await audit.json()) as { items: { success: boolean; project: string; detail?: Record<string, unknown> }[] }).items.filter((e) => e.detail?.digest === digest && e.detail.usageBytes === usageBytes);
    assert.ok(events.length > 0, 'the refusal is audited');
    assert.equal(events[0]!.success, false);
    assert.deepEqual(events[0]!.detail, { digest, quotaBytes: QUOTA, usageBytes, sizeBytes });
    const afterPush = await project();
    // Only the blobs that fitted (skopeo pushes layers in parallel; the small one may have landed).
    assert.ok(afterPush.usageBytes < QUOTA, `usage ${afterPush.usageBytes} stays under the quota`);
    assert.deepEqual(await tags(`${PROJECT}/app`), [], 'no tag was created');
  });

  test('an image that fits is pushed and counted once, however often its blobs arrive', async () => {
    const small = await image([30_000, 4_000]);
    await pushPullSkopeo(target('fits'), small);
    const first = await project();
    assert.ok(first.usageBytes > 30_000 && first.usageBytes < QUOTA, `usage ${first.usageBytes}`);
    // The same image under another tag: blobs and manifest are already counted.
    await pushPullSkopeo(target('fits-again'), small);
    const second = await project();
    assert.equal(second.usageBytes, first.usageBytes, 'deduplicated within the project');
    assert.deepEqual((await tags(`${PROJECT}/app`)).sort(), ['fits', 'fits-again']);
  });
});
