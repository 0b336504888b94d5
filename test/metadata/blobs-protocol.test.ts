// The protocol that lets garbage collection sweep while pushes go on (src/metadata/blobs.ts), on
// both databases: every interleaving of a push's steps (claim, write, record) with a sweep's
// (condemn, delete bytes, forget) ends with the push kept or refused cleanly — never a manifest
// whose content was condemned. On PostgreSQL the two really run at once, ordered by row locks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { RegistryError } from '../../src/domain/errors.ts';
import type { Metadata } from '../../src/metadata/index.ts';
import { DIALECTS, withMetadataOn } from '../support/metadata.ts';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BlobService } from '../../src/registry/blobs.ts';
import { QuotaService } from '../../src/registry/quota.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const LAYER = digest('a');
const MANIFEST = digest('b');
/** A cutoff after every touch so far: grace 0, the harshest setting. */
const now = () => Date.now() + 1000;

/** A blob pushed the way the registry pushes one: claimed, (bytes written), recorded into `repo`. */
async function pushBlob(meta: Metadata, repo: string, blob: string, size = 10): Promise<void> {
  await meta.blobs.claim(blob, size);
  const repositoryId = await meta.repositories.ensure(repo);
  const projectId = (await meta.projects.find(repo.split('/')[0]!))!.id;
  await meta.uploads.complete(undefined, { repositoryId, projectId, digest: blob, size });
}

/** Records manifest `manifest` listing `layer` in `repo`, claimed first as the registry does. */
async function pushManifest(meta: Metadata, repo: string, manifest: string, layer: string, tag?: string): Promise<void> {
  await meta.blobs.claim(manifest, 100);
  const repositoryId = (await meta.repositories.id(repo))!;
  await meta.manifests.put({ repositoryId, digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100, references: [{ digest: layer, kind: 'blob' }], ...(tag ? { tag } : {}) });
}

function isCode(code: string, reason: string) {
  return (err: unknown) => err instanceof RegistryError && err.code === code && (err.detail as { reason?: string }).reason === reason;
}

for (const dialect of DIALECTS) {
  test(`${dialect}: a sweep never takes what a manifest references, and takes the blob of a deleted one with its counts`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      await pushBlob(meta, 'team/app', LAYER);
      await pushManifest(meta, 'team/app', MANIFEST, LAYER, 'v1');
      assert.deepEqual((await meta.blobs.condemn([LAYER, MANIFEST], now())).blobs, []);
      assert.deepEqual((await meta.blobs.candidates('', now(), 1000)).entries, []);

      const repositoryId = (await meta.repositories.id('team/app'))!;
      const projectId = (await meta.projects.find('team'))!.id;
      assert.equal(await meta.projects.usage(projectId), 110);
      await meta.manifests.delete(repositoryId, MANIFEST);
      assert.equal(await meta.projects.usage(projectId), 0, 'the deletion released the counts');
      // The deletion touched both: inside a grace period of a minute they stay.
      assert.deepEqual((await meta.blobs.candidates('', Date.now() - 60_000, 1000)).entries, []);
      const candidates = (await meta.blobs.candidates('', now(), 1000)).entries;
      assert.deepEqual(candidates.map((c) => c.digest).sort(), [LAYER, MANIFEST].sort());

      // A blob uploaded and never referenced is garbage too, with the project count it held.
      await pushBlob(meta, 'team/app', digest('c'), 7);
      assert.equal(await meta.projects.usage(projectId), 7);
      const condemned = await meta.blobs.condemn([LAYER, MANIFEST, digest('c')], now());
      assert.equal(condemned.blobs.length, 3);
      assert.deepEqual([...condemned.released], [[projectId, 7]]);
      assert.equal(await meta.projects.usage(projectId), 0, 'usage fell by exactly what the project stopped counting');
      assert.equal(await meta.repositories.blobSize(repositoryId, digest('c')), undefined, 'no longer served');
      assert.equal((await meta.repositories.blobSizes(repositoryId, [LAYER, digest('c')])).size, 0, 'links went with it: no manifest can list them');
      assert.deepEqual((await meta.blobs.deleting(10)).length, 3);
      await meta.blobs.forget(condemned.blobs.map((b) => b.digest));
      assert.deepEqual(await meta.blobs.known([LAYER, MANIFEST, digest('c')]), new Set());
    });
  });

  test(`${dialect}: candidates are found window by window, each window a bounded read however sparse the garbage`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      await pushBlob(meta, 'team/app', LAYER);
      await pushManifest(meta, 'team/app', MANIFEST, LAYER, 'v1');
      for (const c of ['c', 'd', 'e']) await pushBlob(meta, 'team/app', digest(c), 5);
      const found: string[] = [];
      let windows = 0;
      for (let after = '', done = false; !done; windows++) {
        const { entries, next } = await meta.blobs.candidates(after, now(), 2);
        assert.ok(entries.length <= 2);
        found.push(...entries.map((e) => e.digest));
        done = next === undefined;
        after = next ?? after;
      }
      assert.deepEqual(found, [digest('c'), digest('d'), digest('e')], 'the referenced layer and manifest are never candidates');
      assert.equal(windows, 3, '5 rows in windows of 2');
    });
  });

  test(`${dialect}: a push whose blob was condemned between its claim and its record is refused cleanly, and its claim waits for the sweep`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      await meta.projects.ensure('team', undefined);
      const repositoryId = await meta.repositories.ensure('team/app');
      const projectId = (await meta.projects.find('team'))!.id;
      // Claimed (bytes being written) — then condemned under grace 0 before the record.
      await meta.blobs.claim(LAYER, 10);
      assert.equal((await meta.blobs.condemn([LAYER], now())).blobs.length, 1);
      await assert.rejects(meta.uploads.complete(undefined, { repositoryId, projectId, digest: LAYER, size: 10 }), isCode('BLOB_UPLOAD_INVALID', 'collected-during-push'));
      assert.equal(await meta.repositories.blobSize(repositoryId, LAYER), undefined, 'nothing recorded');

      // Pushing it again waits while the bytes are deleted, then claims it anew.
      let claimed = false;
      const claim = meta.blobs.claim(LAYER, 10).then(() => (claimed = true));
      await sleep(150);
      assert.equal(claimed, false, 'waits while the row is deleting');
      await meta.blobs.forget([LAYER]);
      await claim;
      await meta.uploads.complete(undefined, { repositoryId, projectId, digest: LAYER, size: 10 });
      assert.equal(await meta.repositories.blobSize(repositoryId, LAYER), 10);

      // A manifest listing a blob condemned after the client checked it: MANIFEST_BLOB_UNKNOWN, nothing recorded.
      assert.equal((await meta.blobs.condemn([LAYER], now())).blobs.length, 1);
      await assert.rejects(pushManifest(meta, 'team/app', MANIFEST, LAYER, 'v1'), (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_BLOB_UNKNOWN');
      assert.equal(await meta.manifests.byTag(repositoryId, 'v1'), undefined);
      assert.equal(await meta.projects.usage(projectId), 0, 'the refused push left no count behind');
    });
  });
}

