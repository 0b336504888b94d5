import type { DB } from './dialect.ts';

/**
 * Private keys kept in the database, so that replicas sharing it share them (see SigningKeysTable
 * for who can read them). The store holds PEM text; what the key is for is the caller's business.
 */
export class SigningKeyStore {
  constructor(private readonly db: DB) {}

  /** The PEM stored under `name`, or undefined. */
  async find(name: string): Promise<string | undefined> {
    return (await this.db.selectFrom('signing_keys').select('pem').where('name', '=', name).executeTakeFirst())?.pem;
  }

  /**
   * The PEM stored under `name`; when there is none yet, `create()`'s is stored first. Processes
   * starting together all get the same key: each inserts its own only if the name is free (`on
   * conflict do nothing`, which waits for a concurrent insert of the same name to commit) and then
   * reads back whichever was stored first. A durable commit.
   */
  async ensure(name: string, create: () => string): Promise<string> {
    const existing = await this.find(name);
    if (existing !== undefined) return existing;
    await this.db
      .insertInto('signing_keys')
      .values({ name, pem: create(), created_at: Date.now() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const stored = await this.find(name);
    if (stored === undefined) throw new Error(`the signing key "${name}" was stored but cannot be read back`);
    return stored;
  }
}
