// The metadata of tag retention on both databases: reading a project's artifacts in pages (index
// children and attached referrers left out, tags and push times joined, nothing of other projects),
// the policy with its schedule, a project's runs found by payload (LIKE wildcards in names
// escaped), and job items.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DIALECTS, withMetadataOn } from '../support/metadata.ts';
import type { Metadata } from '../../src/metadata/index.ts';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** Inserts manifests (and tags) straight into the tables, in batches: far faster than pushes. */
async function seed(meta: Metadata, rows: { repositoryId: number; n: number; createdAt: number; pulledAt?: number; subject?: number; tags?: { name: string; at: number }[] }[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    const batch = rows.slice(i, i + 500);
    await meta.db
      .insertInto('manifests')
      .values(
        batch.map((r) => ({
          repository_id: r.repositoryId,
          digest: digest(r.n),
          media_type: 'application/vnd.oci.image.manifest.v1+json',
          size: 100,
          artifact_type: null,
          subject_digest: r.subject === undefined ? null : digest(r.subject),
          annotations: null,
          pushed_by: null,
          last_pulled_at: r.pulledAt ?? null,
          created_at: r.createdAt,
        })),
      )
      .execute();
    const tags = batch.flatMap((r) => (r.tags ?? []).map((t) => ({ repository_id: r.repositoryId, name: t.name, manifest_digest: digest(r.n), updated_at: t.at })));
    if (tags.length > 0) await meta.db.insertInto('tags').values(tags).execute();
  }
}

