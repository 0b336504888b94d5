import type { ExpressionBuilder } from 'kysely';
import type { DB } from './dialect.ts';
import type { Database, ManifestRow } from './schema.ts';

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
  constructor(private readonly db: DB) {}

  /**
   * A page of a repository's artifacts: its manifests except those only present as children of an
   * index in the repository (platform images show under their index), newest first.
   */
  async artifacts(repositoryId: number, offset: number, limit: number): Promise<{ items: ManifestRow[]; total: number }> {
    const query = this.db
      .selectFrom('manifests as m')
      .where('m.repository_id', '=', repositoryId)
      .where(isTopLevel);
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll('m').orderBy('m.created_at', 'desc').orderBy('m.digest').offset(offset).limit(limit).execute();
    return { items, total };
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

  /** Manifests whose subject is `digest`, optionally only those of one artifact type. */
  async referrers(repositoryId: number, digest: string, artifactType?: string): Promise<Referrer[]> {
    let query = this.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('repository_id', '=', repositoryId)
      .where('subject_digest', '=', digest)
      .orderBy('created_at')
      .orderBy('digest');
    if (artifactType !== undefined) query = query.where('artifact_type', '=', artifactType);
    return (await query.execute()).map((r) => {
      const referrer: Referrer = { digest: r.digest, mediaType: r.media_type, size: Number(r.size) };
      if (r.artifact_type) referrer.artifactType = r.artifact_type;
      if (r.annotations) referrer.annotations = JSON.parse(r.annotations) as Record<string, string>;
      return referrer;
    });
  }
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
