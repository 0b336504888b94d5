// `berth migrate --to <config>`: moves an installation (normally the embedded one: SQLite and
// blobs under dataDir) into the stores of another configuration (PostgreSQL + S3), through the
// logic of src/migrate/. This file is the command line: configurations, the running-server check,
// the signing key, progress on stderr and the summary.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../config/overrides.ts';
import type { Config } from '../config/schema.ts';
import type { MigrationProgress, MigrationSummary } from '../migrate/index.ts';
import { formatBytes, parseInteger, printFields, printJSON, shortDigest } from './format.ts';
import { CliError } from './output.ts';

/**
 * The metadata database a configuration names, without credentials or role (the same database
 * under another role is still the same): `sqlite:/abs/berth.db` or `postgres://host:port/db`.
 */
export function describeDatabase(config: Config): string {
  if (!config.database.url) return `sqlite:${path.join(path.resolve(config.dataDir), 'berth.db')}`;
  const url = new URL(config.database.url);
  return `postgres://${url.hostname}:${url.port || '5432'}${url.pathname}`;
}

/** The blob store a configuration names, without credentials: `filesystem:/abs/storage` or `s3://bucket/prefix (endpoint)`. */
export function describeStorage(config: Config): string {
  const s3 = config.storage.s3;
  if (!s3) return `filesystem:${path.join(path.resolve(config.dataDir), 'storage')}`;
  return `s3://${s3.bucket}/${s3.prefix}${s3.endpoint ? ` at ${new URL(s3.endpoint).origin}` : ` in ${s3.region}`}`;
}

/**
 * Checks that `target` can receive `source`: it names PostgreSQL and S3, and neither store is the
 * source's. Throws a CliError saying what to change.
 */
export function checkConfigs(source: Config, target: Config, targetFile: string): void {
  const missing = [!target.database.url && 'database.url (PostgreSQL)', !target.storage.s3 && 'storage.s3 (the bucket)'].filter(Boolean);
  if (missing.length > 0) {
    throw new CliError(`${targetFile}: sets no ${missing.join(' and no ')}; berth migrate moves an installation to PostgreSQL + S3, so the target configuration needs both`);
  }
  if (describeDatabase(source) === describeDatabase(target)) throw new CliError(`${targetFile}: its database is the source's own (${describeDatabase(target)}); give another`);
  if (describeStorage(source) === describeStorage(target)) throw new CliError(`${targetFile}: its storage is the source's own (${describeStorage(target)}); give another bucket or prefix`);
}

/**
 * Refuses a source whose SQLite database another process has open — a Berth still serving from
 * it: its writes after the snapshot would be lost in the move. SQLite grants the exclusive lock
 * only when no other connection holds the file (a server keeps one open all the time).
 */
export async function checkNotInUse(dataDir: string): Promise<void> {
  const file = path.join(path.resolve(dataDir), 'berth.db');
  try {
    if (!(await stat(file)).isFile()) throw new CliError(`no Berth database in ${path.dirname(file)}: ${file} is not a file`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError(`no Berth database in ${path.dirname(file)}: ${file} does not exist (give the data directory with --data-dir, or the server's --config)`);
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const { default: Database } = await import('better-sqlite3');
  let db: InstanceType<typeof Database> | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 500 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('begin exclusive');
    db.exec('commit');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw new CliError(`the database ${file} is in use by another process — is Berth still running? Stop it first: berth migrate copies a stopped installation (writes after the copy would be lost)`);
    }
    throw new CliError(`cannot open ${file}: ${(err as Error).message} (run berth migrate as Berth's user, or as root)`);
  } finally {
    db?.close();
  }
}

