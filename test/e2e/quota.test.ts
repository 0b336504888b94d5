// Project quotas with a real client (skopeo), with every figure exact: what skopeo uploads is worked
// out beforehand (support/client-skopeo.ts skopeoPushPlan), so usage and sizes are known to the byte.
// A layer over the quota is refused with a message naming quota, usage and size, and is not stored;
// a push whose blobs fit but whose manifest does not is refused at the manifest and leaves no tag
// (one byte more of quota and it goes through); an image that fits is counted once, however many
// times its blobs are pushed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type BerthServer, startBerth } from '../support/berth.ts';
import { ClientFailure, pushPullSkopeo, type RegistryTarget } from '../support/clients.ts';
import { skopeoPushPlan, type SkopeoPushPlan } from '../support/client-skopeo.ts';
import { createRandomImage, type RandomImage } from '../support/images.ts';
import { digestOf } from '../support/oci.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { ensurePackages, E2E_PACKAGES } from '../support/system.ts';
import { until } from '../durability/wire.ts';

const PROJECT = 'quota-team';
const QUOTA = 1_000_000;
/** A blob pushed into the project first, so the usage a refusal names is not a trivial 0. */
const SEED_BYTES = 12_345;

describe('project quota enforced on a real push', { timeout: 5 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  let berth: BerthServer;
  let failed = false;

  const admin = () => `Basic ${Buffer.from(`admin:${berth.adminPassword}`).toString('base64')}`;
  async function createProject(name: string, quotaBytes: number): Promise<void> {
    const res = await fetch(`${berth.url}/api/v1/projects`, {
      method: 'POST',
      headers: { Authorization: admin(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, quotaBytes }),
    });
    assert.equal(res.status, 201, await res.text());
  }
  async function project(name = PROJECT): Promise<{ usageBytes: number; quotaBytes: number }> {
    const res = await fetch(`${berth.url}/api/v1/projects/${name}`, { headers: { Authorization: admin() } });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { usageBytes: number; quotaBytes: number };
  }
  const figures = (p: { usageBytes: number; quotaBytes: number }) => ({ quotaBytes: p.quotaBytes, usageBytes: p.usageBytes });
  /** GET /v2/<repository>/tags/list with a pull token: the status and the parsed body, never interpreted. */
  async function tagsList(repository: string): Promise<{ status: number; body: { name?: string; tags?: string[]; errors?: { code: string }[] } }> {
    const token = await fetch(`${berth.url}/service/token?service=berth&scope=repository:${repository}:pull`, { headers: { Authorization: admin() } });
    assert.equal(token.status, 200, await token.clone().text());
    const res = await fetch(`${berth.url}/v2/${repository}/tags/list`, { headers: { Authorization: `Bearer ${((await token.json()) as { token: string }).token}` } });
    return { status: res.status, body: (await res.json()) as { name?: string; tags?: string[]; errors?: { code: string }[] } };
  }
  /** Status of HEAD /v2/<repository>/blobs/<digest> (or manifests/<reference>). */
  async function headStatus(repository: string, kind: 'blobs' | 'manifests', reference: string): Promise<number> {
    const res = await fetch(`${berth.url}/v2/${repository}/${kind}/${reference}`, { method: 'HEAD', headers: { Authorization: admin() } });
    await res.arrayBuffer();
    return res.status;
  }
  const target = (repository: string, tag: string): RegistryTarget => ({ registryHost: `localhost:${berth.port}`, username: 'admin', password: berth.adminPassword, repository, tag, tls: 'plain' });
  async function image(layerSizes: number[]): Promise<{ image: RandomImage; plan: SkopeoPushPlan }> {
    const made = await createRandomImage({ layerSizes });
    scratch.push(made.dir);
    return { image: made, plan: await skopeoPushPlan(made) };
  }
  const blobBytes = (plan: SkopeoPushPlan) => plan.config.size + plan.layers.reduce((sum, l) => sum + l.size, 0);
  /** skopeo's push of `made` to `to`, which must fail; returns the failure. */
  async function refusedPush(to: RegistryTarget, made: RandomImage): Promise<ClientFailure> {
    try {
      await pushPullSkopeo(to, made);
    } catch (err) {
      if (!(err instanceof ClientFailure)) throw err;
      return err;
    }
    assert.fail(`the push to ${to.repository}:${to.tag} must fail`);
  }
  /**
   * The refusal with these exact figures as skopeo shows it (inside its logrus line, quotes
   * escaped), in Berth's access log (a quota-exceeded diagnosis on a DENIED request) and audit log
   * (whose detail names the tag of a refused manifest).
   */
  async function assertRefusal(failure: ClientFailure, r: { project: string; quotaBytes: number; usageBytes: number; digest: string; sizeBytes: number; tag?: string }): Promise<void> {
    const expected = `quota exceeded: project "${r.project}" uses ${r.usageBytes} of ${r.quotaBytes} bytes; storing ${r.digest} (${r.sizeBytes} bytes) would bring it to ${r.usageBytes + r.sizeBytes}`;
    const shown = failure.message.replaceAll('\\"', '"');
    assert.ok(shown.includes(`denied: ${expected}`), `skopeo shows "denied: ${expected}":\n${failure.message}`);
    // Berth's own records tell it apart from a permission refusal, with the same figures.
    const refusals = async () =>
      (await readFile(berth.logFile, 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; error?: string; diagnosis?: Record<string, unknown> })
        .filter((l) => l.msg === 'request' && l.diagnosis?.code === 'quota-exceeded' && String(l.diagnosis.message).includes(`storing ${r.digest}`));
    // The access-log line is written as the response goes out, maybe just after skopeo read it.
    await until(async () => (await refusals()).length > 0, 'the refused request\'s access-log line is written', 5_000);
    const logged = await refusals();
    assert.equal(logged.length, 1, 'the refused request\'s access-log line carries a quota-exceeded diagnosis');
    assert.equal(logged[0]!.error, 'DENIED');
    assert.deepEqual(logged[0]!.diagnosis, { code: 'quota-exceeded', message: expected, project: r.project, quotaBytes: r.quotaBytes, usageBytes: r.usageBytes, sizeBytes: r.sizeBytes });
    const audit = await fetch(`${berth.url}/api/v1/audit?action=quota.exceeded&project=${r.project}`, { headers: { Authorization: admin() } });
    assert.equal(audit.status, 200);
    const events = ((await audit.json()) as { items: { success: boolean; project: string; detail?: Record<string, unknown> }[] }).items.filter((e) => e.detail?.digest === r.digest);
    assert.equal(events.length, 1, 'the refusal is audited once');
    assert.equal(events[0]!.success, false);
    assert.equal(events[0]!.project, r.project);
    assert.deepEqual(events[0]!.detail, { digest: r.digest, quotaBytes: r.quotaBytes, usageBytes: r.usageBytes, sizeBytes: r.sizeBytes, ...(r.tag ? { tag: r.tag } : {}) });
  }

  before(async () => {
    failed = true;
    await ensurePackages(E2E_PACKAGES);
    berth = await startBerth({ registry });
    scratch.push(berth.dataDir, path.dirname(berth.logFile));
    await createProject(PROJECT, QUOTA);
    // Usage of exactly SEED_BYTES, in a repository of its own.
    const seed = randomBytes(SEED_BYTES);
    const res = await fetch(`${berth.url}/v2/${PROJECT}/seed/blobs/uploads/?digest=${digestOf(seed)}`, { method: 'POST', headers: { Authorization: admin() }, body: seed });
    assert.equal(res.status, 201, await res.text());
    assert.deepEqual(figures(await project()), { quotaBytes: QUOTA, usageBytes: SEED_BYTES });
    failed = false;
  });
  after(async () => {
    await registry.stopAllAndClean(scratch, failed);
  });

  test('a layer over the quota is refused with the quota, usage and size named; nothing is stored', async () => {
    // One layer: skopeo uploads layers before the config and the manifest, so the refused layer is
    // the first thing the push tries to store and the usage it meets is exactly the seed's.
    const { image: big, plan } = await image([1_400_000]);
    const layer = plan.layers[0]!;
    assert.ok(SEED_BYTES + layer.size > QUOTA, `the compressed layer (${layer.size} bytes) does not fit`);
    const failure = await refusedPush(target(`${PROJECT}/app`, 'too-big'), big);
    await assertRefusal(failure, { project: PROJECT, quotaBytes: QUOTA, usageBytes: SEED_BYTES, digest: layer.digest, sizeBytes: layer.size });
    // The refused blob is not there (nor anything else of the image), the usage is the seed's to the byte.
    assert.equal(await headStatus(`${PROJECT}/app`, 'blobs', layer.digest), 404, 'the refused layer is not stored');
    assert.equal(await headStatus(`${PROJECT}/app`, 'blobs', plan.config.digest), 404, 'the config was never sent');
    assert.equal(await headStatus(`${PROJECT}/app`, 'manifests', plan.manifestDigest), 404, 'no manifest');
    assert.equal((await project()).usageBytes, SEED_BYTES);
    // Nothing at all was stored in the repository, so it does not exist (its tag list is not an empty 200).
    const listed = await tagsList(`${PROJECT}/app`);
    assert.equal(listed.status, 404, JSON.stringify(listed.body));
    assert.equal(listed.body.errors?.[0]?.code, 'NAME_UNKNOWN');
  });

  test('a push whose blobs fit but whose manifest does not is refused at the manifest and leaves no tag', async () => {
    const { image: made, plan } = await image([20_000, 3_000]);
    const blobs = blobBytes(plan);
    const edge = 'quota-edge';
    // Room for every blob and all but one byte of the manifest.
    const quota = blobs + plan.manifest.length - 1;
    await createProject(edge, quota);
    const failure = await refusedPush(target(`${edge}/app`, 'edge'), made);
    await assertRefusal(failure, { project: edge, quotaBytes: quota, usageBytes: blobs, digest: plan.manifestDigest, sizeBytes: plan.manifest.length, tag: 'edge' });
    // The blobs went in (and are counted); the manifest did not, by tag or by digest.
    for (const blob of [plan.config, ...plan.layers]) assert.equal(await headStatus(`${edge}/app`, 'blobs', blob.digest), 200, `blob ${blob.digest} stored`);
    assert.equal(await headStatus(`${edge}/app`, 'manifests', plan.manifestDigest), 404);
    assert.equal(await headStatus(`${edge}/app`, 'manifests', 'edge'), 404);
    assert.deepEqual(figures(await project(edge)), { quotaBytes: quota, usageBytes: blobs });
    // The repository exists (it holds the blobs) and has no tag.
    assert.deepEqual(await tagsList(`${edge}/app`), { status: 200, body: { name: `${edge}/app`, tags: [] } });

    // One byte more of quota is exactly enough: the same push goes through and fills it.
    const patch = await fetch(`${berth.url}/api/v1/projects/${edge}`, { method: 'PATCH', headers: { Authorization: admin(), 'Content-Type': 'application/json' }, body: JSON.stringify({ quotaBytes: quota + 1 }) });
    assert.equal(patch.status, 200, await patch.text());
    const pushed = await pushPullSkopeo(target(`${edge}/app`, 'edge'), made);
    assert.equal(pushed.manifestDigest, plan.manifestDigest, 'skopeo pushed the manifest worked out beforehand');
    assert.deepEqual(figures(await project(edge)), { quotaBytes: quota + 1, usageBytes: quota + 1 });
    assert.deepEqual(await tagsList(`${edge}/app`), { status: 200, body: { name: `${edge}/app`, tags: ['edge'] } });
  });

  test('an image that fits is pushed and counted once, however often its blobs arrive', async () => {
    const { image: small, plan } = await image([30_000, 4_000]);
    const pushed = await pushPullSkopeo(target(`${PROJECT}/app`, 'fits'), small);
    assert.equal(pushed.manifestDigest, plan.manifestDigest, 'skopeo pushed the manifest worked out beforehand');
    const counted = SEED_BYTES + blobBytes(plan) + plan.manifest.length;
    assert.equal((await project()).usageBytes, counted, 'seed + config + layers + manifest');
    // The same image under another tag: blobs and manifest are already counted.
    await pushPullSkopeo(target(`${PROJECT}/app`, 'fits-again'), small);
    assert.equal((await project()).usageBytes, counted, 'deduplicated within the project');
    assert.deepEqual(await tagsList(`${PROJECT}/app`), { status: 200, body: { name: `${PROJECT}/app`, tags: ['fits', 'fits-again'] } });
  });
});
