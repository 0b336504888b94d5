import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openDatabase } from './database.ts';
import { sqliteDialect, type DB, type SqliteOptions } from './dialect.ts';
import { ManifestStore } from './manifests.ts';
import { RepositoryStore } from './repositories.ts';
import { UploadStore } from './uploads.ts';
import { UserStore } from './users.ts';
import { AuditStore } from './audit.ts';
import { ProjectStore } from './projects.ts';
import { RobotStore } from './robots.ts';
import { TokenStore } from './tokens.ts';

/** Every metadata aggregate over one database connection. */
export interface Metadata {
  db: DB;
  users: UserStore;
  repositories: RepositoryStore;
  manifests: ManifestStore;
  uploads: UploadStore;
  projects: ProjectStore;
  robots: RobotStore;
  tokens: TokenStore;
  audit: AuditStore;
  close(): Promise<void>;
}

/** Opens (creating and migrating as needed) the embedded SQLite metadata under `dataDir`. */
export async function openMetadata(dataDir: string, options: SqliteOptions = {}): Promise<Metadata> {
  // Private, as the server's start makes it (src/config/data-dir.ts) when it is not there yet.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = await openDatabase(sqliteDialect(join(dataDir, 'berth.db'), options));
  const projects = new ProjectStore(db);
  const repositories = new RepositoryStore(db, projects);
  await repositories.adoptOrphans();
  const audit = new AuditStore(db);
  return {
    db,
    users: new UserStore(db),
    repositories,
    manifests: new ManifestStore(db, projects),
    uploads: new UploadStore(db, projects, repositories),
    projects,
    robots: new RobotStore(db),
    tokens: new TokenStore(db),
    audit,
    async close() {
      // Audit rows still queued are written before the database closes.
      await audit.flush();
      await db.destroy();
    },
  };
}
