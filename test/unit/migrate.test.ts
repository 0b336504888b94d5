// The migration's logic on the embedded backend (SQLite + filesystem on both sides): the table plan
// against the real schema, a copy interrupted mid-table and resumed, corrupt blobs reported and not
// copied, targets refused. The move to PostgreSQL + S3 through the command is test/e2e/migrate.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import { openMetadata, type Metadata } from '../../src/metadata/index.ts';
import { migrateInstallation, TargetRefused, type Installation, type MigrationSummary } from '../../src/migrate/index.ts';
import { checkPlan, TABLE_PLAN } from '../../src/migrate/plan.ts';
import { checkConfigs, describeDatabase, describeStorage } from '../../src/cli/migrate.ts';
import { configSchema } from '../../src/config/schema.ts';
import { MIGRATION_TABLE } from '../../src/migrate/state.ts';
import { FilesystemBlobStore } from '../../src/storage/filesystem/filesystem-store.ts';
import { blobPath } from '../../src/storage/filesystem/paths.ts';
import { assertServes, populate, type Content } from '../support/populate.ts';
import { pushBlob, digestOf } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';
import { tmpDir } from '../support/system.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const dir = await tmpDir('berth-migrate-unit');
  dirs.push(dir);
  return dir;
}

/** An embedded installation in `dir`, opened as the command opens one. */
async function open(dir: string): Promise<Installation & { meta: Metadata; close(): Promise<void> }> {
  const meta = await openMetadata(dir);
  const store = new FilesystemBlobStore(path.join(dir, 'storage'));
  await store.init();
  return {
    meta,
    store,
    name: `sqlite:${dir}`,
    async close() {
      await store.close();
      await meta.close();
    },
  };
}

