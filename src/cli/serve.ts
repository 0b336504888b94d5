import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { OVERRIDES } from '../config/overrides.ts';

/**
 * `berth serve`: runs the registry until SIGTERM/SIGINT, then shuts down gracefully. Started by npm
 * (`npm start`, `npx berth serve`), it also shuts down when npm goes away (see {@link followParent}).
 */
export function serveCommand(program: Command): void {
  const cmd = program.command('serve').description('run the registry server');
  cmd.option('-c, --config <file>', 'YAML configuration file (env: BERTH_CONFIG)');
  for (const o of OVERRIDES) {
    if (!o.flag) continue;
    const flag = o.flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    cmd.option(o.kind === 'boolean' ? `--${flag}` : `--${flag} <value>`, `${o.help} (env: ${o.env})`);
  }
  cmd.action(async (opts: Record<string, string | boolean | undefined>) => {
    // Taken first, before anything slow: a wrapper killed while Berth starts still counts.
    const parents = startedByNpm(process.env) ? parentChain() : undefined;
    // Loaded here, not at the top: every other subcommand starts without the server and zod.
    const { loadConfig } = await import('../config/load.ts');
    const { startBerth } = await import('../main.ts');
    const config = loadConfig({ file: opts.config as string | undefined, flags: opts });
    type Why = { signal: NodeJS.Signals } | { reason: string };
    // Berth listens before its start-up ends (readiness says so): a signal meanwhile is kept and
    // acted on once it has started, so the stop is graceful then too; a second one (a start-up
    // that hangs) ends the process at once.
    let asked: Why | undefined;
    let stop = (why: Why) => {
      if (asked) process.exit(1);
      asked = why;
    };
    process.on('SIGTERM', () => stop({ signal: 'SIGTERM' }));
    process.on('SIGINT', () => stop({ signal: 'SIGINT' }));
    const berth = await startBerth(config);
    guardProcess(berth.log);
    let stopping = false;
    stop = (why) => {
      if (stopping) return;
      stopping = true;
      berth.log.info(why, 'shutting down');
      berth.close().then(
        () => process.exit(0),
        (err: unknown) => {
          berth.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    if (asked) stop(asked);
    if (parents) {
      followParent(parents, (info) => {
        berth.log.warn(info, 'parent process exited (npm start, npx); shutting down');
        stop({ reason: 'parent exited' });
      });
    }
  });
}

/** Whether npm started this process (`npm start`, `npm run`, `npm exec`, `npx`), which sets these. */
export function startedByNpm(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env['npm_lifecycle_event'] || env['npm_command']);
}

/** How often {@link followParent} looks at the parent process. */
export const PARENT_CHECK_MS = 1000;

/** One link between this process and its wrapper: a process and the parent it had at start. */
export interface ParentLink {
  pid: number;
  parent: number;
}

/** Shells that may sit between npm and Berth (`npx` runs the command through `sh -c`). */
const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'zsh', 'busybox']);

/** Parent pid of `pid` from /proc (Linux); undefined when the process or /proc is not there. */
export function parentOf(pid: number): number | undefined {
  if (pid === process.pid) return process.ppid;
  try {
    // "pid (comm) S ppid …": the fields after the last ')' are state, then ppid.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * The links from this process up to the process that started it, passing through shells: `npx`
 * runs Berth as npm → sh → node, and a shell stays when npm is killed, so Berth watches the shell's
 * parent too. (`npm start` execs node, so there it is just Berth and its parent.)
 */
export function parentChain(): ParentLink[] {
  const chain: ParentLink[] = [{ pid: process.pid, parent: process.ppid }];
  for (let i = 0; i < 3 && SHELLS.has(commandName(chain.at(-1)!.parent) ?? ''); i++) {
    const shell = chain.at(-1)!.parent;
    const parent = parentOf(shell);
    if (parent === undefined || parent <= 1) break;
    chain.push({ pid: shell, parent });
  }
  return chain;
}

/**
 * Calls `onGone` once when the process that started Berth goes away: a process of `chain` gets
 * another parent (it was re-parented, its parent having exited) or is gone. Under npm, the service
 * manager or the shell holds npm's pid, not Berth's: a wrapper killed by pid (SIGKILL, or a signal it
 * does not forward) would leave Berth running, holding the port and the data directory. The check
 * runs every {@link PARENT_CHECK_MS} on an unref'd timer, so it never keeps the process alive.
 * Returns a function that stops watching.
 */
export function followParent(chain: readonly ParentLink[], onGone: (info: { watchedPid: number; parentPid: number; newParentPid: number | null }) => void, readParent: (pid: number) => number | undefined = parentOf): () => void {
  let gone = false; // an interval may still fire once after it is cleared from its own callback
  const timer = setInterval(() => {
    if (gone) return;
    for (const link of chain) {
      const now = readParent(link.pid);
      if (now === link.parent) continue;
      gone = true;
      clearInterval(timer);
      onGone({ watchedPid: link.pid, parentPid: link.parent, newParentPid: now ?? null });
      return;
    }
  }, PARENT_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A promise rejected with nobody to handle it would end the process (Node's default): one stray
 * background task must not take every request down with it, so it is logged at error level and
 * the server keeps serving. Uncaught exceptions keep their default (crash): the request path does
 * not raise them (see createHandler), and state after one cannot be trusted. Returns a function
 * that removes the handler.
 */
export function guardProcess(log: Logger): () => void {
  const onRejection = (reason: unknown) => {
    try {
      log.error({ err: reason }, 'unhandled rejection');
    } catch {
      // A reason that cannot be serialised: say that much.
      try {
        log.error({ reason: typeof reason }, 'unhandled rejection');
      } catch {
        // Logging itself failed; keep serving.
      }
    }
  };
  process.on('unhandledRejection', onRejection);
  return () => void process.off('unhandledRejection', onRejection);
}
