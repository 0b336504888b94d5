import { sql, type ExpressionBuilder } from 'kysely';
import { containing, type DB } from './dialect.ts';
import type { Database, ManifestRow } from './schema.ts';
import { TagOrders } from './tag-order.ts';

/** Orders of a repository's artifact list: a field, descending when prefixed with "-". */
export const ARTIFACT_SORTS = ['-pushedAt', 'pushedAt', 'tag', '-tag', '-lastPulledAt', 'lastPulledAt'] as const;
export type ArtifactSort = (typeof ARTIFACT_SORTS)[number];

/** What `ArtifactStore.artifacts` lists: a page, in an order, optionally filtered. */
export interface ArtifactQuery {
  offset: number;
  limit: number;
  /** Default `-pushedAt` (newest first). `tag` orders by each artifact's first tag, untagged ones last either way. */
  sort?: ArtifactSort;
  /** Only artifacts with a tag containing this text (ASCII case ignored), or whose digest starts with it (`sha256:` optional). */
  q?: string;
}

/** The first tags of an artifact (by name) and how many it has. */
export interface TagPreview {
  tags: string[];
  count: number;
}

/** A referrer as the referrers API lists it. */
export interface Referrer {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/**
 * What the management API and the referrers API read about a repository's artifacts: pages of
 * them, their tags, their total sizes, their referrers. Reads only; ManifestStore changes them.
 */
export class ArtifactStore {
  private readonly tagOrders: TagOrders;

  constructor(private readonly db: DB) {
    this.tagOrders = new TagOrders(db, isTopLevel);
  }