async function repository(meta: Metadata, name: string, projectId: number): Promise<number> {
  await meta.db.insertInto('repositories').values({ name, project_id: projectId, created_at: 1 }).execute();
  return Number((await meta.db.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id);
}

describe('retention metadata', () => {
  for (const dialect of DIALECTS) {
    test(`${dialect}: a project's artifacts in pages: top-level only, tags joined, push time the latest of manifest and tags`, async () => {
      await withMetadataOn(dialect, async (meta) => {
        await meta.projects.create('big', {});
        await meta.projects.create('noise', {});
        const big = (await meta.projects.find('big'))!.id;
        const noise = (await meta.projects.find('noise'))!.id;
        // More repositories than one chunk, and one repository with more artifacts than one page.
        const ids: number[] = [];
        for (let r = 0; r < 210; r++) ids.push(await repository(meta, `big/r${r}`, big));
        const other = await repository(meta, 'noise/x', noise);
        const rows: Parameters<typeof seed>[1] = [];
        let n = 1;
        for (let k = 0; k < 5_200; k++) rows.push({ repositoryId: ids[0]!, n: n++, createdAt: 1000 + k, tags: k % 2 === 0 ? [{ name: `t${k}`, at: 500 }] : [] });
        for (let r = 1; r < ids.length; r++) for (let k = 0; k < 3; k++) rows.push({ repositoryId: ids[r]!, n: n++, createdAt: 10 });
        rows.push({ repositoryId: other, n: n++, createdAt: 10 });
        // In repository 1: an index (tagged twice, re-tagged later) with two children; a referrer of
        // the index; a referrer whose subject is not there.
        const [index, child1, child2, referrer, dangling] = [n++, n++, n++, n++, n++];
        rows.push({ repositoryId: ids[1]!, n: index, createdAt: 100, pulledAt: 150, tags: [{ name: 'b', at: 300 }, { name: 'a', at: 200 }] });
        rows.push({ repositoryId: ids[1]!, n: child1, createdAt: 100 }, { repositoryId: ids[1]!, n: child2, createdAt: 100 });
        rows.push({ repositoryId: ids[1]!, n: referrer, createdAt: 100, subject: index });
        rows.push({ repositoryId: ids[1]!, n: dangling, createdAt: 100, subject: 999_999 });
        await seed(meta, rows);
        await meta.db
          .insertInto('manifest_references')
          .values([child1, child2].map((c) => ({ repository_id: ids[1]!, manifest_digest: digest(index), child_digest: digest(c), kind: 'manifest' as const })))
          .execute();

        const pages: number[] = [];
        const started = performance.now();
        const artifacts = await meta.retention.artifacts(big, { onPage: (read) => pages.push(read) });
        const ms = performance.now() - started;
        process.stdout.write(`# ${dialect}: read ${artifacts.length} artifacts of 210 repositories in ${Math.round(ms)} ms (${pages.length} pages)\n`);
        assert.equal(artifacts.length, 5_200 + 209 * 3 + 2);
        assert.ok(pages.length >= 3, 'read in several pages');
        assert.ok(artifacts.every((a) => a.repository.startsWith('big/')), 'nothing of another project');
        const by = new Map(artifacts.map((a) => [a.digest, a]));
        assert.deepEqual(by.get(digest(index)), { repository: 'big/r1', digest: digest(index), tags: ['a', 'b'], pushedAt: 300, pulledAt: 150 });
        for (const gone of [child1, child2, referrer]) assert.equal(by.has(digest(gone)), false, 'children and attached referrers are not artifacts');
        assert.equal(by.has(digest(dangling)), true, 'a referrer whose subject is gone is an artifact');
        assert.deepEqual(by.get(digest(1)), { repository: 'big/r0', digest: digest(1), tags: ['t0'], pushedAt: 1000, pulledAt: null });
        assert.equal(new Set(artifacts.map((a) => a.digest)).size, artifacts.length, 'each artifact once');
        const aborted = new AbortController();
        aborted.abort();
        await assert.rejects(meta.retention.artifacts(big, { signal: aborted.signal }));
      });
    });

    test(`${dialect}: the policy and its schedule change together; runs are found by project, "_" matching only itself`, async () => {
      await withMetadataOn(dialect, async (meta) => {
        await meta.projects.create('a_b', {});
        await meta.projects.create('axb', {});
        const project = { id: (await meta.projects.find('a_b'))!.id, name: 'a_b' };
        const schedule = async () => (await meta.schedules.list()).filter((s) => s.name.startsWith('retention:')).map((s) => [s.name, s.kind, s.cron, s.payload]);
        await meta.retention.set(project, { rules: [{ any: 1 }], cron: '0 3 * * *' }, 'alice', 5);
        assert.deepEqual(await meta.retention.get(project.id), { projectId: project.id, rules: [{ any: 1 }], cron: '0 3 * * *', updatedBy: 'alice', updatedAt: 5 });
        assert.deepEqual(await schedule(), [['retention:a_b', 'retention', '0 3 * * *', '{"project":"a_b","dryRun":false}']]);
        await meta.retention.set(project, { rules: [], cron: '0 4 * * *' }, 'bob');
        assert.deepEqual(await schedule(), [['retention:a_b', 'retention', '0 4 * * *', '{"project":"a_b","dryRun":false}']]);
        await meta.retention.set(project, { rules: [], cron: null }, 'bob');
        assert.deepEqual(await schedule(), []);
        await meta.retention.set(project, { rules: [], cron: '0 4 * * *' }, 'bob');
        assert.equal(await meta.retention.delete(project), true);
        assert.equal(await meta.retention.delete(project), false);
        assert.deepEqual(await schedule(), []);
        assert.equal(await meta.retention.get(project.id), undefined);

        for (const name of ['a_b', 'axb', 'a_b', 'a_bc']) await meta.jobs.enqueue({ kind: 'retention', payload: { project: name, dryRun: true } });
        await meta.jobs.enqueue({ kind: 'verify-blobs', payload: { project: 'a_b' } });
        const runs = await meta.retention.runs('a_b', { offset: 0, limit: 10 });
        assert.equal(runs.total, 2);
        assert.deepEqual(runs.items.map((r) => JSON.parse(r.payload).project), ['a_b', 'a_b']);
        assert.ok(runs.items[0]!.id > runs.items[1]!.id, 'newest first');
        assert.equal(typeof runs.items[0]!.created_at, 'number');
      });
    });

    test(`${dialect}: job items in batches, paged by outcome, counted, cleared but for kept outcomes`, async () => {
      await withMetadataOn(dialect, async (meta) => {
        const { id } = await meta.jobs.enqueue({ kind: 'retention', payload: {} });
        const items = Array.from({ length: 1_201 }, (_, i) => ({ subject: `p/r@${digest(i)}`, outcome: i % 3 === 0 ? 'deleted' : 'retained', detail: { i } }));
        await meta.jobItems.append(id, items);
        assert.deepEqual(await meta.jobItems.counts(id), { deleted: 401, retained: 800 });
        const page = await meta.jobItems.page(id, { outcome: 'deleted', offset: 400, limit: 10 });
        assert.equal(page.total, 401);
        assert.deepEqual(page.items.map((r) => [r.subject, JSON.parse(r.detail!)]), [[`p/r@${digest(1200)}`, { i: 1200 }]]);
        assert.equal((await meta.jobItems.page(id, { offset: 0, limit: 5 })).items[0]!.subject, `p/r@${digest(0)}`);
        assert.equal(await meta.jobItems.clear(id, ['deleted']), 800);
        assert.deepEqual(await meta.jobItems.counts(id), { deleted: 401 });
      });
    });
  }
});
