import type { Generated, Insertable, Selectable } from 'kysely';

/** Table types for Kysely. Times are milliseconds since the epoch (portable across SQLite and PostgreSQL). */
export interface Database {
  users: UsersTable;
  repositories: RepositoriesTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  upload_sessions: UploadSessionsTable;
}

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  is_admin: number;
  /** Bumped on password change: refresh tokens and cached logins of older generations stop working. */
  credential_generation: number;
  created_at: number;
}

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

/** Which repositories may serve which blobs (blobs themselves are shared and deduplicated). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  size: number;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject_digest: string | null;
  /** JSON text of the manifest's annotations, for the referrers API. */
  annotations: string | null;
  created_at: number;
}

/** What each manifest points at, for garbage collection and integrity checks. */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  child_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  manifest_digest: string;
  updated_at: number;
}

export interface UploadSessionsTable {
  id: string;
  repository: string;
  created_by: string | null;
  /** JSON of how the opening request arrived (host, scheme, forwarded headers, client, user agent). */
  origin: string | null;
  created_at: number;
  updated_at: number;
}

export type UserRow = Selectable<UsersTable>;
export type ManifestRow = Selectable<ManifestsTable>;
export type NewManifest = Insertable<ManifestsTable>;
export type UploadSessionRow = Selectable<UploadSessionsTable>;
