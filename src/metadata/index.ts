import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from './database.ts';
import { sqliteDialect, type DB } from './dialect.ts';
import { ManifestStore } from './manifests.ts';
import { RepositoryStore } from './repositories.ts';
import { UploadStore } from './uploads.ts';
import { UserStore } from './users.ts';

/** Every metadata aggregate over one database connection. */
export interface Metadata {
  db: DB;
  users: UserStore;
  repositories: RepositoryStore;
  manifests: ManifestStore;
  uploads: UploadStore;
  close(): Promise<void>;
}

/** Opens (creating and migrating as needed) the embedded SQLite metadata under `dataDir`. */
export async function openMetadata(dataDir: string): Promise<Metadata> {
  mkdirSync(dataDir, { recursive: true });
  const db = await openDatabase(sqliteDialect(join(dataDir, 'berth.db')));
  return {
    db,
    users: new UserStore(db),
    repositories: new RepositoryStore(db),
    manifests: new ManifestStore(db),
    uploads: new UploadStore(db),
    close: () => db.destroy(),
  };
}
