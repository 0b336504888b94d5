// Migration 0005 on a database written by an older Berth: single-segment repositories move to the
// project "library" (created private), with their accounting; projects once auto-created for them
// stay, empty; every project's usage is recomputed from what its artifacts reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator } from 'kysely';
import Database from 'better-sqlite3';
import { sqliteDialect } from '../../src/metadata/dialect.ts';
import { migrations } from '../../src/metadata/migrations.ts';
import { openMetadata } from '../../src/metadata/index.ts';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Creates `berth.db` in `dir` with the schema of migrations 0001–0004 only (Berth before 0005). */
async function oldDatabase(dir: string): Promise<void> {
  const opened = sqliteDialect(join(dir, 'berth.db'));
  const db = new Kysely<unknown>({ dialect: opened.dialect });
  const all = migrations(opened.traits);
  const older = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0005'));
  const { error } = await new Migrator({ db, provider: { getMigrations: async () => older } }).migrateToLatest();
  await db.destroy();
  if (error) throw error;
}

test('0005 files single-segment repositories under library, moving their usage; other projects are recounted exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-migration-'));
  try {
    await oldDatabase(dir);
    // What the old code left: project "alpine" auto-created for the image "alpine" and charged for it;
    // project "team" charged for team/app, plus a blob of an artifact deleted since (still counted then).
    const raw = new Database(join(dir, 'berth.db'));
    const now = Date.now();
    const project = raw.prepare('INSERT INTO projects (name, public, quota_bytes, created_by, created_at) VALUES (?, 0, ?, NULL, ?)');
    const alpineProject = Number(project.run('alpine', null, now).lastInsertRowid);
    const teamProject = Number(project.run('team', 1_000_000, now).lastInsertRowid);
    const repo = raw.prepare('INSERT INTO repositories (name, project_id, created_at) VALUES (?, ?, ?)');
    const alpine = Number(repo.run('alpine', alpineProject, now).lastInsertRowid);
    const app = Number(repo.run('team/app', teamProject, now).lastInsertRowid);
    // A repository from before projects existed (no project yet).
    const orphan = Number(repo.run('legacy/tool', null, now).lastInsertRowid);
    const link = raw.prepare('INSERT INTO repository_blobs (repository_id, digest, size, created_at) VALUES (?, ?, ?, ?)');
    const manifest = raw.prepare('INSERT INTO manifests (repository_id, digest, media_type, size, created_at) VALUES (?, ?, ?, ?, ?)');
    const ref = raw.prepare("INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, kind) VALUES (?, ?, ?, 'blob')");
    const tag = raw.prepare('INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)');
    const charge = raw.prepare('INSERT INTO project_blobs (project_id, digest, size) VALUES (?, ?, ?)');
    const usage = raw.prepare('INSERT INTO project_usage (project_id, shard, bytes) VALUES (?, ?, ?)');
    // alpine:3 — config a (100), layer b (1000), manifest m (300).
    link.run(alpine, digest('a'), 100, now);
    link.run(alpine, digest('b'), 1000, now);
    manifest.run(alpine, digest('m'), MANIFEST, 300, now);
    ref.run(alpine, digest('m'), digest('a'));
    ref.run(alpine, digest('m'), digest('b'));
    tag.run(alpine, '3', digest('m'), now);
    for (const [d, size] of [['a', 100], ['b', 1000], ['m', 300]] as const) charge.run(alpineProject, digest(d), size);
    usage.run(alpineProject, 3, 1400);
    // team/app:v1 — config c (200), the same layer b (1000), manifest n (400); and a layer x (5000)
    // of an artifact deleted since, still linked and counted by the old code.
    link.run(app, digest('c'), 200, now);
    link.run(app, digest('b'), 1000, now);
    link.run(app, digest('x'), 5000, now);
    manifest.run(app, digest('n'), MANIFEST, 400, now);
    ref.run(app, digest('n'), digest('c'));
    ref.run(app, digest('n'), digest('b'));
    tag.run(app, 'v1', digest('n'), now);
    for (const [d, size] of [['c', 200], ['b', 1000], ['x', 5000], ['n', 400]] as const) charge.run(teamProject, digest(d), size);
    usage.run(teamProject, 7, 6600);
    // legacy/tool:1 — config d (10), manifest o (20); never charged (it predates projects).
    link.run(orphan, digest('d'), 10, now);
    manifest.run(orphan, digest('o'), MANIFEST, 20, now);
    ref.run(orphan, digest('o'), digest('d'));
    raw.close();

    const meta = await openMetadata(dir);
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
    const again = await openMetadata(dir);
    try {
      assert.equal(await again.projects.usage((await again.projects.find('library'))!.id), 1400);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
