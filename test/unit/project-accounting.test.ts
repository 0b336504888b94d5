// Project accounting in the metadata layer: deletions release exactly what no artifact of the
// project references any more, in their own transaction; a manifest is recorded only together with
// the counting of everything it references, and only while that is still there. On SQLite and PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryError } from '../../src/domain/errors.ts';
import type { Metadata } from '../../src/metadata/index.ts';
import { completeUpload, DIALECTS, putManifest, withMetadataOn } from '../support/metadata.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Uploads a blob as the upload path records it: its row claimed, then charged and linked in one commit. */
async function upload(meta: Metadata, repository: string, d: string, size: number): Promise<number> {
  const repositoryId = await meta.repositories.ensure(repository);
  const projectId = (await meta.projects.find(repository.includes('/') ? repository.split('/')[0]! : 'library'))!.id;
  await meta.uploads.create(`s-${d.slice(7, 27)}-${repositoryId}`, repository, null, null);
  await completeUpload(meta, `s-${d.slice(7, 27)}-${repositoryId}`, { repositoryId, projectId, digest: d, size });
  return repositoryId;
}

/** A RegistryError of `code` (and of `reason`, when given: refusals of one code can have several causes). */
function rejectsWith(code: string, reason?: string) {
  return (err: unknown) => err instanceof RegistryError && err.code === code && (reason === undefined || (err.detail as { reason?: string } | undefined)?.reason === reason);
}

for (const dialect of DIALECTS) {
  test(`${dialect}: a deletion releases what no artifact of the project references; shared blobs and other projects stay`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const app = await upload(meta, 'team/app', digest('a'), 1000);
      await upload(meta, 'team/app', digest('s'), 5000);
      const other = await upload(meta, 'team/other', digest('s'), 5000);
      await upload(meta, 'elsewhere/app', digest('s'), 5000);
      const team = (await meta.projects.find('team'))!.id;
      const elsewhere = (await meta.projects.find('elsewhere'))!.id;
      await putManifest(meta, { repositoryId: app, digest: digest('m'), mediaType: MANIFEST, size: 100, references: [{ digest: digest('a'), kind: 'blob' }, { digest: digest('s'), kind: 'blob' }], tag: 'v1' });
      await putManifest(meta, { repositoryId: other, digest: digest('n'), mediaType: MANIFEST, size: 200, references: [{ digest: digest('s'), kind: 'blob' }] });
      assert.equal(await meta.projects.usage(team), 6300);

      // Deleting a tag deletes no artifact.
      assert.ok(await meta.manifests.deleteTag(app, 'v1'));
      assert.equal(await meta.projects.usage(team), 6300);

      assert.ok(await meta.manifests.delete(app, digest('m')));
      assert.equal(await meta.projects.usage(team), 5200, 'm and a go; s is listed by n');
      assert.equal(await meta.repositories.blobSize(app, digest('a')), undefined, 'a is no longer served');
      assert.equal(await meta.repositories.blobSize(app, digest('s')), 5000);
      assert.deepEqual([...(await meta.repositories.blobSizes(app, [digest('a')]))], [[digest('a'), 1000]], 'the link stays (the manifest may be pushed again)');

      assert.ok(await meta.repositories.delete('team/other'));
      // s goes too: team/app still links it, but no artifact of the project references it any more.
      assert.equal(await meta.projects.usage(team), 0);
      assert.equal(await meta.projects.usage(elsewhere), 5000, 'another project counts its own copy');

      // Pushed again: counted again, served again.
      await putManifest(meta, { repositoryId: app, digest: digest('m'), mediaType: MANIFEST, size: 100, references: [{ digest: digest('a'), kind: 'blob' }, { digest: digest('s'), kind: 'blob' }] });
      assert.equal(await meta.projects.usage(team), 6100);
      assert.equal(await meta.repositories.blobSize(app, digest('s')), 5000);
    });
  });

  test(`${dialect}: a manifest is recorded only with what it references still there, and counted within the quota`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const app = await upload(meta, 'team/app', digest('a'), 1000);
      const team = (await meta.projects.find('team'))!.id;
      // The registry checked the link, then a blob delete took it away before the manifest's commit.
      assert.equal((await meta.repositories.blobSizes(app, [digest('a')])).get(digest('a')), 1000);
      await meta.projects.charge(team, digest('m'), 100);
      assert.ok(await meta.repositories.unlinkBlob(app, digest('a')));
      await assert.rejects(
        putManifest(meta, { repositoryId: app, digest: digest('m'), mediaType: MANIFEST, size: 100, references: [{ digest: digest('a'), kind: 'blob' }] }),
        rejectsWith('MANIFEST_BLOB_UNKNOWN', 'deleted-during-push'),
      );
      assert.equal(await meta.manifests.byDigest(app, digest('m')), undefined);
      assert.equal(await meta.projects.usage(team), 0, "the manifest's own bytes, counted before, are given back");
      const collectable = (await meta.blobs.candidates('', Date.now() + 1000, 1000)).entries;
      assert.ok(collectable.some((c) => c.digest === digest('m')), 'what the refused push claimed is left to garbage collection');

      // An index whose child was deleted meanwhile.
      await assert.rejects(
        putManifest(meta, { repositoryId: app, digest: digest('i'), mediaType: 'application/vnd.oci.image.index.v1+json', size: 50, references: [{ digest: digest('m'), kind: 'manifest' }] }),
        rejectsWith('MANIFEST_BLOB_UNKNOWN', 'deleted-during-push'),
      );

      // The repository deleted meanwhile.
      const gone = await upload(meta, 'team/gone', digest('g'), 10);
      assert.ok(await meta.repositories.delete('team/gone'));
      await assert.rejects(putManifest(meta, { repositoryId: gone, digest: digest('h'), mediaType: MANIFEST, size: 10, references: [] }), rejectsWith('NAME_UNKNOWN', 'deleted-during-push'));

      // Released blobs brought back by a manifest count against the quota.
      await upload(meta, 'team/app', digest('b'), 4000);
      await putManifest(meta, { repositoryId: app, digest: digest('n'), mediaType: MANIFEST, size: 100, references: [{ digest: digest('b'), kind: 'blob' }] });
      assert.ok(await meta.manifests.delete(app, digest('n')));
      assert.equal(await meta.projects.usage(team), 0);
      await meta.projects.update('team', { quotaBytes: 1000 });
      await assert.rejects(
        putManifest(meta, { repositoryId: app, digest: digest('n'), mediaType: MANIFEST, size: 100, references: [{ digest: digest('b'), kind: 'blob' }] }),
        (err: unknown) => rejectsWith('DENIED')(err) && /quota exceeded: project "team" uses 0 of 1000 bytes/.test((err as Error).message),
      );
      assert.equal(await meta.projects.usage(team), 0, 'rolled back whole');
      assert.equal(await meta.manifests.byDigest(app, digest('n')), undefined);
    });
  });
}