/** Draws progress on stderr: a redrawn bar on a terminal, a plain line every tenth (or 10 s) otherwise. */
export class ProgressView {
  private lastDraw = 0;
  private lastStep = -1;
  private lastPhase = '';
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
  ) {}

  /** Shows `p` (drawn at most every 100 ms on a terminal; elsewhere only at each tenth, a new phase, or after 10 s). */
  update(p: Readonly<MigrationProgress>): void {
    const done = p.phase === 'tables' ? p.rowsDone : p.blobsDone;
    const total = p.phase === 'tables' ? p.rowsTotal : p.blobsTotal;
    const fraction = total === 0 ? 1 : Math.min(1, done / total);
    const now = Date.now();
    const phaseChanged = p.phase !== this.lastPhase;
    if (this.tty) {
      if (!phaseChanged && done !== total && now - this.lastDraw < 100) return;
      if (phaseChanged && this.drawn) this.out.write('\n');
      const width = 24;
      const bar = '#'.repeat(Math.round(fraction * width)).padEnd(width, '-');
      this.out.write(`\r\x1b[K${p.phase.padEnd(6)} [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${this.detail(p)}`);
      this.drawn = true;
    } else {
      const step = Math.floor(fraction * 10);
      if (!phaseChanged && step === this.lastStep && now - this.lastDraw < 10_000) return;
      this.lastStep = step;
      this.out.write(`${p.phase}: ${Math.floor(fraction * 100)}%, ${this.detail(p)}\n`);
    }
    this.lastPhase = p.phase;
    this.lastDraw = now;
  }

  /** Ends the bar's line (a terminal). */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }

  private detail(p: Readonly<MigrationProgress>): string {
    if (p.phase === 'tables') return `${p.rowsDone}/${p.rowsTotal} rows${p.table ? ` (${p.table})` : ''}`;
    return `${p.blobsDone}/${p.blobsTotal} blobs, ${p.blobsCopied} copied (${formatBytes(p.bytes)}), ${p.blobsSkipped} already there, ${p.blobsFailed} failed`;
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const KEY_NOTES: Record<MigrationSummary['signingKey'], string> = {
  stored: 'stored in the target database: tokens issued before the move stay valid',
  present: 'already in the target database',
  different: 'the target database holds another key (kept): tokens issued before the move are refused, clients sign in again',
  'not given': 'not moved',
};

function printSummary(s: MigrationSummary, keyNote: string, targetFile: string): void {
  const rows = s.tables.reduce((n, t) => n + t.rows, 0);
  const inserted = s.tables.reduce((n, t) => n + t.inserted, 0);
  const fields: [string, string][] = [
    ['from', s.source],
    ['to', s.target],
    ['resumed', s.resumed ? 'yes: an earlier run was interrupted, this one went on from there' : 'no'],
    ['tables', `${plural(s.tables.length, 'table')}, ${plural(rows, 'row')}: ${inserted} inserted by this run, ${rows - inserted} there already`],
    ...s.leftOut.map((l): [string, string] => ['left out', `${l.table}, ${plural(l.rows, 'row')}: ${l.why}`]),
    ['sequences', `${s.sequences} moved past the copied ids`],
    ['signing key', keyNote],
    ['blobs', `${s.blobs.total} referenced: ${s.blobs.copied} copied (${formatBytes(s.blobs.bytes)}), ${s.blobs.skipped} there already, ${s.blobs.failures.length} failed`],
    ...s.blobs.failures.slice(0, 20).map((f): [string, string] => ['failed', `${shortDigest(f.digest)}… ${f.reason}`]),
    ...(s.blobs.failures.length > 20 ? [['failed', `… and ${s.blobs.failures.length - 20} more (--json lists them all)`] as [string, string]] : []),
    ['took', `${(s.durationMs / 1000).toFixed(1)} s`],
    [
      'next',
      s.complete
        ? `start Berth with the target configuration (berth serve --config ${targetFile}); keep the old data directory until the new registry has served its first pulls`
        : 'the blobs above were not copied (the target does not serve them); restore them in the source (or delete the artifacts listing them there), then run berth migrate again: it goes on where it stopped',
    ],
  ];
  printFields(fields);
}

/** `berth migrate --to <config> [--config FILE | --data-dir DIR] [--parallel N] [--json]`. */
export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('copy a stopped installation (metadata and blobs) into PostgreSQL + S3, verifying every blob; resumable: run it again after an interruption')
    .requiredOption('--to <config>', 'YAML configuration of the target, with database.url and storage.s3 (read from the file alone)')
    .option('-c, --config <file>', "the source: the configuration Berth runs with now (env: BERTH_CONFIG; BERTH_* variables apply, as for berth serve)")
    .option('--data-dir <dir>', 'the source data directory (overrides the configuration, as for berth serve)')
    .option('--parallel <n>', 'blobs copied at once', '4')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { to: string; config?: string; dataDir?: string; parallel: string; json?: boolean }) => {
      const parallel = parseInteger(opts.parallel, '--parallel', 1);
      // Loaded on use, so other subcommands start without zod, the drivers and the SDK.
      const { loadConfig } = await import('../config/load.ts');
      const source = loadConfig({ ...(opts.config !== undefined ? { file: opts.config } : {}), flags: { dataDir: opts.dataDir } });
      // The target from its file only: BERTH_* variables describe the installation Berth runs now.
      const target = loadConfig({ file: opts.to, env: {} });
      checkConfigs(source, target, opts.to);
      if (!source.database.url) await checkNotInUse(source.dataDir);
      else process.stderr.write('berth: the source is on PostgreSQL, where berth migrate cannot tell whether Berth still runs: stop every replica first\n');

      const keys = await signingKeys(source, target);
      const { migrateInstallation, TargetRefused } = await import('../migrate/index.ts');
      const { openMetadataFor } = await import('../metadata/index.ts');
      const { openBlobStore } = await import('../storage/index.ts');
      const opened: { close(): Promise<void> }[] = [];
      try {
        // A configuration problem names the setting; say which of the two configurations has it.
        const open = async (config: Config, which: string) => {
          try {
            const meta = await openMetadataFor(config);
            opened.push(meta);
            const store = await openBlobStore(config);
            opened.push(store);
            return { meta, store, name: `${describeDatabase(config)} + ${describeStorage(config)}` };
          } catch (err) {
            if (err instanceof ConfigError) throw new CliError(`${which}: ${err.message}`);
            throw err;
          }
        };
        const from = await open(source, 'the source');
        const to = await open(target, opts.to);
        const view = new ProgressView(process.stderr, Boolean(process.stderr.isTTY));
        const summary = await migrateInstallation(from, to, {
          parallel,
          onProgress: (p) => view.update(p),
          ...(keys.pem !== undefined ? { signingKeyPem: keys.pem } : {}),
        }).catch((err: unknown) => {
          view.finish();
          if (err instanceof TargetRefused) throw new CliError(`${opts.to}: ${err.message}`);
          // What was copied stays: a rerun goes on from there.
          throw new CliError(`the migration stopped: ${(err as Error).message ?? String(err)}; once that is fixed, run berth migrate again: it goes on where it stopped`);
        });
        view.finish();
        const keyNote = keys.note ?? KEY_NOTES[summary.signingKey];
        if (opts.json) printJSON({ ...summary, signingKeyNote: keyNote });
        else printSummary(summary, keyNote, opts.to);
        if (!summary.complete) {
          throw new CliError(`${plural(summary.blobs.failures.length, 'blob')} failed verification or could not be copied; the migration is not finished`);
        }
      } finally {
        for (const o of opened.reverse()) await o.close().catch(() => undefined);
      }
    });
}

