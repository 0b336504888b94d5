// GC after deleting half of 1,000 images (issue 14): every remaining image pulls byte-identical,
// storage shrinks by exactly the deleted images' unique bytes, and the project's quota usage
// matches what remains. Runs on this process's backend (test/postgres-s3/gc-half.test.ts: PG + S3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../../src/config/schema.ts';
import { openBlobStore } from '../../src/storage/index.ts';
import { api, expectStatus } from '../support/api.ts';
import { backendConfig, testBackend } from '../support/backend.ts';
import { MEDIA } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';

const IMAGES = 1000;
const GRACE_SECONDS = 1;
const AUTH = adminBasic();
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Pushed {
  repo: string;
  tag: string;
  manifest: Buffer<ArrayBuffer>;
  blobs: Buffer<ArrayBuffer>[];
}

async function post(url: string, repo: string, bytes: Buffer<ArrayBuffer>): Promise<void> {
  const head = await fetch(`${url}/v2/${repo}/blobs/${sha256(bytes)}`, { method: 'HEAD', headers: { Authorization: AUTH } });
  if (head.status === 200) return;
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, { method: 'POST', headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream' }, body: bytes });
  assert.equal(res.status, 201, await res.text());
}

/** Sum of the sizes of every blob in storage, and their number (a listing through the server's own driver). */
async function storedBytes(dataDir: string): Promise<{ bytes: number; count: number }> {
  const store = await openBlobStore(configSchema.parse({ dataDir, ...(await backendConfig(dataDir)) }));
  try {
    let bytes = 0;
    let count = 0;
    for (let after: string | undefined; ; ) {
      const page = await store.listBlobs(after, 1000);
      for (const b of page) {
        bytes += b.size;
        count++;
      }
      if (page.length < 1000) return { bytes, count };
      after = page.at(-1)!.digest;
    }
  } finally {
    await store.close();
  }
}

test(`GC after deleting half of ${IMAGES} images (${testBackend()}): the rest pulls byte-identical; storage and quota shrink by exactly the unique bytes`, { timeout: 600_000 }, async () => {
  const server = await startTestServer({ gc: { grace: GRACE_SECONDS }, jobs: { pollInterval: 1 } });
  try {
    const url = server.url;
    const base = [Buffer.from(randomBytes(8192)), Buffer.from(randomBytes(16384))];
    const images: Pushed[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', image: i }));
      const unique = Buffer.from(randomBytes(1024 + (i % 7) * 512));
      const layers = [base[Math.floor(i / 2) % 2]!, unique];
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          config: { mediaType: MEDIA.ociConfig, digest: sha256(config), size: config.length },
          layers: layers.map((l) => ({ mediaType: MEDIA.ociLayer, digest: sha256(l), size: l.length })),
        }),
      );
      images.push({ repo: `half/app${i % 10}`, tag: `v${i}`, manifest, blobs: [config, ...layers] });
    }
    for (let i = 0; i < images.length; i += 25) {
      await Promise.all(
        images.slice(i, i + 25).map(async (image) => {
          for (const blob of image.blobs) await post(url, image.repo, blob);
          const res = await fetch(`${url}/v2/${image.repo}/manifests/${image.tag}`, { method: 'PUT', headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest }, body: image.manifest });
          assert.equal(res.status, 201, await res.text());
        }),
      );
    }
    const before = await storedBytes(server.dataDir);
    const usageBefore = (await expectStatus<{ usageBytes: number }>(await api(url, 'GET', '/projects/half', { auth: AUTH }), 200)).usageBytes;
    assert.equal(usageBefore, before.bytes, 'one project holds everything: its usage is what storage holds');

    // Delete every odd image: their configs, unique layers and manifests are theirs alone.
    const deleted = images.filter((_, i) => i % 2 === 1);
    const kept = images.filter((_, i) => i % 2 === 0);
    for (let i = 0; i < deleted.length; i += 25) {
      await Promise.all(
        deleted.slice(i, i + 25).map(async (image) => {
          const res = await fetch(`${url}/v2/${image.repo}/manifests/${sha256(image.manifest)}`, { method: 'DELETE', headers: { Authorization: AUTH } });
          assert.equal(res.status, 202, await res.text());
        }),
      );
    }
    const uniqueBytes = deleted.reduce((sum, image) => sum + image.manifest.length + image.blobs[0]!.length + image.blobs[2]!.length, 0);
    const uniqueCount = deleted.length * 3;

    await sleep((GRACE_SECONDS + 1) * 1000);
    const started = await expectStatus<{ id: number }>(await api(url, 'POST', '/system/gc', { auth: AUTH, body: {} }), 201);
    let run: Record<string, unknown>;
    for (;;) {
      run = await expectStatus(await api(url, 'GET', `/system/gc/${started.id}`, { auth: AUTH }), 200);
      if (['succeeded', 'failed', 'cancelled'].includes(run.state as string)) break;
      await sleep(200);
    }
    assert.equal(run.state, 'succeeded', JSON.stringify(run));

    const after = await storedBytes(server.dataDir);
    assert.equal(before.bytes - after.bytes, uniqueBytes, 'storage shrank by exactly the deleted images\' unique bytes');
    assert.equal(before.count - after.count, uniqueCount);
    const usageAfter = (await expectStatus<{ usageBytes: number }>(await api(url, 'GET', '/projects/half', { auth: AUTH }), 200)).usageBytes;
    assert.equal(usageAfter, after.bytes, 'quota usage matches what storage holds');

    for (let i = 0; i < kept.length; i += 25) {
      await Promise.all(
        kept.slice(i, i + 25).map(async (image) => {
          const res = await fetch(`${url}/v2/${image.repo}/manifests/${image.tag}`, { headers: { Authorization: AUTH, Accept: MEDIA.ociManifest } });
          assert.ok(Buffer.from(await res.arrayBuffer()).equals(image.manifest), `${image.repo}:${image.tag} manifest byte-identical`);
          for (const blob of image.blobs) {
            const b = await fetch(`${url}/v2/${image.repo}/blobs/${sha256(blob)}`, { headers: { Authorization: AUTH } });
            assert.ok(Buffer.from(await b.arrayBuffer()).equals(blob), `${image.repo}: blob of ${image.tag} byte-identical`);
          }
        }),
      );
    }
    for (const image of deleted.slice(0, 20)) {
      const res = await fetch(`${url}/v2/${image.repo}/blobs/${sha256(image.blobs[2]!)}`, { method: 'HEAD', headers: { Authorization: AUTH } });
      assert.equal(res.status, 404, 'a deleted image\'s unique layer is gone');
    }
  } finally {
    await server.close();
  }
});
