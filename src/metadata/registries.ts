// Registry endpoints: the other registries Berth talks to (proxy-cache upstreams, replication
// peers). This store keeps rows as they are — the credential sealed by the caller (src/remote/
// endpoints.ts seals and opens it) — and refuses to drop one a project still pulls through.
import { RegistryError } from '../domain/errors.ts';
import type { ChangeFeed } from './changes.ts';
import { containing, type DB } from './dialect.ts';
import { PreparedQuery } from './prepared.ts';
import type { RegistryRow } from './schema.ts';
import { isForeignKeyViolation } from './conflicts.ts';

/** A registry endpoint to create. `credential` is already sealed (never the plain password). */
export interface NewRegistry {
  name: string;
  type: string;
  url: string;
  username: string | null;
  credential: string | null;
  caFile: string | null;
  insecure: boolean;
  description: string | null;
  createdBy: string | null;
}

/** What `update` may change (the name never changes: sealed credentials are bound to it). Absent: unchanged. */
export type RegistryChanges = Partial<Omit<NewRegistry, 'name' | 'createdBy'>>;

/** A page of registry endpoints, by name, with the total for pagination. */
export interface RegistryPage {
  items: RegistryRow[];
  total: number;
}

/**
 * CONFLICT (409): the endpoint is the upstream of proxy-cache projects or the peer of replication
 * rules, named in the message (names are not secret to the administrators who alone manage
 * endpoints) and in `detail.projects` / `detail.rules`.
 */
export class RegistryInUseError extends RegistryError {
  constructor(
    readonly registry: string,
    readonly projects: readonly string[],
    readonly rules: readonly string[] = [],
  ) {
    const names = (list: readonly string[]) => list.slice(0, 20).map((p) => `"${p}"`).join(', ') + (list.length > 20 ? ` and ${list.length - 20} more` : '');
    const users = [
      ...(projects.length > 0 ? [`the upstream of proxy-cache ${projects.length === 1 ? 'project' : 'projects'} ${names(projects)}`] : []),
      ...(rules.length > 0 ? [`the peer of replication ${rules.length === 1 ? 'rule' : 'rules'} ${names(rules)}`] : []),
    ];
    super('CONFLICT', `registry endpoint "${registry}" is ${users.join(' and ')}: delete ${projects.length + rules.length === 1 ? 'it' : 'them'} first`, {
      projects: [...projects],
      rules: [...rules],
    });
  }
}

/**
 * The `registries` table. `findById` — what every proxy-cache miss consults — is served from memory;
 * every change made through this store drops the entry on every replica (the `registry` topic of the
 * change feed, keyed by id), and entries are re-read after `CACHE_MS` anyway. Errors: only the
 * database's own, and RegistryInUseError from `delete`.
 */
export class RegistryStore {
  private readonly cache = new Map<number, { row: RegistryRow | undefined; at: number }>();
  private static readonly CACHE_MS = 5_000;
  private readonly byId;
  private readonly byName;

  constructor(private readonly db: DB, private readonly changes: ChangeFeed) {
    changes.subscribe('registry', (key) => (key === undefined ? this.cache.clear() : this.cache.delete(Number(key))));
    this.byId = new PreparedQuery(db, (id: number) => db.selectFrom('registries').selectAll().where('id', '=', id));
    this.byName = new PreparedQuery(db, (name: string) => db.selectFrom('registries').selectAll().where('name', '=', name));
  }

  /** The endpoint named `name` (read from the database: management reads are rare). */
  async find(name: string): Promise<RegistryRow | undefined> {
    return normalize(await this.byName.first(name));
  }

  /** The endpoint with id `id`; never staler than a change feed notification's trip (or `CACHE_MS`). */
  async findById(id: number): Promise<RegistryRow | undefined> {
    const hit = this.cache.get(id);
    if (hit && this.changes.live && Date.now() - hit.at < RegistryStore.CACHE_MS) return hit.row;
    const since = this.changes.version('registry');
    const row = normalize(await this.byId.first(id));
    if (this.changes.unchangedSince('registry', since)) {
      if (this.cache.size >= 1_000) this.cache.clear();
      this.cache.set(id, { row, at: Date.now() });
    }
    return row;
  }

