import { RegistryError } from '../domain/errors.ts';
import type { DB } from './dialect.ts';
import type { BlobRecords } from './blobs.ts';
import { retryingConflicts } from './conflicts.ts';
import type { EventStore } from './events.ts';
import { ImmutableTagError, firstImmutable, type ImmutableCheck } from './immutability.ts';
import { sqlDialectOf } from './jobs.ts';
import { PreparedQuery } from './prepared.ts';
import type { ProjectStore } from './projects.ts';
import type { ManifestRow } from './schema.ts';

/** A manifest to record, with what it references and the tag it was pushed under, if any. */
export interface ManifestRecord {
  repositoryId: number;
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  subjectDigest?: string;
  annotations?: Record<string, string>;
  references: { digest: string; kind: 'blob' | 'manifest' }[];
  tag?: string;
  /**
   * The immutability rule covering `tag` in this repository, if any (`ImmutabilityStore.checkFor`):
   * an immutable tag is only created, or pushed again with the digest it has; moving it to another
   * digest is refused with ImmutableTagError (DENIED) and nothing is recorded.
   */
  immutable?: ImmutableCheck;
  /** Who pushed it. */
  pushedBy?: string;
  /**
   * A proxy cache's copy of an upstream manifest: what it references is recorded (so garbage
   * collection keeps it once fetched) but need not be there yet — blobs and child manifests are
   * fetched when first pulled. Only what is there is held and counted.
   */
  sparse?: boolean;
}

/** What deleting a manifest removed (see `ManifestStore.deleteUntagged`). */
export interface ManifestRemoval {
  /** The manifests removed (the one asked for first, then children), each with the tags it had. */
  manifests: { digest: string; tags: string[] }[];
  /** The repository's project (null before it was adopted). */
  projectId: number | null;
  /** Bytes the project stopped counting. */
  releasedBytes: number;
}

/** Manifests, the blobs and manifests they reference, tags, and referrers. */
export class ManifestStore {
  private readonly digestQuery;
  private readonly tagQuery;
  private readonly pulled;
  private readonly tagsStateQuery;
  private readonly recentPulls = new Map<string, number>();
  private readonly dialect;

