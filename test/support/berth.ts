// Runs the Berth server (`node bin/berth.js serve`) as a child process that can be stopped and restarted.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, type ProcessRegistry, startProcess, tailFile } from './processes.ts';
import { cleanEnv } from './run.ts';
import { LeakScanner, rememberSecret } from './secrets.ts';
import { freePort, tmpDir, waitForHttp } from './system.ts';

/** Root of the repository (two levels above test/support/). */
export const REPO_ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How to run Berth. Everything is optional. */
export interface BerthOptions {
  /** Listen host; default 127.0.0.1. */
  readonly host?: string;
  /** Listen port; default a free one. */
  readonly port?: number;
  /** BERTH_DATA_DIR; default a fresh temp dir. */
  readonly dataDir?: string;
  /** BERTH_ADMIN_PASSWORD; default random. */
  readonly adminPassword?: string;
  /**
   * BERTH_EXTERNAL_URL, e.g. `https://berth-e2e.test` (unset when omitted). Several URLs (joined
   * with commas) let one server hand out the right token realm to direct and proxied clients.
   */
  readonly externalUrl?: string | readonly string[];
  /** BERTH_LOG_LEVEL; default `info`. */
  readonly logLevel?: string;
  /** More environment variables for the server. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for GET /readyz → 200; default 30 000 ms. */
  readonly readyTimeoutMs?: number;
  /** Registers the server so after() stops it. */
  readonly registry?: ProcessRegistry;
  /** Run inside this network namespace (`ip netns exec NAME …`, which keeps the pid). */
  readonly netns?: { wrap(command: string, args: readonly string[]): { command: string; args: string[] } };
  /**
   * Host in {@link BerthServer.url} and for the readiness probe; default `host`. Needed when `host`
   * is a wildcard such as 0.0.0.0, e.g. the namespace's address as seen from the test.
   */
  readonly urlHost?: string;
}

/** A Berth server that can be stopped and started again on the same port and data dir. */
export interface BerthServer {
  /** `http://host:port` (direct, no proxy; host is `urlHost` when given). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminPassword: string;
  /** stdout and stderr of every run, appended. */
  readonly logFile: string;
  /** The current process, undefined while stopped. */
  readonly process: ManagedProcess | undefined;
  /** Starts the server (again) with the same settings and waits until /readyz answers 200. */
  start(): Promise<void>;
  /** Stops the server by pid (SIGTERM, then SIGKILL after a bounded wait). */
  stop(): Promise<void>;
}

/** Starts Berth and waits until it is ready; the returned handle restarts it on the same port and data. */
export async function startBerth(options: BerthOptions = {}): Promise<BerthServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const dataDir = options.dataDir ?? (await tmpDir('berth-data'));
  const adminPassword = options.adminPassword ?? randomBytes(12).toString('base64url');
  const logFile = path.join(await tmpDir('berth-log'), 'berth.log');
  const urlHost = options.urlHost ?? host;
  const url = `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`;
  const env = cleanEnv({
    BERTH_ADDR: `${host.includes(':') ? `[${host}]` : host}:${port}`,
    BERTH_DATA_DIR: dataDir,
    BERTH_ADMIN_PASSWORD: adminPassword,
    BERTH_LOG_LEVEL: options.logLevel ?? 'info',
    ...(options.externalUrl ? { BERTH_EXTERNAL_URL: [options.externalUrl].flat().join(',') } : {}),
    ...options.env,
  });
  let current: ManagedProcess | undefined;

  rememberSecret(adminPassword, 'admin');
  const stop = async (): Promise<void> => {
    const running = current;
    current = undefined;
    await running?.stop();
    // Whatever it logged or audited must not hold a secret the suite used (support/secrets.ts).
    const scanner = new LeakScanner(`Berth in ${dataDir} (log ${logFile})`);
    scanner.scanFile(logFile);
    scanner.scanAudit(dataDir);
    scanner.assertClean();
  };
  const start = async (): Promise<void> => {
    if (current && !current.exitDescription()) throw new Error(`Berth already running (pid ${current.pid})`);
    const argv = [path.join(REPO_ROOT, 'bin', 'berth.js'), 'serve'];
    const command = options.netns ? options.netns.wrap(process.execPath, argv) : { command: process.execPath, args: argv };
    const child = await startProcess({
      name: 'berth',
      ...command,
      env,
      cwd: REPO_ROOT,
      logFile,
    });
    current = child;
    try {
      await waitForHttp(`${url}/readyz`, {
        timeoutMs: options.readyTimeoutMs ?? 30_000,
        abortIf: () => child.exitDescription(),
      });
    } catch (error) {
      await stop();
      throw new Error(`Berth did not become ready: ${(error as Error).message}\n--- ${logFile} ---\n${await tailFile(logFile)}`, {
        cause: error,
      });
    }
  };

  await start();
  options.registry?.add({ name: 'berth', stop });
  return {
    url,
    host,
    port,
    dataDir,
    adminPassword,
    logFile,
    get process() {
      return current;
    },
    start,
    stop,
  };
}
