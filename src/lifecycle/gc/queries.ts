// The reads garbage collection makes beyond the stores' own methods: a repository's manifest graph
// (for untagged manifests), what a dry run's untagged deletions would leave unreferenced, and the
// garbage still inside the grace period. Reads only, each one statement: nothing here locks or
// writes, so a dry run built on them changes nothing.
import type { DB } from '../../metadata/dialect.ts';

/** Digests per `in (…)` list. */
const BATCH = 500;

/** A manifest of a repository as the untagged phase weighs it. */
export interface ManifestNode {
  digest: string;
  size: number;
  subject: string | null;
  createdAt: number;
}

/** What decides which manifests of one repository are untagged garbage. */
export interface RepositoryGraph {
  manifests: ManifestNode[];
  /** Manifests with at least one tag. */
  tagged: Set<string>;
  /** Child manifest digest → the manifests of the repository that list it. */
  parents: Map<string, string[]>;
}

/** Up to `limit` repositories (id and name) whose id is greater than `after`, by id. */
export async function repositoryIds(db: DB, after: number, limit: number): Promise<{ id: number; name: string }[]> {
  const rows = await db.selectFrom('repositories').select(['id', 'name']).where('id', '>', after).orderBy('id').limit(limit).execute();
  return rows.map((r) => ({ id: Number(r.id), name: r.name }));
}

/** How many repositories there are (for the untagged phase's ETA). */
export async function repositoryCount(db: DB): Promise<number> {
  const row = await db.selectFrom('repositories').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A repository's manifests, which of them are tagged, and which list which (three reads by its key). */
export async function repositoryGraph(db: DB, repositoryId: number): Promise<RepositoryGraph> {
  const manifests = await db.selectFrom('manifests').select(['digest', 'size', 'subject_digest', 'created_at']).where('repository_id', '=', repositoryId).execute();
  const tags = await db.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).execute();
  const listings = await db.selectFrom('manifest_references').select(['manifest_digest', 'child_digest']).where('repository_id', '=', repositoryId).where('kind', '=', 'manifest').execute();
  const parents = new Map<string, string[]>();
  for (const l of listings) parents.set(l.child_digest, [...(parents.get(l.child_digest) ?? []), l.manifest_digest]);
  return {
    manifests: manifests.map((m) => ({ digest: m.digest, size: Number(m.size), subject: m.subject_digest, createdAt: Number(m.created_at) })),
    tagged: new Set(tags.map((t) => t.manifest_digest)),
    parents,
  };
}

/** The blobs (layers, configs) `digests` of the repository list. */
export async function blobsListedBy(db: DB, repositoryId: number, digests: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (let i = 0; i < digests.length; i += BATCH) {
    const rows = await db
      .selectFrom('manifest_references')
      .select('child_digest')
      .where('repository_id', '=', repositoryId)
      .where('manifest_digest', 'in', digests.slice(i, i + BATCH))
      .where('kind', '=', 'blob')
      .execute();
    for (const row of rows) found.add(row.child_digest);
  }
  return [...found];
}

/** A blob row as a dry run weighs it. */
export interface BlobState {
  digest: string;
  size: number;
  touchedAt: number;
}

/**
 * Of `digests` (sorted), the blobs not being deleted that nothing would reference once the
 * manifests `gone` says are removed: no other manifest has their digest or lists them. The same
 * test `BlobRecords.candidates` makes, with those manifests' references taken as absent; the
 * caller sorts them by the cutoff.
 */
export async function unreferencedWithout(db: DB, digests: readonly string[], gone: (repositoryId: number, manifest: string) => boolean): Promise<BlobState[]> {
  const result: BlobState[] = [];
  for (let i = 0; i < digests.length; i += BATCH) {
    const batch = digests.slice(i, i + BATCH);
    const held = new Set<string>();
    for (const m of await db.selectFrom('manifests').select(['repository_id', 'digest']).where('digest', 'in', batch).execute()) {
      if (!gone(Number(m.repository_id), m.digest)) held.add(m.digest);
    }
    for (const r of await db.selectFrom('manifest_references').select(['repository_id', 'manifest_digest', 'child_digest']).where('child_digest', 'in', batch).execute()) {
      if (!gone(Number(r.repository_id), r.manifest_digest)) held.add(r.child_digest);
    }
    const rows = await db.selectFrom('blobs').select(['digest', 'size', 'touched_at']).where('digest', 'in', batch).where('deleting', '=', 0).orderBy('digest').execute();
    for (const row of rows) if (!held.has(row.digest)) result.push({ digest: row.digest, size: Number(row.size), touchedAt: Number(row.touched_at) });
  }
  return result;
}

/**
 * Blobs nothing references that are still inside the grace period (touched at or after `cutoff`):
 * how many, their bytes, and the oldest touch. One aggregate read (the test of `BlobRecords.candidates`).
 */
export async function unreferencedSince(db: DB, cutoff: number): Promise<{ count: number; bytes: number; oldest: number | null }> {
  const row = await db
    .selectFrom('blobs as b')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('b.size').as('bytes'), eb.fn.min<number>('b.touched_at').as('oldest')])
    .where('b.deleting', '=', 0)
    .where('b.touched_at', '>=', cutoff)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.digest', '=', 'b.digest'))))
    .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))))
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), bytes: Number(row.bytes ?? 0), oldest: row.oldest === null ? null : Number(row.oldest) };
}

/** Names of the projects `ids`. */
export async function projectNames(db: DB, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('projects').select(['id', 'name']).where('id', 'in', [...ids]).execute();
  return new Map(rows.map((r) => [Number(r.id), r.name]));
}