  /**
   * A page of a repository's artifacts: its manifests except those only present as children of an
   * index in the repository (platform images show under their index), in `query.sort` order (ties
   * by digest, so pages never overlap), with the number of artifacts matching `query.q`.
   */
  async artifacts(repositoryId: number, query: ArtifactQuery): Promise<{ items: ManifestRow[]; total: number }> {
    const q = query.q?.trim();
    const sort = query.sort ?? '-pushedAt';
    const dir = sort.startsWith('-') ? 'desc' : 'asc';
    if (sort.endsWith('tag') && !q) {
      const page = await this.tagOrders.page(repositoryId, dir === 'desc', query.offset, query.limit);
      return page ? { items: await this.rowsOf(repositoryId, page.digests), total: page.total } : { items: [], total: 0 };
    }
    const filtered = <Q extends { where: (f: typeof isTopLevel) => Q }>(select: Q): Q => {
      const topLevel = select.where(isTopLevel);
      return q ? topLevel.where(((eb: Parameters<typeof isTopLevel>[0]) => matching(eb, repositoryId, q)) as typeof isTopLevel) : topLevel;
    };
    const base = filtered(this.db.selectFrom('manifests as m').where('m.repository_id', '=', repositoryId));
    const total = Number((await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    if (sort.endsWith('tag')) return { items: await this.byFirstTag(repositoryId, query, dir, filtered), total };
    let page = base.selectAll('m');
    if (sort.endsWith('pushedAt')) page = page.orderBy('m.created_at', dir);
    else {
      // Never pulled counts as longest ago, on both databases (their NULL orders differ).
      page = page.orderBy(sql`m.last_pulled_at ${sql.raw(dir === 'asc' ? 'asc nulls first' : 'desc nulls last')}`);
    }
    const items = await page.orderBy('m.digest', dir).offset(query.offset).limit(query.limit).execute();
    return { items, total };
  }

  /**
   * A filtered page in the order of each artifact's first tag, untagged artifacts after the tagged
   * ones (by digest). (Unfiltered pages are slices of the kept order: TagOrders.)
   */
  private async byFirstTag(repositoryId: number, query: ArtifactQuery, dir: 'asc' | 'desc', filtered: <Q extends { where: (f: typeof isTopLevel) => Q }>(select: Q) => Q): Promise<ManifestRow[]> {
    const tagged = filtered(
      this.db
        .selectFrom('tags as t')
        .innerJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
        .where('t.repository_id', '=', repositoryId)
        // The first tag as an index probe per row: as "no smaller tag exists", PostgreSQL hashes
        // the tags and compares every pair of one artifact's tags (10,000 tags: 50 million).
        .where((eb) =>
          eb('t.name', '=', eb.selectFrom('tags as e').select((e) => e.fn.min('e.name').as('first')).whereRef('e.repository_id', '=', 't.repository_id').whereRef('e.manifest_digest', '=', 't.manifest_digest')),
        ),
    );
    const page = await tagged.select('t.manifest_digest as digest').orderBy('t.name', dir).offset(query.offset).limit(query.limit).execute();
    const items = await this.rowsOf(repositoryId, page.map((r) => r.digest));
    if (items.length === query.limit) return items;
    // Past the tagged artifacts: the untagged ones, after as many as the tagged ones left over.
    const untagged = filtered(
      this.db
        .selectFrom('manifests as m')
        .where('m.repository_id', '=', repositoryId)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('tags as e').select('e.name').whereRef('e.repository_id', '=', 'm.repository_id').whereRef('e.manifest_digest', '=', 'm.digest')))),
    );
    let skip = 0;
    if (items.length === 0) {
      const taggedCount = Number((await tagged.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      skip = Math.max(0, query.offset - taggedCount);
    }
    const rest = await untagged.selectAll('m').orderBy('m.digest', dir).offset(skip).limit(query.limit - items.length).execute();
    return [...items, ...rest];
  }

  /** The manifests of `digests` in that order (those gone meanwhile left out). */
  private async rowsOf(repositoryId: number, digests: string[]): Promise<ManifestRow[]> {
    if (digests.length === 0) return [];
    const rows = await this.db.selectFrom('manifests').selectAll().where('repository_id', '=', repositoryId).where('digest', 'in', digests).execute();
    const byDigest = new Map(rows.map((r) => [r.digest, r]));
    return digests.flatMap((d) => byDigest.get(d) ?? []);
  }

  /**
   * The first `max` tags (by name) of each of `digests` in the repository and how many it has (two
   * queries for any number of digests): an artifact may carry a hundred thousand tags, a page shows a few.
   */
  async tagPreviews(repositoryId: number, digests: string[], max: number): Promise<Map<string, TagPreview>> {
    const result = new Map<string, TagPreview>();
    if (digests.length === 0) return result;
    // Counted and picked along the (repository, manifest, name) index: the first `max` of each
    // artifact in a subquery of its own, never all its tags sorted.
    const first = (digest: string) => sql`select * from (select manifest_digest, name from tags where repository_id = ${repositoryId} and manifest_digest = ${digest} order by name limit ${max}) f`;
    const [counts, names] = await Promise.all([
      this.db
        .selectFrom('tags')
        .select(['manifest_digest', (eb) => eb.fn.countAll<number>().as('n')])
        .where('repository_id', '=', repositoryId)
        .where('manifest_digest', 'in', digests)
        .groupBy('manifest_digest')
        .execute(),
      // SQLite allows 500 terms in a compound select: a statement per 100 artifacts.
      Promise.all(chunks([...new Set(digests)], 100).map((part) => sql<{ manifest_digest: string; name: string }>`${sql.join(part.map(first), sql` union all `)}`.execute(this.db))),
    ]);
    for (const row of counts) result.set(row.manifest_digest, { tags: [], count: Number(row.n) });
    for (const row of names.flatMap((n) => n.rows)) result.get(row.manifest_digest)?.tags.push(row.name);
    for (const preview of result.values()) preview.tags.sort();
    return result;
  }

  /** Tags of each of `digests` in the repository. */
  async tagsOf(repositoryId: number, digests: string[]): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>();
    if (digests.length === 0) return result;
    const rows = await this.db.selectFrom('tags').select(['name', 'manifest_digest']).where('repository_id', '=', repositoryId).where('manifest_digest', 'in', digests).orderBy('name').execute();
    for (const row of rows) result.set(row.manifest_digest, [...(result.get(row.manifest_digest) ?? []), row.name]);
    return result;
  }

