import type { Expression, ExpressionBuilder, SqlBool } from 'kysely';
import type { DB } from './dialect.ts';
import type { Database } from './schema.ts';

/** Whether manifest `m` is a top-level artifact of its repository (ArtifactStore's definition). */
export type TopLevel = (eb: ExpressionBuilder<Database & { m: Database['manifests'] }, 'm'>) => Expression<SqlBool>;

/** Digests kept over all cached orders (about 200 bytes each): a few repositories of 100,000 artifacts. */
const MAX_DIGESTS = 300_000;

interface Order {
  /** What the order was computed from (see `stateOf`): reused only while it is the same. */
  state: string;
  /** Top-level artifacts by first tag (by name), then the untagged ones by digest. */
  digests: string[];
  /** How many of `digests` are tagged (they come first). */
  tagged: number;
}

/**
 * A repository's artifacts in the order of their first tag, computed once and kept while the
 * repository does not change. A page deep into that order cannot be read along an index on either
 * database (an artifact's first tag is an aggregate, and PostgreSQL sorts the whole repository for
 * any offset), so the order is kept here and pages are slices of it.
 *
 * Never stale: every use first reads the repository's state — its creation time, its tags version
 * (raised in the transaction of every tag change, on any replica), its number of manifests and the
 * newest one's push time, which a push or a deletion of any manifest (an index hiding or showing its
 * children among the top-level artifacts) changes — and recomputes when it differs.
 */
export class TagOrders {
  /** By repository id, least recently used first. */
  private readonly orders = new Map<number, Order>();
  private kept = 0;

  constructor(private readonly db: DB, private readonly topLevel: TopLevel) {}

  /**
   * `limit` digests from `offset` of the repository's top-level artifacts by first tag (descending
   * with `desc`), untagged ones last by digest either way, and how many there are in all.
   * Undefined when the repository is gone.
   */
  async page(repositoryId: number, desc: boolean, offset: number, limit: number): Promise<{ digests: string[]; total: number } | undefined> {
    const state = await this.stateOf(repositoryId);
    if (state === undefined) return undefined;
    let order = this.orders.get(repositoryId);
    if (order?.state === state) {
      this.orders.delete(repositoryId);
      this.orders.set(repositoryId, order);
    } else {
      order = { state, ...(await this.compute(repositoryId)) };
      this.forget(repositoryId);
      this.orders.set(repositoryId, order);
      this.kept += order.digests.length;
      for (const id of this.orders.keys()) {
        if (this.kept <= MAX_DIGESTS || id === repositoryId) break;
        this.forget(id);
      }
    }
    const all = order.digests;
    const total = all.length;
    if (!desc) return { digests: all.slice(offset, offset + limit), total };
    // Descending: tagged ones from the end of their part, then the untagged from the end of theirs.
    const digests: string[] = [];
    for (let i = offset; i < Math.min(total, offset + limit); i++) digests.push(i < order.tagged ? all[order.tagged - 1 - i]! : all[total - 1 - (i - order.tagged)]!);
    return { digests, total };
  }

  private forget(repositoryId: number): void {
    const old = this.orders.get(repositoryId);
    if (!old) return;
    this.orders.delete(repositoryId);
    this.kept -= old.digests.length;
  }

  /** The state an order is valid for, read fresh; undefined when the repository is gone. */
  private async stateOf(repositoryId: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('repositories as r')
      .select([
        'r.created_at',
        'r.tags_version',
        (eb) => eb.selectFrom('manifests as m').select((e) => e.fn.countAll<number>().as('n')).whereRef('m.repository_id', '=', 'r.id').as('manifests'),
        (eb) => eb.selectFrom('manifests as m').select((e) => e.fn.max('m.created_at').as('t')).whereRef('m.repository_id', '=', 'r.id').as('newest'),
      ])
      .where('r.id', '=', repositoryId)
      .executeTakeFirst();
    return row === undefined ? undefined : `${row.created_at}:${row.tags_version}:${row.manifests}:${row.newest}`;
  }

  private async compute(repositoryId: number): Promise<{ digests: string[]; tagged: number }> {
    const tagged = await this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.manifest_digest'))
      .select(['t.manifest_digest as digest', (eb) => eb.fn.min('t.name').as('first')])
      .where('t.repository_id', '=', repositoryId)
      .where(this.topLevel)
      .groupBy('t.manifest_digest')
      .orderBy('first')
      .execute();
    const untagged = await this.db
      .selectFrom('manifests as m')
      .select('m.digest')
      .where('m.repository_id', '=', repositoryId)
      .where(this.topLevel)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('tags as e').select('e.name').whereRef('e.repository_id', '=', 'm.repository_id').whereRef('e.manifest_digest', '=', 'm.digest'))))
      .orderBy('m.digest')
      .execute();
    return { digests: [...tagged.map((r) => r.digest), ...untagged.map((r) => r.digest)], tagged: tagged.length };
  }
}
