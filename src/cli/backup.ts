// `berth backup DEST`: a backup of a data directory taken while Berth runs. The database through
// SQLite's online backup API (a consistent snapshot, whatever Berth writes meanwhile), then the
// signing key, then the blobs — content-addressed and immutable, so copying them after the snapshot
// brings every blob the snapshot refers to. The result is a data directory: to restore, stop Berth,
// put it in place of the data directory, start Berth.
import { closeSync, constants, openSync, type Dirent } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type SQLite from 'better-sqlite3';
import type { Command } from 'commander';
import { blobPath } from '../storage/filesystem/paths.ts';
import { VERSION } from '../version.ts';
import { formatBytes, printFields, printJSON } from './format.ts';
import { CliError } from './output.ts';

/** What a backup holds, as printed (and with `--json`, as is). */
export interface BackupSummary {
  /** The data directory backed up, and the backup (both absolute). */
  source: string;
  destination: string;
  /** The Berth version that took it (a downgrade restores a backup and runs that version). */
  berthVersion: string;
  database: {
    bytes: number;
    /** The last migration applied to the database: its schema version. */
    schema: string | null;
    /** `PRAGMA integrity_check` of the copy. */
    integrity: 'ok';
    /** Upload sessions still open at the snapshot: left out with their bytes (clients start over). */
    uploadSessionsLeftOut: number;
  };
  keys: { files: number };
  blobs: {
    copied: number;
    bytes: number;
    /** Blob files deleted between listing and copying (harmless unless listed in missingBlobs). */
    vanished: number;
  };
  /** Manifests and blobs the database says artifacts consist of that the backup lacks: empty, or it is incomplete. */
  missingBlobs: string[];
  durationMs: number;
}

const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;
/** Files copied at once. */
const PARALLEL_COPIES = 8;
/** Pages per step of the SQLite backup: all of them, so the copy is one read transaction. */
const ALL_PAGES = 0x7fffffff;

/**
 * The data directory to back up: `--data-dir`, else the one `berth serve` would use with the same
 * `--config` (or BERTH_CONFIG) and BERTH_DATA_DIR. It must hold a database: a backup never makes one.
 */
async function sourceDir(opts: { dataDir?: string; config?: string }): Promise<string> {
  if (opts.dataDir !== undefined && opts.config !== undefined) throw new CliError('--data-dir and --config: pick one');
  let dir = opts.dataDir;
  if (dir === undefined) {
    // Loaded on use, so other subcommands start without zod.
    const { loadConfig } = await import('../config/load.ts');
    const config = loadConfig(opts.config === undefined ? {} : { file: opts.config });
    if (config.database.url || config.storage.s3) {
      throw new CliError('berth backup copies an embedded installation (SQLite and blobs in the data directory); this configuration keeps metadata in PostgreSQL or blobs in S3: back those up with their own tools (pg_dump or continuous archiving, bucket versioning or replication), see the README, "Scaling out"');
    }
    dir = config.dataDir;
  }
  dir = path.resolve(dir);
  const file = path.join(dir, 'berth.db');
  try {
    if (!(await stat(file)).isFile()) throw new CliError(`no Berth database in ${dir}: ${file} is not a file`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError(`no Berth database in ${dir}: ${file} does not exist (give the data directory with --data-dir, or the server's --config)`);
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return dir;
}

/** Makes DEST (0700), or takes an empty one; refuses anything else. True when it was made here. */
async function prepareDestination(dest: string, source: string): Promise<boolean> {
  const relative = path.relative(source, dest);
  if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
    throw new CliError(`${dest}: inside the data directory ${source}; a backup must live elsewhere (it would be lost with it)`);
  }
  try {
    await mkdir(dest, { mode: PRIVATE_DIR });
    await chmod(dest, PRIVATE_DIR); // mkdir's mode is reduced by the umask
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`${dest}: its parent directory does not exist`);
    if (code !== 'EEXIST') throw new CliError(`${dest}: cannot be created (${code ?? (err as Error).message})`);
  }
  if (!(await stat(dest)).isDirectory()) throw new CliError(`${dest}: exists and is not a directory; give a new or empty directory`);
  if ((await readdir(dest)).length > 0) throw new CliError(`${dest}: exists and is not empty; give a new or empty directory (a backup never overwrites)`);
  await chmod(dest, PRIVATE_DIR);
  return false;
}

/**
 * Copies the database through SQLite's online backup API: pages are read in one read transaction
 * (should Berth commit between the first and the last step, SQLite starts over), so the copy is
 * the database as of one moment. Berth is never blocked: under WAL a reader holds no writer back.
 */