/**
 * The source's token signing key to store in the target database (when the target will read its
 * key from there), or, when the target names a key file, what that means for tokens issued before.
 */
async function signingKeys(source: Config, target: Config): Promise<{ pem?: string; note?: string }> {
  const file = source.auth.signingKey ?? (source.database.url ? undefined : path.join(path.resolve(source.dataDir), 'keys', 'token-signing.pem'));
  let pem: string | undefined;
  if (file !== undefined) {
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read the signing key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const { readSigningKeyFile, signingKeyFromPem } = await import('../auth/keys.ts');
  let kid: string | undefined;
  if (pem !== undefined) {
    try {
      kid = signingKeyFromPem(pem).kid;
    } catch (err) {
      throw new CliError(`the source's signing key ${file}: ${(err as Error).message}; the source could not sign tokens with it either`);
    }
  }
  if (!target.auth.signingKey) {
    if (pem !== undefined) return { pem };
    return { note: source.database.url ? 'moved with the database (table signing_keys)' : 'the source has none yet; the target makes its own' };
  }
  const same = kid !== undefined && readSigningKeyFile(target.auth.signingKey).kid === kid;
  return { note: same ? `the target's auth.signingKey is the source's key: tokens issued before the move stay valid` : `the target signs with auth.signingKey ${target.auth.signingKey}, another key: tokens issued before the move are refused, clients sign in again` };
}
