// Migration 0005 on a database written by an older Berth: single-segment repositories move to the
// project "library" (created private), with their accounting; projects once auto-created for them
// stay, empty; every project's usage is recomputed from what its artifacts reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Kysely, Migrator } from 'kysely';
import { sqliteDialect } from '../../src/metadata/dialect.ts';
import { migrations } from '../../src/metadata/migrations.ts';
import { postgresDialect } from '../../src/metadata/postgres.ts';
import { DIALECTS, metadataPlace, type MetadataPlace } from '../support/metadata.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Creates the database of `place` with the schema of migrations 0001–0004 only (Berth before 0005). */
async function oldDatabase(place: MetadataPlace): Promise<void> {
  const opened = place.url ? await postgresDialect({ url: place.url, poolSize: 2 }) : sqliteDialect(join(place.dataDir, 'berth.db'));
  const db = new Kysely<unknown>({ dialect: opened.dialect });
  const all = migrations(opened.traits);
  const older = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0005'));
  const { error } = await new Migrator({ db, provider: { getMigrations: async () => older } }).migrateToLatest();
  await db.destroy();
  if (error) throw error;
}

for (const dialect of DIALECTS) {
  test(`${dialect}: 0005 files single-segment repositories under library, moving their usage; other projects are recounted exactly`, async () => {
    const place = await metadataPlace(dialect);
    try {
      await oldDatabase(place);
      // What the old code left: project "alpine" auto-created for the image "alpine" and charged for it;
      // project "team" charged for team/app, plus a blob of an artifact deleted since (still counted then).
      const now = Date.now();
      const insert = async (sql: string, ...params: unknown[]) => Number((await place.query<{ id: number }>(`${sql} RETURNING *`, params))[0]?.id);
      const project = (name: string, quota: number | null) => insert('INSERT INTO projects (name, public, quota_bytes, created_by, created_at) VALUES ($1, 0, $2, NULL, $3)', name, quota, now);
      const alpineProject = await project('alpine', null);
      const teamProject = await project('team', 1_000_000);
      const repo = (name: string, projectId: number | null) => insert('INSERT INTO repositories (name, project_id, created_at) VALUES ($1, $2, $3)', name, projectId, now);
      const alpine = await repo('alpine', alpineProject);
      const app = await repo('team/app', teamProject);
      // A repository from before projects existed (no project yet).
      const orphan = await repo('legacy/tool', null);
      const link = (r: number, d: string, size: number) => insert('INSERT INTO repository_blobs (repository_id, digest, size, created_at) VALUES ($1, $2, $3, $4)', r, d, size, now);
      const manifest = (r: number, d: string, size: number) => insert('INSERT INTO manifests (repository_id, digest, media_type, size, created_at) VALUES ($1, $2, $3, $4, $5)', r, d, MANIFEST, size, now);
      const ref = (r: number, m: string, child: string) => insert("INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, kind) VALUES ($1, $2, $3, 'blob')", r, m, child);
      const tag = (r: number, name: string, d: string) => insert('INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)', r, name, d, now);
      const charge = (p: number, d: string, size: number) => insert('INSERT INTO project_blobs (project_id, digest, size) VALUES ($1, $2, $3)', p, d, size);
      const usage = (p: number, shard: number, bytes: number) => insert('INSERT INTO project_usage (project_id, shard, bytes) VALUES ($1, $2, $3)', p, shard, bytes);
      // alpine:3 — config a (100), layer b (1000), manifest m (300).
      await link(alpine, digest('a'), 100);
      await link(alpine, digest('b'), 1000);
      await manifest(alpine, digest('m'), 300);
      await ref(alpine, digest('m'), digest('a'));
      await ref(alpine, digest('m'), digest('b'));
      await tag(alpine, '3', digest('m'));
      for (const [d, size] of [['a', 100], ['b', 1000], ['m', 300]] as const) await charge(alpineProject, digest(d), size);
      await usage(alpineProject, 3, 1400);
      // team/app:v1 — config c (200), the same layer b (1000), manifest n (400); and a layer x (5000)
      // of an artifact deleted since, still linked and counted by the old code.
      await link(app, digest('c'), 200);
      await link(app, digest('b'), 1000);
      await link(app, digest('x'), 5000);
      await manifest(app, digest('n'), 400);
      await ref(app, digest('n'), digest('c'));
      await ref(app, digest('n'), digest('b'));
      await tag(app, 'v1', digest('n'));
      for (const [d, size] of [['c', 200], ['b', 1000], ['x', 5000], ['n', 400]] as const) await charge(teamProject, digest(d), size);
      await usage(teamProject, 7, 6600);
      // legacy/tool:1 — config d (10), manifest o (20); never charged (it predates projects).
      await link(orphan, digest('d'), 10);
      await manifest(orphan, digest('o'), 20);
      await ref(orphan, digest('o'), digest('d'));

      const meta = await place.open();
      try {
        const library = await meta.projects.find('library');
        assert.ok(library, 'library was created');
        assert.equal(library.public, 0, 'private');
        assert.equal(library.quota_bytes, null);
        const alpineId = await meta.repositories.id('alpine');
        assert.equal(alpineId, alpine, 'the repository keeps its name and id');
        const listed = await meta.repositories.list({ projectIds: [library.id], offset: 0, limit: 10 });
        assert.deepEqual(listed.items.map((r) => r.name), ['alpine']);
        assert.equal(await meta.projects.usage(library.id), 1400, "alpine's usage moved to library");
        assert.ok(await meta.projects.counts(library.id, digest('b')));
        assert.equal(await meta.repositories.blobSize(alpine, digest('b')), 1000, 'and its blobs are served there');
        assert.equal((await meta.manifests.byTag(alpine, '3'))?.digest, digest('m'));

        const old = await meta.projects.find('alpine');
        assert.ok(old, 'the project once created for the image stays');
        assert.equal(await meta.projects.usage(old.id), 0);
        assert.equal(await meta.projects.repositoryCount(old.id), 0);

        const team = (await meta.projects.find('team'))!;
        assert.equal(await meta.projects.usage(team.id), 1600, 'team counts what team/app references (the deleted artifact\'s layer no more)');
        assert.equal(await meta.repositories.blobSize(app, digest('x')), undefined, 'nor serves it');

        const legacy = (await meta.projects.find('legacy'))!;
        assert.equal(await meta.repositories.blobSize(orphan, digest('d')), 10, 'a repository older than projects is adopted and counted');
        assert.equal(await meta.projects.usage(legacy.id), 30);
      } finally {
        await meta.close();
      }

      // Opened again: nothing changes (the migration ran once).
      const again = await place.open();
      try {
        assert.equal(await again.projects.usage((await again.projects.find('library'))!.id), 1400);
      } finally {
        await again.close();
      }
    } finally {
      await place.remove();
    }
  });
}
