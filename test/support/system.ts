// Machine-level helpers: Debian packages the tests need, free ports, readiness polling, temp dirs.
import { constants, readdirSync, readlinkSync, statSync } from 'node:fs';
import { access, mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnv, run } from './run.ts';

/** A program a test needs and the Debian package that provides it. */
export interface PackageNeed {
  /** Executable name, looked up on PATH and in the sbin directories; or an absolute path to a file the package installs (fonts have no executable). */
  readonly binary: string;
  /** Debian package to install when the executable is missing. */
  readonly pkg: string;
}

/** Every package the end-to-end suite uses, by binary. */
export const E2E_PACKAGES: readonly PackageNeed[] = [
  { binary: 'nginx', pkg: 'nginx' },
  { binary: 'openssl', pkg: 'openssl' },
  { binary: 'dockerd', pkg: 'docker.io' },
  { binary: 'docker', pkg: 'docker.io' },
  { binary: 'ctr', pkg: 'containerd' },
  { binary: 'skopeo', pkg: 'skopeo' },
];

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Finds an executable on PATH (plus the sbin directories); undefined when it is not installed. */
export async function findBinary(binary: string): Promise<string | undefined> {
  if (path.isAbsolute(binary)) return access(binary).then(() => binary, () => undefined);
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), ...SBIN_DIRS].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, binary);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

let aptUpdated: Promise<void> | undefined;

/** The lock file that serialises the test processes' apt-get runs. */
const APT_LOCK = '/tmp/berth-tests-apt.lock';

/**
 * Makes sure every binary is installed. Missing ones are installed with `apt-get install -y` when
 * running as root (after one `apt-get update` per process); otherwise this throws an Error naming
 * the packages to install. It never skips silently.
 */
export async function ensurePackages(pkgs: readonly PackageNeed[]): Promise<void> {
  const missing: PackageNeed[] = [];
  for (const need of pkgs) if (!(await findBinary(need.binary))) missing.push(need);
  if (missing.length === 0) return;
  const names = [...new Set(missing.map((m) => m.pkg))];
  const what = missing.map((m) => `${m.binary} (package ${m.pkg})`).join(', ');
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${what}; install with: apt-get install -y ${names.join(' ')}`);
  }
  const env = cleanEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  // Test files run in parallel processes, several needing packages (slapd, chromium…): apt runs
  // one at a time under a lock file of ours (flock), and waits for dpkg's own lock besides (the
  // machine's own apt may hold it) instead of failing at once.
  const apt = (args: string[], timeoutMs: number) => run('flock', [APT_LOCK, 'apt-get', '-o', 'DPkg::Lock::Timeout=600', ...args], { env, timeoutMs });
  aptUpdated ??= apt(['update'], 600_000).then(() => undefined);
  try {
    await aptUpdated;
  } catch (error) {
    aptUpdated = undefined;
    throw new Error(`apt-get update failed while installing ${names.join(' ')}`, { cause: error });
  }
  await apt(['install', '-y', ...names], 900_000);
  for (const need of missing) {
    if (!(await findBinary(need.binary))) {
      throw new Error(`installed package ${need.pkg} but ${need.binary} is still missing`);
    }
  }
}

/** Whether `port` can be listened on at `host` now. */
function canListen(port: number, host: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * Returns a TCP port that was free on `host` a moment ago, for a server a test starts later.
 *
 * Picked at random below the kernel's ephemeral range (32768–60999 on Linux), not by listening on
 * port 0: a port the kernel hands out is handed out again at once to the outgoing connections
 * other tests open meanwhile, so the server that meant to listen there would find it taken.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canListen(port, host)) return port;
  }
  throw new Error(`no free port found on ${host} between 20000 and 32000`);
}

/** Options for {@link waitForHttp}. */
export interface WaitForHttpOptions {
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Pause between attempts; default 200 ms. */
  readonly intervalMs?: number;
  /** Status that means ready; default 200. */
  readonly status?: number;
  /** PEM CA certificate(s) to trust for https URLs. */
  readonly ca?: string;
  /** Checked before every attempt: returning a string aborts the wait with that reason. */
  readonly abortIf?: () => string | undefined;
}

function probe(url: URL, ca: string | undefined, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(
      url,
      { method: 'GET', timeout: timeoutMs, ca, agent: false },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end();
  });
}

/**
 * Polls `url` with GET until it answers with the expected status (default 200). Throws when the
 * timeout passes or `abortIf` reports a reason (e.g. the server process died), naming the last
 * status or error seen.
 */
export async function waitForHttp(url: string, options: WaitForHttpOptions): Promise<void> {
  const target = new URL(url);
  const deadline = Date.now() + options.timeoutMs;
  const wanted = options.status ?? 200;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    const reason = options.abortIf?.();
    if (reason) throw new Error(`gave up waiting for ${url}: ${reason} (last: ${last})`);
    try {
      const status = await probe(target, options.ca, Math.min(5_000, Math.max(1, deadline - Date.now())));
      if (status === wanted) return;
      last = `status ${status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(options.intervalMs ?? 200);
  }
  throw new Error(`${url} did not answer ${wanted} within ${options.timeoutMs} ms (last: ${last})`);
}

/** Polls until a TCP connection to host:port succeeds, or throws after `timeoutMs`. */
export async function waitForTcp(
  host: string,
  port: number,
  options: { readonly timeoutMs: number; readonly abortIf?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    const reason = options.abortIf?.();
    if (reason) throw new Error(`gave up waiting for ${host}:${port}: ${reason} (last: ${last})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port, timeout: 2_000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        last = 'connect timeout';
        socket.destroy();
        resolve(false);
      });
      socket.once('error', (error) => {
        last = error.message;
        resolve(false);
      });
    });
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${host}:${port} did not accept connections within ${options.timeoutMs} ms (last: ${last})`);
}

/** Creates a fresh, empty directory under os.tmpdir() whose name starts with `prefix`. */
export function tmpDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix.endsWith('-') ? prefix : `${prefix}-`));
}

/** Files (and, if asked, directories) under `dir` this process holds open, for tests that check nothing is left open. */
export function openFilesUnder(dir: string, kind: 'files' | 'files and directories' = 'files'): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir) && (kind !== 'files' || !statSync(target).isDirectory())) out.push(target);
    } catch {
      // the descriptor closed while we looked
    }
  }
  return out;
}