/** Every row of every moved table, in a stable order. */
async function dump(meta: Metadata): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const plan of TABLE_PLAN) {
    if (plan.action === 'skip') continue;
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(plan.table)}`.execute(meta.db);
    out[plan.table] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

let source: string;
let content: Content;
let large: Buffer<ArrayBuffer>;

before(async () => {
  source = await newDir();
  const server = await startTestServer({}, source);
  content = await populate(server.url, { images: 24, auth: adminBasic() });
  // Streamed through an upload session rather than stored with one putSmall.
  large = randomBytes(5 * 1024 * 1024 + 123);
  await pushBlob(server.url, 'team/app', large, { auth: adminBasic() });
  content.blobs.push({ name: 'team/app', digest: digestOf(large), bytes: large });
  content.project.usageBytes += large.length; // counted by its project while no manifest lists it
  await server.close(true);
  // Enough audit rows for several pages, so an interruption lands inside a table.
  const meta = await openMetadata(source);
  const rows = Array.from({ length: 1300 }, (_, i) => ({ time: i, actor: 'admin', action: 'pull', resource_type: 'artifact', resource: `x${i}`, project: null, client: null, success: 1, detail: null }));
  for (let i = 0; i < rows.length; i += 400) await meta.db.insertInto('audit_log').values(rows.slice(i, i + 400)).execute();
  await meta.close();
});

test('the plan names every table of the schema once, with its primary key, in foreign-key order', async () => {
  const dir = await newDir();
  const meta = await openMetadata(dir);
  try {
    const tables = (await meta.db.introspection.getTables()).map((t) => t.name);
    checkPlan(tables);
    assert.equal(new Set(TABLE_PLAN.map((p) => p.table)).size, TABLE_PLAN.length, 'no table twice');
    for (const [i, plan] of TABLE_PLAN.entries()) {
      const { rows: columns } = await sql<{ name: string; pk: number }>`select name, pk from pragma_table_info(${plan.table})`.execute(meta.db);
      const key = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
      if (plan.action === 'copy') assert.deepEqual(plan.key, key, `${plan.table}: the plan's key is the primary key`);
      if (plan.action === 'replace') assert.deepEqual(key, [], `${plan.table}: replaced only for want of a key`);
      const { rows: refs } = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${plan.table})`.execute(meta.db);
      for (const ref of refs) {
        if (ref.table === plan.table) continue;
        const at = TABLE_PLAN.findIndex((p) => p.table === ref.table);
        assert.ok(at >= 0 && at < i, `${plan.table} references ${ref.table}, which must come before it`);
      }
    }
  } finally {
    await meta.close();
  }
  assert.throws(() => checkPlan([...TABLE_PLAN.map((p) => p.table), 'sso_providers']), /does not know how to move \(sso_providers\)/);
  assert.throws(() => checkPlan(TABLE_PLAN.map((p) => p.table).filter((t) => t !== 'tags')), /tables it expects are missing \(tags\)/);
});

test('a copy interrupted mid-table resumes and finishes; the target serves everything identically', async () => {
  const targetDir = await newDir();
  const src = await open(source);
  let target = await open(targetDir);
  const seen: string[] = [];
  await assert.rejects(
    migrateInstallation(src, target, {
      onProgress: (p) => {
        if (p.table) seen.push(p.table);
        if (p.table === 'audit_log' && p.rowsDone > p.rowsTotal - 800) throw new Error('interrupted');
      },
    }),
    /interrupted/,
  );
  assert.ok(seen.includes('audit_log'));
  const partial = Number((await sql<{ n: number }>`select count(*) as n from audit_log`.execute(target.meta.db)).rows[0]!.n);
  assert.ok(partial > 0 && partial < 1300, `audit_log partly copied (${partial} rows)`);
  await target.close();

  target = await open(targetDir);
  const summary = await migrateInstallation(src, target);
  assert.equal(summary.resumed, true);
  assert.equal(summary.complete, true);
  const audit = summary.tables.find((t) => t.table === 'audit_log')!;
  assert.ok(audit.inserted > 0 && audit.inserted < audit.rows, `the resumed run inserted only the rest: ${JSON.stringify(audit)}`);
  assert.equal(summary.tables.find((t) => t.table === 'users')!.inserted, 0, 'tables copied before are not copied again');
  assert.deepEqual(summary.blobs.failures, []);
  assert.equal(summary.blobs.copied + summary.blobs.skipped, summary.blobs.total);
  assert.deepEqual(await dump(target.meta), await dump(src.meta), 'every moved table identical, ids included');
  assert.deepEqual(summary.leftOut.map((l) => l.table), TABLE_PLAN.filter((p) => p.action === 'skip').map((p) => p.table));
  assert.deepEqual(readdirSync(path.join(targetDir, 'storage', 'uploads')), [], 'no upload left behind');

  // Finished: a rerun is refused rather than bringing back what the target may have deleted since.
  await assert.rejects(migrateInstallation(src, target), (err: unknown) => err instanceof TargetRefused && /already holds a finished migration/.test(err.message));
  await target.close();
  await src.close();

  const server = await startTestServer({}, targetDir);
  try {
    await assertServes(server.url, content, adminBasic());
  } finally {
    await server.close(true);
  }
});

test('corrupt source blobs are reported by digest and not copied; a rerun after repair finishes', async () => {
  const targetDir = await newDir();
  const small = content.blobs.find((b) => b.bytes.length > 0 && b.bytes.length < 4096)!;
  const files = [blobPath(path.join(source, 'storage'), small.digest), blobPath(path.join(source, 'storage'), digestOf(large))];
  const originals = files.map((f) => readFileSync(f));
  for (const [i, file] of files.entries()) {
    const flipped = Buffer.from(originals[i]!);
    flipped[100] = flipped[100]! ^ 0xff;
    writeFileSync(file, flipped);
  }
  let summary: MigrationSummary;
  const src = await open(source);
  const target = await open(targetDir);
  try {
    summary = await migrateInstallation(src, target, { parallel: 2 });
    assert.equal(summary.complete, false);
    assert.deepEqual(summary.blobs.failures.map((f) => f.digest).sort(), [small.digest, digestOf(large)].sort());
    for (const f of summary.blobs.failures) assert.match(f.reason, /^digest mismatch: the source's bytes hash to sha256:[0-9a-f]{64} \(corrupt source blob\)/);
    for (const digest of [small.digest, digestOf(large)]) assert.equal(await target.store.stat(digest), undefined, 'a corrupt blob never becomes visible in the target');
    assert.deepEqual(readdirSync(path.join(targetDir, 'storage', 'uploads')), [], 'the rejected upload is removed');

    for (const [i, file] of files.entries()) writeFileSync(file, originals[i]!);
    summary = await migrateInstallation(src, target);
    assert.equal(summary.resumed, true);
    assert.equal(summary.complete, true);
    assert.equal(summary.blobs.copied, 2, 'only the two repaired blobs are copied');
    assert.equal(summary.blobs.skipped, summary.blobs.total - 2);
    assert.equal(summary.tables.reduce((n, t) => n + (t.table === 'robot_permissions' ? 0 : t.inserted), 0), 0, 'no row inserted twice');
  } finally {
    for (const [i, file] of files.entries()) writeFileSync(file, originals[i]!);
    await target.close();
    await src.close();
  }
});

test('a target that holds data, or an unknown table, is refused before anything is copied', async () => {
  const src = await open(source);
  try {
    const used = await open(await newDir());
    await used.meta.users.create('someone', 'x', false);
    await assert.rejects(migrateInstallation(src, used), (err: unknown) => err instanceof TargetRefused && /the target database is not empty \(users: 1 rows\)/.test(err.message));
    assert.equal((await used.meta.db.introspection.getTables()).some((t) => t.name === MIGRATION_TABLE), false, 'a refused target is left as it was');
    await used.close();

    const newer = await open(await newDir());
    await sql`create table sso_providers (id integer primary key)`.execute(newer.meta.db);
    await assert.rejects(migrateInstallation(src, newer), /does not know how to move \(sso_providers\)/);
    assert.equal(await newer.meta.users.count(), 0);
    await newer.close();
  } finally {
    await src.close();
  }
});

test('the target configuration must name PostgreSQL and S3, other than the source; names carry no password', () => {
  const embedded = configSchema.parse({ dataDir: '/var/lib/berth' });
  const s3 = { bucket: 'registry', endpoint: 'http://127.0.0.1:9000', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI-secret' };
  const target = configSchema.parse({ database: { url: 'postgres://berth:hunter2-secret@db:5432/berth?sslmode=require' }, storage: { s3 } });
  assert.equal(describeDatabase(embedded), 'sqlite:/var/lib/berth/berth.db');
  assert.equal(describeStorage(embedded), 'filesystem:/var/lib/berth/storage');
  assert.equal(describeDatabase(target), 'postgres://db:5432/berth');
  assert.equal(describeStorage(target), 's3://registry/ at http://127.0.0.1:9000');
  checkConfigs(embedded, target, 't.yaml');
  assert.throws(() => checkConfigs(embedded, embedded, 't.yaml'), /^CliError: t\.yaml: sets no database\.url \(PostgreSQL\) and no storage\.s3 \(the bucket\); berth migrate moves/);
  assert.throws(() => checkConfigs(embedded, configSchema.parse({ database: target.database }), 't.yaml'), /sets no storage\.s3 \(the bucket\);/);
  const sameDb = configSchema.parse({ database: { url: 'postgres://other:pw@db/berth' }, storage: { s3: { ...s3, prefix: 'x/' } } });
  assert.throws(() => checkConfigs(target, sameDb, 't.yaml'), /its database is the source's own \(postgres:\/\/db:5432\/berth\); give another$/);
  checkConfigs(target, configSchema.parse({ database: { url: 'postgres://berth:pw@db:5432/berth2' }, storage: { s3: { ...s3, prefix: 'x/' } } }), 't.yaml');
  assert.throws(() => checkConfigs(configSchema.parse({ storage: { s3 } }), target, 't.yaml'), /its storage is the source's own \(s3:\/\/registry\/ at http:\/\/127\.0\.0\.1:9000\)/);
});