/** A connection of its own, as another replica's transaction. */
async function otherReplica(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

test('postgres: a push holding a blob row makes a concurrent sweep wait, and the sweep then sees its reference', async () => {
  await withMetadataOn('postgres', async (meta, place) => {
    await pushBlob(meta, 'team/app', LAYER);
    const repositoryId = (await meta.repositories.id('team/app'))!;
    await meta.blobs.claim(MANIFEST, 100);
    const push = await otherReplica(place.url!);
    try {
      // The push's transaction: holds the layer's row, records a manifest listing it, not committed yet.
      await push.query('BEGIN');
      await push.query('SELECT digest FROM blobs WHERE digest = $1 FOR UPDATE', [LAYER]);
      await push.query(`INSERT INTO manifests (repository_id, digest, media_type, size, created_at) VALUES ($1, $2, 'application/vnd.oci.image.manifest.v1+json', 100, 0)`, [repositoryId, MANIFEST]);
      await push.query(`INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, kind) VALUES ($1, $2, $3, 'blob')`, [repositoryId, MANIFEST, LAYER]);
      let settled = false;
      const sweep = meta.blobs.condemn([LAYER], now()).finally(() => (settled = true));
      await sleep(300);
      assert.equal(settled, false, 'the sweep waits for the push');
      await push.query('COMMIT');
      assert.deepEqual((await sweep).blobs, [], 'the committed reference keeps the blob');
      assert.equal((await meta.blobs.known([LAYER])).size, 1);
    } finally {
      await push.end();
    }
  });
});

test('postgres: a sweep holding a blob row makes a concurrent manifest push wait, and the push is then refused cleanly', async () => {
  await withMetadataOn('postgres', async (meta, place) => {
    await pushBlob(meta, 'team/app', LAYER);
    const gc = await otherReplica(place.url!);
    try {
      // The sweep's transaction on another replica: locked and marked the layer, not committed yet.
      await gc.query('BEGIN');
      await gc.query('SELECT digest FROM blobs WHERE digest = $1 FOR UPDATE', [LAYER]);
      await gc.query('UPDATE blobs SET deleting = 1 WHERE digest = $1', [LAYER]);
      await gc.query('DELETE FROM repository_blobs WHERE digest = $1', [LAYER]);
      let settled = false;
      const push = pushManifest(meta, 'team/app', MANIFEST, LAYER, 'v1').finally(() => (settled = true));
      push.catch(() => undefined);
      await sleep(300);
      assert.equal(settled, false, 'the push waits for the sweep');
      await gc.query('COMMIT');
      await assert.rejects(push, (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_BLOB_UNKNOWN');
      const repositoryId = (await meta.repositories.id('team/app'))!;
      assert.equal(await meta.manifests.byDigest(repositoryId, MANIFEST), undefined, 'no manifest points at the condemned layer');
    } finally {
      await gc.end();
    }
  });
});

test('a cross-repository mount of a blob garbage collection condemns meanwhile falls back to an upload, never an error', async () => {
  await withMetadataOn('sqlite', async (meta, place) => {
    const store = new FilesystemBlobStore(join(place.dataDir, 'storage'));
    await store.init();
    const blobs = new BlobService(store, meta, new QuotaService(meta));
    const bytes = Buffer.from('layer bytes');
    const layer = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await meta.blobs.claim(layer, bytes.length);
    await store.putSmall(layer, bytes);
    await pushBlob(meta, 'team/from', layer, bytes.length);
    assert.deepEqual(await blobs.mount('team/to', layer, 'team/from'), { digest: layer, size: bytes.length }, 'a live blob mounts');
    // The sweep's mark lands after the mount's checks (the source still serves it, storage still
    // has it) and before its record: the mount answers "not mounted", and the client uploads.
    await place.query('UPDATE blobs SET deleting = 1 WHERE digest = $1', [layer]);
    assert.equal(await blobs.mount('team/third', layer, 'team/from'), undefined);
    assert.equal(await meta.repositories.blobSize((await meta.repositories.id('team/third'))!, layer), undefined, 'nothing linked');
  });
});
