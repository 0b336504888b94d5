import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './overrides.ts';

/** Mode of the data directory (and of every directory Berth creates in it). */
const PRIVATE_DIR_MODE = 0o700;

/** What preparing the data directory found, for the log. */
export interface DataDirState {
  /** Permission bits it had, when Berth took group/other permissions away at this start. */
  tightenedFrom?: number;
  /** Why taking them away failed (e.g. the directory belongs to another user). */
  tightenError?: Error;
}

/**
 * Makes the data directory private before anything is stored in it: creates it with mode 0700 (its
 * parents, if missing, with the usual mode) or, when it exists and grants anything to group or
 * others, sets it to 0700. Only the directory itself: nothing inside can be reached without passing
 * through it, and a storage tree of millions of blobs is not walked at every start. What Berth
 * creates inside is private from the start (directories 0700, files 0600; the SQLite database is
 * created 0600 and SQLite gives its -wal/-shm files the database's own mode).
 */
export function prepareDataDir(dataDir: string): DataDirState {
  const dir = resolve(dataDir);
  const unusable = (why: string) =>
    new ConfigError(`dataDir ${dataDir}: ${why}; choose a directory Berth may create and write (--data-dir, BERTH_DATA_DIR or dataDir in the config file)`);
  const failed = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    return unusable(code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of the path is a file, not a directory' : `cannot be created (${code ?? (err as Error).message})`);
  };
  let created = true;
  try {
    mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') created = false;
    else if (code !== 'ENOENT') throw failed(err);
    else {
      try {
        mkdirSync(dirname(dir), { recursive: true });
        mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
      } catch (inner) {
        throw failed(inner);
      }
    }
  }
  let stat;
  try {
    stat = statSync(dir);
  } catch (err) {
    throw failed(err);
  }
  if (!stat.isDirectory()) throw unusable('exists and is a file, not a directory');
  const mode = stat.mode & 0o777;
  if (mode === PRIVATE_DIR_MODE) return {};
  try {
    // A new directory differs only under an unusual umask (which removed owner bits): set, no news.
    chmodSync(dir, PRIVATE_DIR_MODE);
  } catch (err) {
    return created ? { tightenError: err as Error } : { tightenedFrom: mode, tightenError: err as Error };
  }
  return created || (mode & 0o077) === 0 ? {} : { tightenedFrom: mode };
}
