// A real PostgreSQL 15 server (Debian's) for tests, started in a temp dir as TESTING.md describes:
// initdb and postgres refuse root, so they run as `postgres`, from `/`, in a directory it owns;
// trust authentication on 127.0.0.1 only; stopped by the pid in its pid file.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { access, constants, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pidAlive, readPidFile, tailFile } from './processes.ts';
import { CommandError, run } from './run.ts';
import { ensurePackages, freePort } from './system.ts';

/** A running PostgreSQL server that accepts `postgres` without a password on 127.0.0.1. */
export interface PostgresServer {
  readonly port: number;
  /** The postmaster's pid (0 when a reused server's could not be read). */
  readonly pid: number;
  /** postgres://postgres@127.0.0.1:PORT/<database> */
  url(database: string): string;
  /** CREATE DATABASE if it does not exist (name: [a-z0-9_]+) */
  createDatabase(name: string): Promise<void>;
  /** DROP DATABASE if it exists, ending any sessions still connected to it. */
  dropDatabase(name: string): Promise<void>;
  /** Stops the server (fast shutdown) and removes its directory; idempotent. */
  stop(): Promise<void>;
}

const BIN = '/usr/lib/postgresql/15/bin';
const DATABASE_NAME = /^[a-z0-9_]+$/;

/** Installs Debian's PostgreSQL 15 when its server binaries are missing (as root; otherwise an Error naming the package). */
async function ensureInstalled(): Promise<void> {
  try {
    await access(path.join(BIN, 'postgres'), constants.X_OK);
    return;
  } catch {
    // Debian keeps the server's binaries off PATH, where ensurePackages looks: show it BIN too.
  }
  const saved = process.env.PATH;
  process.env.PATH = `${BIN}${path.delimiter}${saved ?? ''}`;
  try {
    await ensurePackages([{ binary: 'postgres', pkg: 'postgresql' }]);
  } finally {
    process.env.PATH = saved;
  }
}

/** Runs one of PostgreSQL's programs as the `postgres` user, from `/` (it cannot read root's working directory). */
function asPostgres(program: string, args: readonly string[], timeoutMs = 60_000) {
  return run('runuser', ['-u', 'postgres', '--', path.join(BIN, program), ...args], { cwd: '/', timeoutMs });
}

/** Starts a fresh server: fsync off (fast, for everything but durability tests) unless `durable`. */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PostgresServer> {
  await ensureInstalled();
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = await mkdtemp(path.join(base, 'berth-pg-'));
  try {
    await run('chown', ['postgres:', dir]);
    const data = path.join(dir, 'data');
    await asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], 120_000);
    const settings = options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'];
    // A port free a moment ago may be taken before the server binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const serverOptions = ['-c listen_addresses=127.0.0.1', `-p ${port}`, `-k ${dir}`, ...settings].join(' ');
      try {
        await asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', serverOptions, 'start'], 90_000);
      } catch (err) {
        if (attempt < 3 && err instanceof CommandError && /could not bind|already in use/i.test(await tailFile(path.join(dir, 'log'), 20))) continue;
        throw new Error(`PostgreSQL did not start:\n${await tailFile(path.join(dir, 'log'))}`, { cause: err });
      }
      const pid = await readPidFile(path.join(data, 'postmaster.pid'));
      if (pid === undefined) throw new Error(`PostgreSQL started without a pid file in ${data}`);
      return ownServer(dir, data, port, pid);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A server this process started: stop() shuts it down (also at exit, should a test forget). */
function ownServer(dir: string, data: string, port: number, pid: number): PostgresServer {
  let stopped = false;
  // A test process that ends without stop() (a failed before(), a forgotten after()) must not leave
  // a server behind: stop it synchronously at exit.
  const atExit = () => {
    if (stopped) return;
    stopped = true;
    spawnSync('runuser', ['-u', 'postgres', '--', path.join(BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], { cwd: '/', stdio: 'ignore', timeout: 30_000 });
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', atExit);
  return {
    port,
    pid,
    ...administration(port),
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', atExit);
      try {
        await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      } catch {
        // pg_ctl failed or timed out: end it by its pid below.
      }
      if (pidAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** url, createDatabase and dropDatabase for the server on 127.0.0.1:`port`. */
function administration(port: number): Pick<PostgresServer, 'url' | 'createDatabase' | 'dropDatabase'> {
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const admin = async <T>(body: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url('postgres') });
    await client.connect();
    try {
      return await body(client);
    } finally {
      await client.end();
    }
  };
  const checked = (name: string) => {
    if (!DATABASE_NAME.test(name)) throw new Error(`database name ${JSON.stringify(name)} must match ${DATABASE_NAME}`);
    return name;
  };
  return {
    url,
    async createDatabase(name) {
      await admin(async (client) => {
        const exists = await client.query('select 1 from pg_database where datname = $1', [checked(name)]);
        if (exists.rowCount) return;
        try {
          await client.query(`create database ${name}`);
        } catch (err) {
          // Another test process created it meanwhile.
          if ((err as { code?: string }).code !== '42P04') throw err;
        }
      });
    },
    async dropDatabase(name) {
      await admin((client) => client.query(`drop database if exists ${checked(name)} with (force)`));
    },
  };
}

let shared: Promise<PostgresServer> | undefined;

/** Reuses the server named by env BERTH_TEST_PG_URL (postgres://postgres@127.0.0.1:PORT) when set (stop() is then a no-op), else starts one. */
export async function sharedPostgres(): Promise<PostgresServer> {
  shared ??= (async () => {
    const given = process.env.BERTH_TEST_PG_URL;
    if (!given) return startPostgres();
    const port = Number(new URL(given).port || 5432);
    const server = administration(port);
    return { port, pid: await postmasterPid(server.url('postgres')), ...server, stop: async () => undefined };
  })();
  shared.catch(() => (shared = undefined));
  return shared;
}

/** The pid of the postmaster serving `url`, from the pid file in its data directory (0 if it cannot be read). */
async function postmasterPid(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    return (await readPidFile(path.join(rows[0]!.data_directory, 'postmaster.pid'))) ?? 0;
  } catch {
    return 0;
  } finally {
    await client.end().catch(() => undefined);
  }
}
