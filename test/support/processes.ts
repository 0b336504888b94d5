// Long-running child processes (servers, daemons): log to a file, stop by pid, registry for after().
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appendFile, open, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnv, commandLine } from './run.ts';

/** What to start. */
export interface ProcessSpec {
  /** Short name for messages, e.g. `nginx`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Full environment; defaults to {@link cleanEnv}(). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** stdout and stderr are appended to this file. */
  readonly logFile: string;
}

/** How a process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Bounds for stopping a process. */
export interface StopOptions {
  /** Wait this long after SIGTERM before SIGKILL; default 15 000 ms. */
  readonly termTimeoutMs?: number;
  /** Wait this long after SIGKILL before giving up with an error; default 5 000 ms. */
  readonly killTimeoutMs?: number;
}

/** Anything a registry can stop in after(): processes, and cleanup steps such as removing a hosts entry. */
export interface Stoppable {
  readonly name: string;
  stop(): Promise<void>;
}

/** A started child process. */
export interface ManagedProcess extends Stoppable {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** Undefined while running, otherwise how it ended (for error messages). */
  exitDescription(): string | undefined;
  /** SIGTERM by pid, bounded wait, then SIGKILL; resolves once the process is gone. */
  stop(options?: StopOptions): Promise<void>;
  /** Lets this process (the test) exit while the child runs; whoever calls it stops the child at exit. */
  unref(): void;
}

async function waitOrTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const controller = new AbortController();
  const timer = sleep(ms, undefined, { signal: controller.signal }).catch(() => undefined);
  try {
    return await Promise.race([promise, timer]);
  } finally {
    controller.abort();
  }
}

/** Starts a long-running process with its output appended to `spec.logFile`; resolves once it has spawned. */
export async function startProcess(spec: ProcessSpec): Promise<ManagedProcess> {
  const line = commandLine(spec.command, spec.args);
  await appendFile(spec.logFile, `=== ${new Date().toISOString()} starting: ${line}\n`);
  const log = await open(spec.logFile, 'a');
  let exit: ExitInfo | undefined;
  try {
    const child = spawn(spec.command, spec.args, {
      env: spec.env ?? cleanEnv(),
      cwd: spec.cwd,
      stdio: ['ignore', log.fd, log.fd],
    });
    const exited = new Promise<ExitInfo>((resolve) => {
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        resolve(exit);
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new Error(`cannot start ${line}: ${error.message}`, { cause: error })));
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`no pid for ${line}`);
    const stop = async (options: StopOptions = {}): Promise<void> => {
      if (exit) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* exited meanwhile */
      }
      if (await waitOrTimeout(exited, options.termTimeoutMs ?? 15_000)) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* exited meanwhile */
      }
      if (!(await waitOrTimeout(exited, options.killTimeoutMs ?? 5_000))) {
        throw new Error(`${spec.name} (pid ${pid}) did not exit after SIGKILL`);
      }
    };
    return {
      name: spec.name,
      pid,
      logFile: spec.logFile,
      exited,
      exitDescription: () =>
        exit ? `${spec.name} exited (${exit.code !== null ? `code ${exit.code}` : `signal ${exit.signal}`})` : undefined,
      stop,
      unref: () => child.unref(),
    };
  } finally {
    await log.close();
  }
}

/** True while a process with this pid exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  // /proc/<pid>/stat: "pid (comm) S ..." — the state follows the last ')'.
  const stat = readFileSyncSafe(`/proc/${pid}/stat`);
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

function readFileSyncSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Reads a pid file; undefined when it is missing or empty. */
export async function readPidFile(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(pidFile, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops a process that is not our child (a daemon that forked, or one a daemon started) by the pid
 * in its pid file: SIGTERM, bounded wait, SIGKILL. Does nothing when the file is gone or the pid dead.
 */
export async function stopByPidFile(pidFile: string, options: StopOptions = {}): Promise<void> {
  const pid = await readPidFile(pidFile);
  if (pid === undefined || !pidAlive(pid)) return;
  const waitGone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!pidAlive(pid)) return true;
      await sleep(100);
    }
    return !pidAlive(pid);
  };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitGone(options.termTimeoutMs ?? 15_000)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  if (!(await waitGone(options.killTimeoutMs ?? 5_000))) {
    throw new Error(`pid ${pid} from ${pidFile} did not exit after SIGKILL`);
  }
}

/** The last `lines` lines of a log file, for error messages ('' when unreadable). */
export async function tailFile(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '';
  }
}

/**
 * Remembers everything a test started (processes and other cleanup steps) so one after() hook can
 * stop it all, newest first. Every item is attempted even when one fails; failures are rethrown
 * together at the end.
 */
export class ProcessRegistry {
  readonly #items: Stoppable[] = [];

  /** Starts a process and registers it. */
  async start(spec: ProcessSpec): Promise<ManagedProcess> {
    const started = await startProcess(spec);
    this.#items.push(started);
    return started;
  }

  /** Registers something to stop (or clean up) in {@link stopAll}; returns it. */
  add<T extends Stoppable>(item: T): T {
    this.#items.push(item);
    return item;
  }

  /** Registers a cleanup function under a name. */
  defer(name: string, stop: () => Promise<void>): void {
    this.#items.push({ name, stop });
  }

  /** Stops everything registered, newest first; throws an AggregateError naming what failed. */
  async stopAll(): Promise<void> {
    const errors: Error[] = [];
    while (this.#items.length > 0) {
      const item = this.#items.pop();
      if (!item) break;
      try {
        await item.stop();
      } catch (error) {
        errors.push(new Error(`stopping ${item.name} failed: ${error instanceof Error ? error.message : String(error)}`));
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  }

  /**
   * For a suite's after(): stops everything, then removes the scratch directories — unless `keep`
   * (a failed run, or BERTH_E2E_KEEP=1), when it prints where they are for a look.
   */
  async stopAllAndClean(scratch: readonly string[], keep: boolean): Promise<void> {
    try {
      await this.stopAll();
    } finally {
      if (!keep) for (const dir of scratch) await rm(dir, { recursive: true, force: true });
      else if (scratch.length) console.log(`kept for a look: ${scratch.join(' ')}`);
    }
  }
}
