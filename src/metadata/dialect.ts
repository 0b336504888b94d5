import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type Dialect } from 'kysely';
import type { Database } from './schema.ts';

/** The few things that differ between the databases Berth runs on. Everything else is shared SQL. */
export interface DialectTraits {
  /** Column type of auto-numbered primary keys (SQLite: an `integer` primary key is the rowid). */
  idType: 'integer' | 'serial';
}

export interface OpenedDialect {
  dialect: Dialect;
  traits: DialectTraits;
  /** Releases what the dialect opened outside Kysely (nothing for most). */
  close?: () => void;
}

/**
 * Opens the embedded SQLite database at `file` with the settings a server needs:
 * WAL (readers never block the writer), a busy timeout instead of SQLITE_BUSY under load,
 * foreign keys on, and `synchronous=FULL` so a committed push survives a power cut.
 */
export function sqliteDialect(file: string): OpenedDialect {
  const database = new SQLite(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.pragma('busy_timeout = 10000');
  database.pragma('foreign_keys = ON');
  return { dialect: new SqliteDialect({ database }), traits: { idType: 'integer' } };
}

export type DB = Kysely<Database>;