async function copyDatabase(Database: typeof SQLite, file: string, target: string): Promise<void> {
  // Created private first: SQLite gives its journal the database file's mode.
  closeSync(openSync(target, 'wx', PRIVATE_FILE));
  // Opened directly, not through the metadata layer: that would migrate, and a backup never changes
  // the live database.
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    await db.backup(target, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
}

/** Checks the copy and takes out what a backup cannot restore: upload sessions, whose bytes it leaves out. */
function finishDatabase(Database: typeof SQLite, file: string): { schema: string | null; uploadSessions: number; referenced: string[] } {
  const db = new Database(file, { fileMustExist: true });
  try {
    const problems = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    if (problems.join() !== 'ok') throw new CliError(`the copy of the database fails PRAGMA integrity_check (so does the data directory's): ${problems.slice(0, 3).join('; ')}`);
    const optional = <T>(read: () => T, fallback: T): T => {
      try {
        return read();
      } catch {
        return fallback; // a schema without that table (older or newer Berth)
      }
    };
    const schema = optional(() => (db.prepare('select max(name) from kysely_migration').pluck().get() as string | null) ?? null, null);
    const uploadSessions = optional(() => db.prepare('delete from upload_sessions').run().changes, 0);
    // What pulls need: every manifest, and every blob and child manifest one lists. (Links of a
    // repository to blobs no manifest lists any more are not: garbage collection may take those.)
    const referenced = optional(() => db.prepare('select digest from manifests union select child_digest from manifest_references order by 1').pluck().all() as string[], []);
    return { schema, uploadSessions, referenced };
  } finally {
    db.close();
  }
}

/** Copies a file (a reflink where the filesystem can), private and on disk; undefined if the source is gone. */
async function copyPrivate(from: string, to: string): Promise<number | undefined> {
  try {
    await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(from))) return undefined;
    throw err;
  }
  const file = await open(to, 'r');
  try {
    await file.chmod(PRIVATE_FILE);
    await file.sync();
    return (await file.stat()).size;
  } finally {
    await file.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Entries of a directory; none when it does not exist. */
async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Runs `task` over `items`, `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Copies committed blobs, `storage/blobs/<alg>/<xx>/<hex>` (see storage/filesystem/paths.ts), and
 * nothing else: `storage/uploads/` holds uploads in progress and temporary files.
 */
async function copyBlobs(sourceStorage: string, targetStorage: string, progress: (copied: number, bytes: number) => void): Promise<BackupSummary['blobs']> {
  const result = { copied: 0, bytes: 0, vanished: 0 };
  await mkdir(path.join(targetStorage, 'blobs'), { recursive: true, mode: PRIVATE_DIR });
  for (const alg of await entries(path.join(sourceStorage, 'blobs'))) {
    if (!alg.isDirectory() || !/^sha(256|512)$/.test(alg.name)) continue;
    for (const prefix of await entries(path.join(sourceStorage, 'blobs', alg.name))) {
      if (!prefix.isDirectory() || !/^[a-f0-9]{2}$/.test(prefix.name)) continue;
      const from = path.join(sourceStorage, 'blobs', alg.name, prefix.name);
      const to = path.join(targetStorage, 'blobs', alg.name, prefix.name);
      const blobs = (await entries(from)).filter((e) => e.isFile() && e.name.startsWith(prefix.name) && /^([a-f0-9]{64}|[a-f0-9]{128})$/.test(e.name));
      if (blobs.length === 0) continue;
      await mkdir(to, { recursive: true, mode: PRIVATE_DIR });
      await inParallel(blobs, PARALLEL_COPIES, async (blob) => {
        const size = await copyPrivate(path.join(from, blob.name), path.join(to, blob.name));
        if (size === undefined) result.vanished++;
        else {
          result.copied++;
          result.bytes += size;
          progress(result.copied, result.bytes);
        }
      });
      await syncDir(to);
    }
    await syncDir(path.join(targetStorage, 'blobs', alg.name)).catch(() => undefined);
  }
  await mkdir(path.join(targetStorage, 'uploads'), { mode: PRIVATE_DIR });
  return result;
}

/** Backs up the data directory `source` into `dest` (new or empty). Safe while Berth runs on `source`. */
export async function backupDataDir(source: string, dest: string, progress: (copied: number, bytes: number) => void = () => undefined): Promise<BackupSummary> {
  const started = Date.now();
  // Loaded on use, so other subcommands start without the database driver.
  const { default: Database } = await import('better-sqlite3');
  const created = await prepareDestination(dest, source);
  try {
    const dbCopy = path.join(dest, 'berth.db');
    await copyDatabase(Database, path.join(source, 'berth.db'), dbCopy);
    const db = finishDatabase(Database, dbCopy);

    let keyFiles = 0;
    const keys = await entries(path.join(source, 'keys'));
    if (keys.length > 0) await mkdir(path.join(dest, 'keys'), { mode: PRIVATE_DIR });
    for (const key of keys) {
      if (key.isFile() && (await copyPrivate(path.join(source, 'keys', key.name), path.join(dest, 'keys', key.name))) !== undefined) keyFiles++;
    }

    // After the snapshot: every blob it refers to was committed before it, and blobs never change.
    const blobs = await copyBlobs(path.join(source, 'storage'), path.join(dest, 'storage'), progress);
    const missingBlobs: string[] = [];
    for (const digest of db.referenced) {
      let file: string;
      try {
        file = blobPath(path.join(dest, 'storage'), digest);
      } catch {
        continue; // not a digest the filesystem store keeps
      }
      if (!(await exists(file))) missingBlobs.push(digest);
    }
    await syncDir(path.join(dest, 'storage'));
    await syncDir(dest);
    return {
      source,
      destination: dest,
      berthVersion: VERSION,
      database: { bytes: (await stat(dbCopy)).size, schema: db.schema, integrity: 'ok', uploadSessionsLeftOut: db.uploadSessions },
      keys: { files: keyFiles },
      blobs,
      missingBlobs,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    // Nothing half-made is left behind to be mistaken for a backup.
    if (created) await rm(dest, { recursive: true, force: true });
    else for (const entry of await readdir(dest)) await rm(path.join(dest, entry), { recursive: true, force: true });
    throw err;
  }
}

function printSummary(s: BackupSummary): void {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const left = s.database.uploadSessionsLeftOut;
  printFields([
    ['backup', `${s.destination} (of ${s.source})`],
    ['database', `berth.db, ${formatBytes(s.database.bytes)}, integrity ok, schema ${s.database.schema ?? 'unknown'}${left > 0 ? `; left out ${plural(left, 'upload session')} in progress (clients start those uploads again)` : ''}`],
    ['signing key', s.keys.files > 0 ? `keys/ (${plural(s.keys.files, 'file')})` : 'none found (a restored Berth makes a new key; tokens issued before stop working)'],
    ['blobs', `${plural(s.blobs.copied, 'blob')} copied, ${formatBytes(s.blobs.bytes)}${s.blobs.vanished > 0 ? ` (${s.blobs.vanished} deleted during the copy)` : ''}`],
    ['took', `${(s.durationMs / 1000).toFixed(1)} s`],
    ['restore', `stop Berth, make ${s.destination} its data directory (owned by Berth's user), start Berth`],
  ]);
}

