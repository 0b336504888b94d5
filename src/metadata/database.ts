import { DEFAULT_MIGRATION_TABLE, Kysely, Migrator, sql, type MigrationProvider } from 'kysely';
import { ConfigError } from '../config/overrides.ts';
import { migrations } from './migrations.ts';
import type { OpenedDialect } from './dialect.ts';
import type { Database } from './schema.ts';

/**
 * Opens the metadata database on a dialect and brings its schema up to date. A database migrated
 * by a newer Berth (it records migrations this version does not know) is refused with a
 * ConfigError: this version cannot know what those migrations changed, and must not write to it.
 */
export async function openDatabase(opened: OpenedDialect): Promise<Kysely<Database>> {
  const db = new Kysely<Database>({ dialect: opened.dialect });
  const known = migrations(opened.traits);
  const provider: MigrationProvider = { getMigrations: async () => known };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const unknown = await unknownMigrations(db, Object.keys(known));
    await db.destroy();
    if (unknown.length > 0) {
      const which = unknown.length === 1 ? `migration ${unknown[0]} is` : `migrations ${unknown.join(', ')} are`;
      throw new ConfigError(`the database in ${opened.location} was upgraded by a newer Berth (${which} unknown to this version): run that version or restore the backup taken before the upgrade`);
    }
    if ((error as { code?: string }).code === '42501') {
      throw new ConfigError(`database.url ${opened.location}: the user may not change the schema (${(error as Error).message}): make it the owner of the database, which Berth creates and migrates its tables in`);
    }
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`database migration ${failed ? `${failed} ` : ''}failed: ${(error as Error).message}`);
  }
  return db;
}

/** Migrations the database records as executed that `known` does not contain (none if it cannot tell). */
async function unknownMigrations(db: Kysely<Database>, known: string[]): Promise<string[]> {
  try {
    const { rows } = await sql<{ name: string }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(db);
    return rows.map((r) => r.name).filter((name) => !known.includes(name)).sort();
  } catch {
    return [];
  }
}