  /** `events`: the outbox each change's event is appended to, in the change's transaction. */
  constructor(private readonly db: DB, private readonly projects: ProjectStore, private readonly events: EventStore, private readonly blobs: BlobRecords) {
    this.dialect = sqlDialectOf(db);
    this.digestQuery = new PreparedQuery(db, (repositoryId: number, digest: string) =>
      db.selectFrom('manifests').selectAll().where('repository_id', '=', repositoryId).where('digest', '=', digest),
    );
    this.tagQuery = new PreparedQuery(db, (repositoryId: number, tag: string) =>
      db
        .selectFrom('tags as t')
        .innerJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
        .selectAll('m')
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag),
    );
    this.tagsStateQuery = new PreparedQuery(db, (repositoryId: number) => db.selectFrom('repositories').select(['created_at', 'tags_version']).where('id', '=', repositoryId));
    this.pulled = new PreparedQuery(db, (repositoryId: number, digest: string, now: number, before: number) =>
      db
        .updateTable('manifests')
        .set({ last_pulled_at: now })
        .where('repository_id', '=', repositoryId)
        .where('digest', '=', digest)
        .where((eb) => eb.or([eb('last_pulled_at', 'is', null), eb('last_pulled_at', '<', before)])),
      { relaxed: true },
    );
  }

  /**
   * Records a manifest (idempotent for the same digest) and points `tag` at it, atomically. In the
   * same transaction the project counts the manifest and everything it references (a no-op for
   * what it counts already), so no manifest is ever recorded with content its project does not
   * count: a blob released by a concurrent deletion is counted again, within the quota (DENIED
   * otherwise). What it references must still be there — linked blobs and manifests of the
   * repository — when the transaction runs: MANIFEST_BLOB_UNKNOWN when a concurrent deletion took
   * it away since the caller checked (NAME_UNKNOWN for the whole repository); pushing it again works.
   * The transaction appends an `artifact.pushed` event to the outbox.
   */
  async put(record: ManifestRecord): Promise<void> {
    try {
      // A deadlock victim on PostgreSQL (a deletion locking the same rows) was rolled back whole: try again.
      await retryingConflicts(() => this.record(record));
    } catch (err) {
      // The caller may have counted the manifest's bytes before: give them back unless in use.
      await this.db
        .transaction()
        .execute(async (tx) => {
          const projectId = await projectIdOf(tx, record.repositoryId);
          if (projectId != null) await this.projects.release(tx, projectId, [record.digest]);
        })
        .catch(() => undefined);
      throw err;
    }
  }

  private async record(record: ManifestRecord): Promise<void> {
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      // Key-share locked (PostgreSQL): a deletion of the repository waits for this push — and sees
      // its tags — or deleted it first, and this push finds it gone instead of failing on a key.
      const repository = await repositoryOf(trx, record.repositoryId, this.dialect === 'postgres');
      if (repository === undefined) throw new RegistryError('NAME_UNKNOWN', 'repository was deleted while the manifest was pushed', { reason: 'deleted-during-push' });
      const projectId = repository.projectId;
      const refs = dedupe(record.references);
      // Garbage collection is kept from what this manifest relies on by locks, taken in the order
      // every transaction takes them: manifest rows, then blob rows, then project counts (BlobRecords).
      await trx
        .insertInto('manifests')
        .values({
          repository_id: record.repositoryId,
          digest: record.digest,
          media_type: record.mediaType,
          size: record.size,
          artifact_type: record.artifactType ?? null,
          subject_digest: record.subjectDigest ?? null,
          annotations: record.annotations ? JSON.stringify(record.annotations) : null,
          pushed_by: record.pushedBy ?? null,
          last_pulled_at: null,
          created_at: now,
        })
        // A manifest already there is locked (a no-op update), so that garbage collection deleting it
        // as untagged (`deleteUntagged`) either sees this push's tag once it commits, or has removed
        // it first and this inserts it anew.
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet((eb) => ({ created_at: eb.ref('manifests.created_at') })))
        .execute();
      const present = await this.referenced(trx, record.repositoryId, refs, record.sparse === true);
      const charges = [{ digest: record.digest, size: record.size }, ...present];
      const presentBlobs = record.sparse ? present.filter((p) => p.kind === 'blob') : refs.filter((r) => r.kind === 'blob');
      const gone = await this.blobs.hold(trx, [record.digest, ...presentBlobs.map((r) => r.digest)], now);
      if (gone.length > 0) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'garbage collection removed content this manifest references while it was pushed; push the blob again', { digest: gone[0], reason: 'collected-during-push' });
      }
      if (projectId !== null) await this.projects.chargeAll(trx, projectId, charges, record.digest);
      if (refs.length > 0) {
        await trx
          .insertInto('manifest_references')
          .values(refs.map((r) => ({ repository_id: record.repositoryId, manifest_digest: record.digest, child_digest: r.digest, kind: r.kind })))
          .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'child_digest']).doNothing())
          .execute();
      }
      if (record.tag !== undefined) {
        // An immutable tag's upsert updates only a row that has this digest already. It is decided
        // on the row itself: on PostgreSQL a concurrent push of the same tag is waited for and its
        // row re-checked, so of two pushes of different digests to a new immutable tag one wins.
        const rule = record.immutable?.(record.tag);
        const tagged = await trx
          .insertInto('tags')
          .values({ repository_id: record.repositoryId, name: record.tag, manifest_digest: record.digest, updated_at: now })
          .onConflict((oc) => {
            const update = oc.columns(['repository_id', 'name']).doUpdateSet({ manifest_digest: record.digest, updated_at: now });
            return rule ? update.where('tags.manifest_digest', '=', record.digest) : update;
          })
          .executeTakeFirst();
        if (rule && Number(tagged.numInsertedOrUpdatedRows ?? 0) === 0) throw new ImmutableTagError(rule, repository.name, record.tag, 'move');
        await tagsChanged(trx, record.repositoryId);
      }
      // Last, so that on PostgreSQL the event's id is drawn just before the commit (see EventStore).
      await this.events.append(
        trx,
        {
          type: 'artifact.pushed',
          repository: repository.name,
          project: repository.project,
          digest: record.digest,
          tag: record.tag ?? null,
          actor: record.pushedBy ?? null,
          detail: { mediaType: record.mediaType, size: record.size, ...(record.subjectDigest ? { subject: record.subjectDigest } : {}) },
        },
        now,
      );
    });
  }

  /**
   * Digest and size of each of `refs`, read within `on`: blobs linked into the repository, manifests
   * of it. MANIFEST_BLOB_UNKNOWN for the first that is not there (any more) — unless `sparse`, which
   * leaves out those not there.
   */
  private async referenced(on: DB, repositoryId: number, refs: { digest: string; kind: 'blob' | 'manifest' }[], sparse = false): Promise<{ digest: string; size: number; kind: 'blob' | 'manifest' }[]> {
    const blobs = refs.filter((r) => r.kind === 'blob').map((r) => r.digest);
    const children = refs.filter((r) => r.kind === 'manifest').map((r) => r.digest);
    const sizes = new Map<string, number>();
    if (blobs.length > 0) {
      for (const row of await on.selectFrom('repository_blobs').select(['digest', 'size']).where('repository_id', '=', repositoryId).where('digest', 'in', blobs).execute()) sizes.set(row.digest, Number(row.size));
    }
    const childSizes = new Map<string, number>();
    if (children.length > 0) {
      // Locked (a no-op update), so a concurrent deletion of an untagged child either sees this
      // index's reference once it commits or has removed the child before (then refused here).
      const rows = await on
        .updateTable('manifests')
        .set((eb) => ({ size: eb.ref('size') }))
        .where('repository_id', '=', repositoryId)
        .where('digest', 'in', children)
        .returning(['digest', 'size'])
        .execute();
      for (const row of rows) childSizes.set(row.digest, Number(row.size));
    }
    return refs.flatMap((ref) => {
      const size = ref.kind === 'blob' ? sizes.get(ref.digest) : childSizes.get(ref.digest);
      if (size === undefined && sparse) return [];
      if (size === undefined) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references a ${ref.kind} removed from the repository while the manifest was pushed; push again`, { digest: ref.digest, reason: 'deleted-during-push' });
      }
      return [{ digest: ref.digest, size, kind: ref.kind }];
    });
  }

  /** A manifest by digest. */
  async byDigest(repositoryId: number, digest: string): Promise<ManifestRow | undefined> {
    return this.digestQuery.first(repositoryId, digest);
  }

  /** The manifest a tag points at. */
  async byTag(repositoryId: number, tag: string): Promise<ManifestRow | undefined> {
    return this.tagQuery.first(repositoryId, tag);
  }

  /** Which of `digests` are manifests of the repository. */
  async existing(repositoryId: number, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.db.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', digests).execute();
    return new Set(rows.map((r) => r.digest));
  }

  /**
   * Deletes a manifest and every tag pointing at it; false when it did not exist. An index takes
   * with it the child manifests nothing else holds — untagged, listed by no remaining manifest of
   * the repository — and theirs in turn (as Harbor deletes an artifact's children). In the same
   * transaction, the deleted manifests and the blobs they listed leave the project's accounting
   * unless another artifact of the project still references them (`ProjectStore.release`). The blob
   * links stay: see `RepositoryStore.blobSize` for what the repository still serves. The
   * transaction appends an `artifact.deleted` event per manifest removed, by `actor` if given.
   * With `immutable`, a manifest to remove that has a tag it covers refuses the whole deletion
   * (ImmutableTagError, DENIED), decided on the tags the transaction would remove.
   */
  async delete(repositoryId: number, digest: string, actor?: string, immutable?: ImmutableCheck): Promise<boolean> {
    return retryingConflicts(() => this.db.transaction().execute(async (trx) => (await this.removeTree(trx, repositoryId, digest, { actor, immutable, touch: true })) !== undefined));
  }

  /**
   * Garbage collection's deletion of an untagged manifest: removes it as `delete` does (its children
   * nothing else holds, the project's accounting, events by `actor`) only if, under the lock of its
   * row, it still has no tag, no manifest of the repository lists it, it was pushed before `cutoff`
   * (ms), and it is not a referrer of a manifest of the repository (its subject is gone). Undefined
   * when it was kept (or is gone); otherwise what was removed. The blobs it held keep their touch
   * times: pushed before the cutoff and untagged, they are the same run's garbage (the dry run counts
   * on it), while a blob a push touched meanwhile stays protected by that touch.
   */
  async deleteUntagged(repositoryId: number, digest: string, cutoff: number, actor = 'gc'): Promise<ManifestRemoval | undefined> {
    return this.db.transaction().execute(async (trx) => {
      // Locked first, as `referenced` locks an index's children and `record` a manifest it pushes
      // again: a push tagging or listing it meanwhile is waited for and seen by the later
      // statements; one that comes later waits for this transaction and records the manifest anew.
      const row = await lockManifest(trx, repositoryId, digest);
      if (!row || Number(row.created_at) >= cutoff || (await this.held(trx, repositoryId, digest))) return undefined;
      if (row.subject_digest !== null) {
        const subject = await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', row.subject_digest).executeTakeFirst();
        if (subject) return undefined;
      }
      return this.removeTree(trx, repositoryId, digest, { actor, touch: false });
    });
  }

  /**
   * The removal `delete` and `deleteUntagged` share, within `trx`: `digest`, its tags, and the
   * child manifests nothing else holds; releases what the project no longer references; with
   * `touch`, restarts the grace period of everything it held. Undefined when `digest` did not exist.
   */
  private async removeTree(trx: DB, repositoryId: number, digest: string, options: { actor?: string | undefined; immutable?: ImmutableCheck | undefined; touch: boolean }): Promise<ManifestRemoval | undefined> {
    const { actor, immutable } = options;
    const released = new Set<string>();
    const children: string[] = [];
    const removed: { digest: string; tags: string[] }[] = [];
    const remove = async (target: string): Promise<boolean> => {
      // Locked before its tags are read (PostgreSQL): a push tagging it meanwhile holds a key-share
      // lock until it commits, and is then seen below; one that comes later waits for this one.
      if (immutable && this.dialect === 'postgres') {
        await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', '=', target).forUpdate().execute();
      }
      const tags = await trx.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('manifest_digest', '=', target).orderBy('name').execute();
      const refused = firstImmutable(immutable, tags.map((t) => t.name));
      if (refused) throw new ImmutableTagError(refused.rule, (await repositoryOf(trx, repositoryId))?.name ?? '', refused.tag, 'delete-artifact');
      const refs = await trx.selectFrom('manifest_references').select(['child_digest', 'kind']).where('repository_id', '=', repositoryId).where('manifest_digest', '=', target).execute();
      await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('manifest_digest', '=', target).execute();
      await trx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', '=', target).execute();
      const result = await trx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', target).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
      removed.push({ digest: target, tags: tags.map((t) => t.name) });
      released.add(target);
      for (const ref of refs) (ref.kind === 'blob' ? released.add(ref.child_digest) : children.push(ref.child_digest));
      return true;
    };
    if (!(await remove(digest))) return undefined;
    for (let child = children.pop(); child !== undefined; child = children.pop()) {
      if (released.has(child)) continue;
      // Locked before it is looked at: an index pushed meanwhile that lists it (`referenced` locks
      // its children too) is then either seen by `held` or waits, and finds the child gone.
      if (!(await lockManifest(trx, repositoryId, child)) || (await this.held(trx, repositoryId, child))) continue;
      await remove(child);
    }
    const repository = await repositoryOf(trx, repositoryId);
    // What it held may become garbage: its grace period starts now (see BlobRecords).
    if (options.touch) await this.blobs.touch(trx, released);
    const releasedBytes = repository?.projectId != null ? await this.projects.release(trx, repository.projectId, released) : 0;
    if (removed.some((gone) => gone.tags.length > 0)) await tagsChanged(trx, repositoryId);
    for (const gone of removed) {
      await this.events.append(trx, { type: 'artifact.deleted', repository: repository?.name, project: repository?.project, digest: gone.digest, actor: actor ?? null, detail: { tags: gone.tags } });
    }
    return { manifests: removed, projectId: repository?.projectId ?? null, releasedBytes };
  }

  /** Whether manifest `digest` of the repository has a tag or is listed by one of its manifests. */
  private async held(on: DB, repositoryId: number, digest: string): Promise<boolean> {
    const tagged = await on.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).limit(1).executeTakeFirst();
    if (tagged) return true;
    const listed = await on
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('child_digest', '=', digest)
      .where('kind', '=', 'manifest')
      .limit(1)
      .executeTakeFirst();
    return listed !== undefined;
  }

  /**
   * Removes a tag (the manifest stays); false when there was no such tag. The transaction appends a
   * `tag.deleted` event (with the digest the tag pointed at), by `actor` if given. A tag that
   * `immutable` covers is not removed: ImmutableTagError (DENIED).
   */
  async deleteTag(repositoryId: number, tag: string, actor?: string, immutable?: ImmutableCheck): Promise<boolean> {
    const deleted = await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('tags').select('manifest_digest').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
      if (!row) return false;
      const rule = immutable?.(tag);
      if (rule) throw new ImmutableTagError(rule, (await repositoryOf(trx, repositoryId))?.name ?? '', tag, 'delete-tag');
      const result = await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
      // A concurrent deletion of the same tag won: it has written the event.
      if (Number(result.numDeletedRows) === 0) return false;
      await tagsChanged(trx, repositoryId);
      const repository = await repositoryOf(trx, repositoryId);
      await this.events.append(trx, { type: 'tag.deleted', repository: repository?.name, project: repository?.project, digest: row.manifest_digest, tag, actor: actor ?? null });
      return true;
    });
    return deleted;
  }

  /** Tag names, sorted, after `last`, at most `limit`. */
  async tags(repositoryId: number, limit: number, last?: string): Promise<string[]> {
    let query = this.db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).orderBy('name').limit(limit);
    if (last !== undefined) query = query.where('name', '>', last);
    return (await query.execute()).map((r) => r.name);
  }

  /**
   * When the repository with this id was created and the version of its tags (raised in the
   * transaction of every change to them, on any replica); undefined once the repository is deleted.
   * Read it before reading the tags: a list built from them is current while both stay the same
   * (SQLite hands a deleted repository's id to the next one created: the creation time tells them apart).
   */
  async tagsState(repositoryId: number): Promise<{ createdAt: number; version: number } | undefined> {
    const row = await this.tagsStateQuery.first(repositoryId);
    return row === undefined ? undefined : { createdAt: Number(row.created_at), version: Number(row.tags_version) };
  }

  /**
   * Records a pull (at most once a minute per manifest, so pulls do not turn into writes). A relaxed
   * commit: the time is informative, a power cut may lose its last second.
   */
  async markPulled(repositoryId: number, digest: string, now = Date.now()): Promise<void> {
    // Pulls marked by this process in the last minute skip the write altogether.
    const key = `${repositoryId}@${digest}`;
    const last = this.recentPulls.get(key);
    if (last !== undefined && last > now - 60_000) return;
    if (this.recentPulls.size >= 10_000) this.recentPulls.clear();
    this.recentPulls.set(key, now);
    await this.pulled.run(undefined, repositoryId, digest, now, now - 60_000);
  }

}


/**
 * A repository's name and project (id and name), read within `on`: undefined when the repository
 * is gone; the project is null before the repository was adopted. One lookup by key, as the push
 * made before it had events to name.
 */
async function repositoryOf(on: DB, repositoryId: number, keyShare = false): Promise<{ name: string; projectId: number | null; project: string | null } | undefined> {
  const query = on
    .selectFrom('repositories as r')
    .leftJoin('projects as p', 'p.id', 'r.project_id')
    .select(['r.name', 'r.project_id', 'p.name as project'])
    .where('r.id', '=', repositoryId);
  const row = await (keyShare ? query.forKeyShare('r') : query).executeTakeFirst();
  return row === undefined ? undefined : { name: row.name, projectId: row.project_id, project: row.project };
}

/**
 * Locks a manifest's row within `on` (a no-op update: on PostgreSQL it waits for, and then keeps
 * out, pushes that lock it to tag or list it); its creation time and subject, or undefined when
 * there is no such manifest.
 */
async function lockManifest(on: DB, repositoryId: number, digest: string): Promise<{ created_at: number; subject_digest: string | null } | undefined> {
  return on
    .updateTable('manifests')
    .set((eb) => ({ size: eb.ref('size') }))
    .where('repository_id', '=', repositoryId)
    .where('digest', '=', digest)
    .returning(['created_at', 'subject_digest'])
    .executeTakeFirst();
}

/** Raises the version of the repository's tags, within the transaction `on` that changes them (see `tagsState`). */
async function tagsChanged(on: DB, repositoryId: number): Promise<void> {
  await on.updateTable('repositories').set((eb) => ({ tags_version: eb('tags_version', '+', 1) })).where('id', '=', repositoryId).execute();
}

/** The project of a repository, read within `on`: undefined when the repository is gone, null before it was adopted. */
async function projectIdOf(on: DB, repositoryId: number): Promise<number | null | undefined> {
  const row = await on.selectFrom('repositories').select('project_id').where('id', '=', repositoryId).executeTakeFirst();
  return row === undefined ? undefined : row.project_id;
}

function dedupe<T extends { digest: string }>(items: T[]): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(item.digest)) seen.set(item.digest, item);
  return [...seen.values()];
}