/** `berth backup DEST [--data-dir DIR | --config FILE] [--json]`. */
export function backupCommand(program: Command): void {
  program
    .command('backup')
    .description('back up a data directory while Berth runs: the database (a consistent snapshot), the signing key and the blobs, into DEST (new or empty)')
    .argument('<dest>', 'directory to create (or an empty one); the result is a data directory')
    .option('--data-dir <dir>', 'the data directory to back up')
    .option('-c, --config <file>', "the server's configuration file, for its dataDir (env: BERTH_CONFIG)")
    .option('--json', 'print the summary as JSON')
    .action(async (destArg: string, opts: { dataDir?: string; config?: string; json?: boolean }) => {
      const source = await sourceDir(opts);
      const dest = path.resolve(destArg);
      let lastShown = 0;
      const showProgress = !opts.json && process.stderr.isTTY;
      const summary = await backupDataDir(source, dest, (copied, bytes) => {
        if (!showProgress || Date.now() - lastShown < 1000) return;
        lastShown = Date.now();
        process.stderr.write(`\rcopying blobs: ${copied}, ${formatBytes(bytes)}   `);
      }).catch((err: unknown) => {
        if (err instanceof CliError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        const hint = code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN' ? " (run it as Berth's user, or as root)" : '';
        throw new CliError(`backup failed, nothing kept in ${dest}: ${(err as Error).message}${hint}`);
      });
      if (lastShown > 0) process.stderr.write('\r\x1b[K');
      if (opts.json) printJSON(summary);
      else printSummary(summary);
      if (summary.missingBlobs.length > 0) {
        const n = summary.missingBlobs.length;
        const shown = summary.missingBlobs.slice(0, 3).join(', ') + (n > 3 ? ', …' : '');
        throw new CliError(`the backup is incomplete: ${n === 1 ? '1 blob its database refers to is' : `${n} blobs its database refers to are`} missing (${shown}): missing from ${source}/storage too, or deleted during the backup; run it again`);
      }
    });
}