  /** Creates an endpoint and returns its row; undefined when the name is taken. */
  async create(values: NewRegistry, now = Date.now()): Promise<RegistryRow | undefined> {
    const result = await this.db
      .insertInto('registries')
      .values({
        name: values.name,
        type: values.type,
        url: values.url,
        username: values.username,
        credential: values.credential,
        ca_file: values.caFile,
        insecure: values.insecure ? 1 : 0,
        description: values.description,
        created_by: values.createdBy,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    const row = (await this.find(values.name))!;
    // SQLite may give a deleted endpoint's id to this one: no replica may keep the old row under it.
    await this.changed(row.id);
    return row;
  }

  /** Endpoints by name; `nameLike` filters by substring. */
  async list(options: { offset: number; limit: number; nameLike?: string }): Promise<RegistryPage> {
    let query = this.db.selectFrom('registries');
    if (options.nameLike) query = query.where('name', 'like', containing(options.nameLike));
    const total = Number((await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const items = await query.selectAll().orderBy('name').offset(options.offset).limit(options.limit).execute();
    return { items: items.map((row) => normalize(row)!), total };
  }

  /** Changes endpoint `name`; its new row, or undefined when there is no such endpoint. */
  async update(name: string, changes: RegistryChanges, now = Date.now()): Promise<RegistryRow | undefined> {
    const set: Partial<Omit<RegistryRow, 'id' | 'name' | 'created_at' | 'created_by'>> = { updated_at: now };
    if (changes.type !== undefined) set.type = changes.type;
    if (changes.url !== undefined) set.url = changes.url;
    if (changes.username !== undefined) set.username = changes.username;
    if (changes.credential !== undefined) set.credential = changes.credential;
    if (changes.caFile !== undefined) set.ca_file = changes.caFile;
    if (changes.insecure !== undefined) set.insecure = changes.insecure ? 1 : 0;
    if (changes.description !== undefined) set.description = changes.description;
    const result = await this.db.updateTable('registries').set(set).where('name', '=', name).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    const row = (await this.find(name))!;
    await this.changed(row.id);
    return row;
  }

  /**
   * Deletes endpoint `name`; false when there is none. Rejects with RegistryInUseError while a
   * project uses it as its proxy-cache upstream or a replication rule as its peer — decided by the
   * database's foreign keys too, so a project or rule created meanwhile (by another replica) cannot
   * be left without its endpoint.
   */
  async delete(name: string): Promise<boolean> {
    const row = await this.find(name);
    if (!row) return false;
    const [users, rules] = await Promise.all([this.usedBy(row.id), this.usedByRules(row.id)]);
    if (users.length > 0 || rules.length > 0) throw new RegistryInUseError(name, users, rules);
    try {
      const result = await this.db.deleteFrom('registries').where('id', '=', row.id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return false;
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new RegistryInUseError(name, await this.usedBy(row.id), await this.usedByRules(row.id));
      throw err;
    }
    await this.changed(row.id);
    return true;
  }

  /** Names of the projects pulling through endpoint `id` (proxy-cache projects), sorted. */
  async usedBy(id: number): Promise<string[]> {
    const rows = await this.db.selectFrom('projects').select('name').where('proxy_registry_id', '=', id).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  /** Names of the replication rules whose peer is endpoint `id`, sorted. */
  async usedByRules(id: number): Promise<string[]> {
    const rows = await this.db.selectFrom('replication_rules').select('name').where('registry_id', '=', id).orderBy('name').execute();
    return rows.map((r) => r.name);
  }

  /** Drops endpoint `id` from this cache and every replica's. */
  private async changed(id: number): Promise<void> {
    this.cache.delete(id);
    await this.changes.publish('registry', String(id));
  }
}

/** PostgreSQL returns bigint columns as strings: numbers here, as the row type says. */
function normalize(row: RegistryRow | undefined): RegistryRow | undefined {
  if (!row) return undefined;
  return { ...row, id: Number(row.id), insecure: Number(row.insecure), created_at: Number(row.created_at), updated_at: Number(row.updated_at) };
}