  /** Number of artifacts (as `artifacts` counts them) in each of `repositoryIds`. */
  async artifactCounts(repositoryIds: number[]): Promise<Map<number, number>> {
    if (repositoryIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('manifests as m')
      .select(['m.repository_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('m.repository_id', 'in', repositoryIds)
      .where(isTopLevel)
      .groupBy('m.repository_id')
      .execute();
    return new Map(rows.map((r) => [r.repository_id, Number(r.n)]));
  }

  /**
   * The stored size of each of `digests`: the manifest, plus — each counted once — the blobs it
   * references and, for an index, its child manifests and their blobs (what pulling all of it moves).
   */
  async totalSizes(repositoryId: number, digests: string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    if (digests.length === 0) return result;
    const refs = (roots: string[]) =>
      roots.length === 0
        ? Promise.resolve([])
        : this.db.selectFrom('manifest_references').select(['manifest_digest', 'child_digest', 'kind']).where('repository_id', '=', repositoryId).where('manifest_digest', 'in', roots).execute();
    const direct = await refs(digests);
    const childDigests = [...new Set(direct.filter((r) => r.kind === 'manifest').map((r) => r.child_digest))];
    const nested = await refs(childDigests);
    const manifestSizes = new Map(
      (await this.db.selectFrom('manifests').select(['digest', 'size']).where('repository_id', '=', repositoryId).where('digest', 'in', [...digests, ...childDigests]).execute()).map((r) => [r.digest, Number(r.size)]),
    );
    const blobDigests = [...new Set([...direct, ...nested].filter((r) => r.kind === 'blob').map((r) => r.child_digest))];
    const blobSizes = new Map(
      blobDigests.length === 0
        ? []
        : (await this.db.selectFrom('repository_blobs').select(['digest', 'size']).where('repository_id', '=', repositoryId).where('digest', 'in', blobDigests).execute()).map((r) => [r.digest, Number(r.size)]),
    );
    const children = (of: string, list: typeof direct) => list.filter((r) => r.manifest_digest === of);
    for (const digest of digests) {
      const counted = new Set<string>([digest]);
      let total = manifestSizes.get(digest) ?? 0;
      const add = (child: string, size: number | undefined) => {
        if (counted.has(child)) return;
        counted.add(child);
        total += size ?? 0;
      };
      for (const ref of children(digest, direct)) {
        if (ref.kind === 'blob') add(ref.child_digest, blobSizes.get(ref.child_digest));
        else {
          add(ref.child_digest, manifestSizes.get(ref.child_digest));
          for (const sub of children(ref.child_digest, nested)) if (sub.kind === 'blob') add(sub.child_digest, blobSizes.get(sub.child_digest));
        }
      }
      result.set(digest, total);
    }
    return result;
  }

  /** Manifests whose subject is `digest`, optionally only those of one artifact type (the referrers API's answer). */
  async referrers(repositoryId: number, digest: string, artifactType?: string): Promise<Referrer[]> {
    return (await this.referrersPushed(repositoryId, digest, artifactType)).map(({ pushedAt: _, ...referrer }) => referrer);
  }

  /** `referrers`, each with when it was pushed (ms), oldest first: the management API shows both. */
  async referrersPushed(repositoryId: number, digest: string, artifactType?: string): Promise<(Referrer & { pushedAt: number })[]> {
    let query = this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'artifact_type', 'annotations', 'created_at'])
      .where('repository_id', '=', repositoryId)
      .where('subject_digest', '=', digest)
      .orderBy('created_at')
      .orderBy('digest');
    if (artifactType !== undefined) query = query.where('artifact_type', '=', artifactType);
    return (await query.execute()).map((r) => {
      const referrer: Referrer & { pushedAt: number } = { digest: r.digest, mediaType: r.media_type, size: Number(r.size), pushedAt: Number(r.created_at) };
      if (r.artifact_type) referrer.artifactType = r.artifact_type;
      if (r.annotations) referrer.annotations = JSON.parse(r.annotations) as Record<string, string>;
      return referrer;
    });
  }
}

/**
 * Artifacts a list filter `q` selects: a tag containing it (ASCII case ignored on both databases),
 * or a digest starting with it (`sha256:` may be left out). LIKE wildcards in `q` are dropped. The
 * tags are matched in one pass over the repository's tags, the digest as a range of the key.
 */
function matching(eb: ExpressionBuilder<Database & { m: Database['manifests'] }, 'm'>, repositoryId: number, q: string) {
  const text = q.replace(/[%_\\]/g, '').toLowerCase();
  const digestPrefix = /^[a-z0-9+._-]+:[a-f0-9]*$/.test(text) ? text : /^[a-f0-9]+$/.test(text) ? `sha256:${text}` : undefined;
  const tagged = eb(
    'm.digest',
    'in',
    eb.selectFrom('tags as f').select('f.manifest_digest').where('f.repository_id', '=', repositoryId).where(sql`lower(f.name)`, 'like', containing(text)),
  );
  // Digest characters all sort before "~": the prefix's range of the (repository, digest) key.
  return digestPrefix ? eb.or([tagged, eb.and([eb('m.digest', '>=', digestPrefix), eb('m.digest', '<', `${digestPrefix}~`)])]) : tagged;
}

function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

/** A manifest that is not a child of an index in its repository (platform images show under their index). */
function isTopLevel(eb: ExpressionBuilder<Database & { m: Database['manifests'] }, 'm'>) {
  return eb.not(
    eb.exists(
      eb.selectFrom('manifest_references as r')
        .select('r.child_digest')
        .whereRef('r.repository_id', '=', 'm.repository_id')
        .whereRef('r.child_digest', '=', 'm.digest')
        .where('r.kind', '=', 'manifest'),
    ),
  );
}
