import { Kysely, Migrator, type MigrationProvider } from 'kysely';
import { migrations } from './migrations.ts';
import type { OpenedDialect } from './dialect.ts';
import type { Database } from './schema.ts';

/** Opens the metadata database on a dialect and brings its schema up to date. */
export async function openDatabase(opened: OpenedDialect): Promise<Kysely<Database>> {
  const db = new Kysely<Database>({ dialect: opened.dialect });
  const provider: MigrationProvider = { getMigrations: async () => migrations(opened.traits) };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    await db.destroy();
    throw new Error(`database migration ${failed ?? ''} failed: ${(error as Error).message}`);
  }
  return db;
}
