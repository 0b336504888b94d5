// Quota usage is what a project's artifacts reference: deleting an artifact (through the API or
// /v2 by digest) or a whole repository lowers it at once by exactly the bytes nothing else in the
// project references; blobs shared within the project stay counted, other projects are unaffected;
// an index takes its unheld children with it; a push that did not fit before fits afterwards.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serverQuery } from '../support/backend.ts';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import {
  descriptorOf,
  digestOf,
  expectError,
  imageManifest,
  indexManifest,
  manifestBytes,
  pushBlob,
  pushManifest,
  putManifest,
  randomBlob,
  MEDIA,
  type Descriptor,
} from '../support/oci.ts';
import { api, expectStatus } from '../support/api.ts';

const admin = adminBasic();

/** An image built from given layers (a fresh config each time), pushed by `push`. */
interface Image {
  digest: string;
  bytes: Buffer<ArrayBuffer>;
  descriptor: Descriptor;
  config: Buffer<ArrayBuffer>;
  layers: Buffer<ArrayBuffer>[];
}

function image(layers: Buffer<ArrayBuffer>[]): Image {
  const config = randomBlob(100);
  const bytes = manifestBytes(imageManifest({ config: descriptorOf(MEDIA.ociConfig, config), layers: layers.map((l) => descriptorOf(MEDIA.ociLayer, l)) }));
  return { digest: digestOf(bytes), bytes, descriptor: { mediaType: MEDIA.ociManifest, digest: digestOf(bytes), size: bytes.length }, config, layers };
}

