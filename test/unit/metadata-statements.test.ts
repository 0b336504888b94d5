// Prepared statements and precompiled queries of the metadata store always answer with current data,
// on SQLite and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PreparedQuery } from '../../src/metadata/prepared.ts';
import { completeUpload, DIALECTS, putManifest, withMetadataOn } from '../support/metadata.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;

for (const dialect of DIALECTS) {
  test(`${dialect}: cached statements see every change: own writes, retags, deletes, and another process`, async () => {
    await withMetadataOn(dialect, async (meta, place) => {
      await meta.users.create('alice', 'hash-1', false);
      assert.equal((await meta.users.find('alice'))?.credential_generation, 0);
      await meta.users.setPassword('alice', 'hash-2');
      const alice = await meta.users.find('alice');
      assert.equal(alice?.password_hash, 'hash-2');
      assert.equal(alice?.credential_generation, 1, 'a password change is seen at once (cached logins depend on it)');

      const repo = await meta.repositories.ensure('team/app');
      const manifest = (d: string, tag?: string) =>
        putManifest(meta, { repositoryId: repo, digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [], ...(tag ? { tag } : {}) });
      await manifest(digest('a'), 'v1');
      assert.equal((await meta.manifests.byTag(repo, 'v1'))?.digest, digest('a'));
      await manifest(digest('b'), 'v1');
      assert.equal((await meta.manifests.byTag(repo, 'v1'))?.digest, digest('b'), 'a retag moves the tag');
      assert.ok(await meta.manifests.deleteTag(repo, 'v1'));
      assert.equal(await meta.manifests.byTag(repo, 'v1'), undefined);
      assert.equal((await meta.manifests.byDigest(repo, digest('a')))?.digest, digest('a'));
      assert.ok(await meta.manifests.delete(repo, digest('a')));
      assert.equal(await meta.manifests.byDigest(repo, digest('a')), undefined);

      await meta.uploads.create('s1', 'team/app', 'alice', null);
      assert.equal((await meta.uploads.find('s1'))?.created_by, 'alice');
      await meta.uploads.delete('s1');
      assert.equal(await meta.uploads.find('s1'), undefined);

      // The CLI or another replica writes through its own connection: the prepared statement re-reads.
      await place.query('UPDATE users SET is_admin = 1 WHERE username = $1', ['alice']);
      assert.equal((await meta.users.find('alice'))?.is_admin, 1);
    });
  });

  test(`${dialect}: an upload completes in one commit: charged once per project, linked, session gone`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const repositoryId = await meta.repositories.ensure('team/app');
      const projectId = (await meta.projects.find('team'))!.id;
      await meta.uploads.create('s1', 'team/app', null, null);
      await completeUpload(meta, 's1', { repositoryId, projectId, digest: digest('c'), size: 1000 });
      assert.equal(await meta.uploads.find('s1'), undefined);
      assert.equal(await meta.repositories.blobSize(repositoryId, digest('c')), 1000);
      // The same blob again (another session) is linked already and not charged twice; a new one adds up.
      await meta.uploads.create('s2', 'team/app', null, null);
      await completeUpload(meta, 's2', { repositoryId, projectId, digest: digest('c'), size: 1000 });
      await meta.projects.charge(projectId, digest('d'), 234);
      await meta.projects.charge(projectId, digest('d'), 234);
      assert.equal(await meta.projects.usage(projectId), 1234);
      assert.ok(await meta.projects.counts(projectId, digest('d')));
      assert.equal(await meta.projects.counts(projectId, digest('e')), false);
    });
  });

  test(`${dialect}: a small statement cache evicts and re-prepares without changing answers`, async () => {
    // The cache is SQLite's driver's; on PostgreSQL the same queries run through the pool.
    await withMetadataOn(dialect, async (meta) => {
      for (const name of ['u1', 'u2', 'u3']) await meta.users.create(name, `hash-${name}`, false);
      const repositoryId = await meta.repositories.ensure('team/app');
      for (let round = 0; round < 3; round++) {
        for (const name of ['u1', 'u2', 'u3']) assert.equal((await meta.users.find(name))?.password_hash, `hash-${name}`);
        assert.equal(await meta.repositories.blobSize(repositoryId, digest('f')), undefined);
        assert.equal((await meta.projects.find('team'))?.name, 'team');
        assert.equal(await meta.users.count(), 3);
      }
    }, { statementCacheSize: 2 });
  });

  test(`${dialect}: a precompiled query refuses an argument it cannot bind as a parameter`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const db = meta.db;
      const bad = new PreparedQuery(db, (name: string) => db.selectFrom('users').selectAll().where('username', 'like', `%${name}%`));
      await assert.rejects(bad.first('adm'), /argument 0 of a prepared query is not passed as a plain value/);
      const twice = new PreparedQuery(db, (name: string) => db.selectFrom('users').select('username').where((eb) => eb.or([eb('username', '=', name), eb('password_hash', '=', name)])));
      await meta.users.create('same', 'same', false);
      await meta.users.create('other', 'x', false);
      assert.deepEqual((await twice.all('same')).map((r) => r.username), ['same']);
      assert.deepEqual((await twice.all('other')).map((r) => r.username), ['other'], 'new arguments, not the first ones');
    });
  });

  test(`${dialect}: substring searches and an empty project filter answer alike on both databases`, async () => {
    await withMetadataOn(dialect, async (meta) => {
      const repositoryId = await meta.repositories.ensure('team/app_one');
      await putManifest(meta, { repositoryId, digest: digest('a'), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, references: [] });
      // PostgreSQL's LIKE minds case, SQLite's does not; names are lower-case, searches find them either way.
      assert.deepEqual((await meta.repositories.list({ offset: 0, limit: 10, nameLike: 'APP' })).items.map((r) => r.name), ['team/app_one']);
      assert.equal((await meta.repositories.list({ offset: 0, limit: 10, nameLike: 'p%o' })).total, 0, 'a wildcard is taken out, not obeyed');
      assert.equal((await meta.projects.list({ all: true, memberOf: [], offset: 0, limit: 10, nameLike: 'TEA' })).total, 1);
      await meta.audit.record({ actor: 'alice', action: 'push', resourceType: 'artifact', resource: 'team/App:V1', project: 'team', success: true });
      assert.equal((await meta.audit.search({ resource: 'app:v', offset: 0, limit: 10 })).total, 1);
      assert.deepEqual(await meta.audit.search({ projects: [], offset: 0, limit: 10 }), { items: [], total: 0 }, 'no visible project: nothing');
      assert.equal((await meta.audit.search({ projects: ['team'], offset: 0, limit: 10 })).total, 1);
    });
  });
}
