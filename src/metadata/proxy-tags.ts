import { relaxed, type DB } from './dialect.ts';

/** When a proxy-cache tag was last confirmed with its upstream, and the digest it had then. */
export interface TagCheck {
  digest: string;
  checkedAt: number;
}

/**
 * The freshness of proxy-cache tags, shared by replicas: a tag confirmed by one replica is not
 * asked about again by another within the freshness window.
 */
export class ProxyTagStore {
  constructor(private readonly db: DB) {}

  /** The last confirmation of `tag`, if any. */
  async checked(repositoryId: number, tag: string): Promise<TagCheck | undefined> {
    const row = await this.db.selectFrom('proxy_tags').select(['digest', 'checked_at']).where('repository_id', '=', repositoryId).where('tag', '=', tag).executeTakeFirst();
    return row && { digest: row.digest, checkedAt: Number(row.checked_at) };
  }

  /**
   * Records that the upstream had `tag` at `digest` at `at` (ms). A relaxed commit: losing it to a
   * crash costs one more HEAD to the upstream, nothing else.
   */
  async mark(repositoryId: number, tag: string, digest: string, at: number): Promise<void> {
    const query = this.db
      .insertInto('proxy_tags')
      .values({ repository_id: repositoryId, tag, digest, checked_at: at })
      .onConflict((oc) => oc.columns(['repository_id', 'tag']).doUpdateSet({ digest, checked_at: at }))
      .compile();
    await this.db.executeQuery(relaxed(query));
  }
}