describe('quota usage falls when artifacts and repositories are deleted', () => {
  let server: TestServer;
  let url: string;

  before(async () => {
    server = await startTestServer();
    url = server.url;
  });
  after(() => server.close());

  async function createProject(name: string, quotaBytes: number | null): Promise<void> {
    await expectStatus(await api(url, 'POST', '/projects', { auth: admin, body: { name, quotaBytes } }), 201);
  }
  async function usage(project: string): Promise<number> {
    return (await expectStatus<{ usageBytes: number }>(await api(url, 'GET', `/projects/${project}`, { auth: admin }), 200)).usageBytes;
  }
  async function push(repository: string, img: Image, reference = img.digest): Promise<void> {
    await pushBlob(url, repository, img.config);
    for (const layer of img.layers) await pushBlob(url, repository, layer);
    await pushManifest(url, repository, reference, img.bytes, MEDIA.ociManifest);
  }
  async function blobStatus(repository: string, digest: string): Promise<number> {
    const res = await fetch(`${url}/v2/${repository}/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: admin } });
    return res.status;
  }
  async function manifestStatus(repository: string, reference: string): Promise<number> {
    const res = await fetch(`${url}/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { Authorization: admin, Accept: `${MEDIA.ociManifest}, ${MEDIA.ociIndex}` } });
    return res.status;
  }
  /** Checks, in the database, that every manifest and every blob it lists is counted, and usage is their sum. */
  async function assertAccountingConsistent(): Promise<void> {
    const uncounted = await serverQuery(
      server.dataDir,
      `SELECT r.name, x.digest FROM (
         SELECT repository_id, digest FROM manifests
         UNION SELECT repository_id, child_digest AS digest FROM manifest_references WHERE kind = 'blob'
       ) x JOIN repositories r ON r.id = x.repository_id
       WHERE NOT EXISTS (SELECT 1 FROM project_blobs pb WHERE pb.project_id = r.project_id AND pb.digest = x.digest)`,
    );
    assert.deepEqual(uncounted, [], 'every manifest and every blob a manifest lists is counted in its project');
    const sums = await serverQuery(
      server.dataDir,
      `SELECT p.id, (SELECT COALESCE(SUM(size), 0) FROM project_blobs WHERE project_id = p.id) AS counted,
              (SELECT COALESCE(SUM(bytes), 0) FROM project_usage WHERE project_id = p.id) AS used FROM projects p`,
    );
    // PostgreSQL returns bigint sums as strings.
    for (const row of sums) assert.equal(Number(row.used), Number(row.counted), `usage of project ${String(row.id)} is the sum of what it counts`);
  }

  test('API: deleting an artifact frees exactly its unique bytes; deleting the repositories frees the rest; a refused push then fits', async () => {
    const shared = randomBlob(3000);
    const a = image([shared, randomBlob(2000)]);
    const b = image([shared, randomBlob(1500)]);
    const c = image([shared, randomBlob(500)]);
    await createProject('p', null);
    await createProject('q', null);
    await push('p/app', a, 'a');
    await push('p/app', b, 'b');
    await push('p/other', c, 'c');
    // The same layer in another project is counted there too, independently.
    const d = image([shared]);
    await push('q/app', d, 'd');
    const size = (img: Image) => img.bytes.length + img.config.length + img.layers.reduce((n, l) => n + l.length, 0);
    const full = size(a) + size(b) - shared.length + size(c) - shared.length;
    assert.equal(await usage('p'), full);
    const qUsage = await usage('q');
    assert.equal(qUsage, size(d));

    // Over the quota now: a 4000-byte blob does not fit.
    await expectStatus(await api(url, 'PATCH', '/projects/p', { auth: admin, body: { quotaBytes: full + 1000 } }), 200);
    const big = randomBlob(4000);
    const refused = await fetch(`${url}/v2/p/new/blobs/uploads/?digest=${encodeURIComponent(digestOf(big))}`, { method: 'POST', headers: { Authorization: admin }, body: big });
    await expectError(refused, 403, 'DENIED');

    // Artifact a: its manifest, config and own layer go; the shared layer stays (b and c list it).
    assert.equal((await api(url, 'DELETE', `/repositories/p/app/artifacts/${a.digest}`, { auth: admin })).status, 204);
    assert.equal(await usage('p'), full - (a.bytes.length + a.config.length + a.layers[1]!.length));
    assert.equal(await blobStatus('p/app', digestOf(a.layers[1]!)), 404, 'a blob no artifact references is no longer served');
    assert.equal(await blobStatus('p/app', digestOf(a.config)), 404);
    assert.equal(await blobStatus('p/app', digestOf(shared)), 200, 'the shared layer is still served');
    // Deleting a tag does not delete an artifact: usage stays.
    assert.equal((await api(url, 'DELETE', '/repositories/p/app/tags/b', { auth: admin })).status, 204);
    assert.equal(await usage('p'), full - (a.bytes.length + a.config.length + a.layers[1]!.length));

    // The whole repository: only what p/other references stays counted.
    assert.equal((await api(url, 'DELETE', '/repositories/p/app', { auth: admin })).status, 204);
    assert.equal(await usage('p'), size(c));
    assert.equal(await blobStatus('p/other', digestOf(shared)), 200);
    assert.equal((await api(url, 'DELETE', '/repositories/p/other', { auth: admin })).status, 204);
    assert.equal(await usage('p'), 0, 'a project whose repositories are all deleted uses nothing');

    // Project q never noticed.
    assert.equal(await usage('q'), qUsage);
    assert.equal(await blobStatus('q/app', digestOf(shared)), 200);

    // The push refused before now fits.
    assert.equal(await pushBlob(url, 'p/new', big), digestOf(big));
    assert.equal(await usage('p'), big.length);
    await assertAccountingConsistent();
  });

  test('/v2: DELETE of a manifest by digest frees its unique bytes; by tag it frees nothing; pushed again it counts again, within the quota', async () => {
    const shared = randomBlob(2000);
    const a = image([shared, randomBlob(1000)]);
    const b = image([shared]);
    await createProject('v2del', null);
    await push('v2del/app', a, 'a');
    await push('v2del/app', b, 'b');
    const full = await usage('v2del');
    assert.equal(full, a.bytes.length + a.config.length + 3000 + b.bytes.length + b.config.length);

    const byTag = await fetch(`${url}/v2/v2del/app/manifests/a`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(byTag.status, 202);
    assert.equal(await usage('v2del'), full, 'the artifact is still there, reachable by digest');

    const byDigest = await fetch(`${url}/v2/v2del/app/manifests/${a.digest}`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(byDigest.status, 202);
    const unique = a.bytes.length + a.config.length + 1000;
    assert.equal(await usage('v2del'), full - unique);
    await assertAccountingConsistent();

    // Pushed again (the repository kept the links, as Distribution does until GC): counted again.
    await pushManifest(url, 'v2del/app', 'a', a.bytes, MEDIA.ociManifest);
    assert.equal(await usage('v2del'), full);
    assert.equal(await blobStatus('v2del/app', digestOf(a.layers[1]!)), 200, 'served again once referenced again');
    await fetch(`${url}/v2/v2del/app/manifests/${a.digest}`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(await usage('v2del'), full - unique);

    // Bringing released blobs back counts against the quota like uploading them.
    await expectStatus(await api(url, 'PATCH', '/projects/v2del', { auth: admin, body: { quotaBytes: full - unique + a.bytes.length + 10 } }), 200);
    const denied = await expectError(await putManifest(url, 'v2del/app', 'a', a.bytes, MEDIA.ociManifest), 403, 'DENIED');
    assert.match(denied.errors[0]!.message, /quota exceeded: project "v2del"/);
    assert.equal(await usage('v2del'), full - unique, 'nothing of the refused push is counted');
    assert.equal(await manifestStatus('v2del/app', 'a'), 404);
    await assertAccountingConsistent();
  });

  test('an index takes its unheld children with it; a tagged child stays; pending uploads stay counted; a blob delete frees an unreferenced blob', async () => {
    await createProject('multi', null);
    const amd = image([randomBlob(700)]);
    const arm = image([randomBlob(800)]);
    const kept = image([randomBlob(900)]);
    await push('multi/app', amd);
    await push('multi/app', arm);
    await push('multi/app', kept, 'kept');
    const idx = manifestBytes(indexManifest({ manifests: [amd.descriptor, arm.descriptor, kept.descriptor] }));
    await pushManifest(url, 'multi/app', 'latest', idx, MEDIA.ociIndex);
    // A blob uploaded for a push not finished yet.
    const pending = randomBlob(600);
    await pushBlob(url, 'multi/app', pending);
    const size = (img: Image) => img.bytes.length + img.config.length + img.layers.reduce((n, l) => n + l.length, 0);
    assert.equal(await usage('multi'), idx.length + size(amd) + size(arm) + size(kept) + pending.length);

    const del = await fetch(`${url}/v2/multi/app/manifests/${digestOf(idx)}`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(del.status, 202);
    assert.equal(await manifestStatus('multi/app', amd.digest), 404, 'an untagged child goes with its index');
    assert.equal(await manifestStatus('multi/app', arm.digest), 404);
    assert.equal(await manifestStatus('multi/app', 'kept'), 200, 'a tagged child stays');
    assert.equal(await usage('multi'), size(kept) + pending.length);
    assert.equal(await blobStatus('multi/app', digestOf(pending)), 200, 'a pending upload stays counted and served');

    const blobDel = await fetch(`${url}/v2/multi/app/blobs/${digestOf(pending)}`, { method: 'DELETE', headers: { Authorization: admin } });
    assert.equal(blobDel.status, 202);
    assert.equal(await usage('multi'), size(kept));
    await assertAccountingConsistent();
  });

  test('pushes racing deletes end with every manifest fully counted, or a clean MANIFEST_BLOB_UNKNOWN', async () => {
    await createProject('race', 50_000_000);
    const shared = randomBlob(5000);
    for (let round = 0; round < 15; round++) {
      const a = image([shared, randomBlob(300)]);
      const b = image([shared, randomBlob(300)]);
      await push('race/app', a, 'a');
      await pushBlob(url, 'race/app', b.config);
      await pushBlob(url, 'race/app', b.layers[1]!);
      if (round % 3 === 2) await pushBlob(url, 'race/app', shared);
      const results = await Promise.all([
        fetch(`${url}/v2/race/app/manifests/${a.digest}`, { method: 'DELETE', headers: { Authorization: admin } }).then(async (r) => [r.status, await r.text()] as const),
        putManifest(url, 'race/app', 'b', b.bytes, MEDIA.ociManifest).then(async (r) => [r.status, await r.text()] as const),
        round % 2 === 0
          ? fetch(`${url}/v2/race/app/blobs/${digestOf(shared)}`, { method: 'DELETE', headers: { Authorization: admin } }).then(async (r) => [r.status, await r.text()] as const)
          : Promise.resolve([202, ''] as const),
      ]);
      assert.equal(results[0][0], 202, results[0][1]);
      // The manifest is stored (and then fully counted) or refused cleanly because a blob it lists was deleted.
      assert.ok(results[1][0] === 201 || (results[1][0] === 404 && results[1][1].includes('MANIFEST_BLOB_UNKNOWN')), `${results[1][0]} ${results[1][1]}`);
      assert.ok(results[2][0] === 202 || results[2][0] === 404, `${results[2][0]} ${results[2][1]}`);
      await assertAccountingConsistent();
      if (results[1][0] === 201) {
        // Unless the blob itself was deleted from the repository (allowed, as in Distribution), it is served.
        if (round % 2 === 1) assert.equal(await blobStatus('race/app', digestOf(shared)), 200, 'a stored manifest\'s blobs are served');
        await fetch(`${url}/v2/race/app/manifests/${b.digest}`, { method: 'DELETE', headers: { Authorization: admin } });
      }
    }
    await assertAccountingConsistent();
    assert.equal((await api(url, 'DELETE', '/repositories/race/app', { auth: admin })).status, 204);
    assert.equal(await usage('race'), 0);
  });
});
