// Berth started through npm (`npm start`, `npx berth serve`) does not outlive npm: whoever holds
// npm's pid (a shell, a service manager, a test) can stop Berth by stopping npm — SIGTERM, or even
// SIGKILL, which npm cannot forward. Real npm, real Berth processes, found through /proc.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../support/berth.ts';
import { pidAlive } from '../support/processes.ts';
import { cleanEnv } from '../support/run.ts';
import { freePort, tmpDir, waitForHttp } from '../support/system.ts';

/** Parent pid of `pid` (from /proc), undefined once it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function commandLineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Direct children of `pid`. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((child) => parentOf(child) === pid);
}

/** `pid` and all its descendants, parents first. */
function treeOf(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(treeOf)];
}

/** The Berth server among npm's descendants: a node process running `berth… serve`. */
function berthUnder(npmPid: number): number {
  const found = treeOf(npmPid).filter((pid) => {
    const argv = commandLineOf(pid);
    return path.basename(argv[0] ?? '') === 'node' && argv.some((a) => /berth(\.js)?$/.test(a)) && argv.includes('serve');
  });
  assert.equal(found.length, 1, `one Berth process under npm (pid ${npmPid}): ${treeOf(npmPid).map((p) => `${p}: ${commandLineOf(p).join(' ')}`).join('; ')}`);
  return found[0]!;
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Wrapped {
  npm: ChildProcess;
  berth: number;
  port: number;
  logFile: string;
}

/**
 * Runs `npm ARGS… --addr 127.0.0.1:<free port> --data-dir <temp>` in the repository, waits until
 * Berth answers /v2/, and hands npm and Berth's pid to `body`; afterwards stops whatever is left
 * of the process tree (by pid) and removes the temp directories.
 */
async function withWrappedBerth(npmArgs: string[], body: (w: Wrapped) => Promise<void>): Promise<void> {
  const port = await freePort();
  const dir = await tmpDir('berth-npm');
  const logFile = path.join(dir, 'npm.log');
  const log = await open(logFile, 'a');
  // npm's own variables (set when this suite runs under `npm test`) are dropped: npm sets its own.
  const env = Object.fromEntries(Object.entries(cleanEnv({ BERTH_ADMIN_PASSWORD: 'wrapper-test-password', npm_config_update_notifier: 'false' })).filter(([key]) => !/^npm_(lifecycle|command|package)/.test(key)));
  const npm = spawn('npm', [...npmArgs, '--addr', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data'), '--log-format', 'json'], { cwd: REPO_ROOT, env, stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const npmExited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
  let tree: number[] = [];
  try {
    assert.ok(npm.pid, 'npm started');
    await waitForHttp(`http://127.0.0.1:${port}/v2/`, { status: 401, timeoutMs: 60_000, abortIf: () => (npm.exitCode !== null ? `npm exited: ${readFileSync(logFile, 'utf8')}` : undefined) });
    tree = treeOf(npm.pid);
    await body({ npm, berth: berthUnder(npm.pid), port, logFile });
  } finally {
    for (const pid of [...tree].reverse()) {
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    if (npm.exitCode === null && npm.signalCode === null) {
      npm.kill('SIGKILL');
      await npmExited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** The JSON log lines Berth wrote (npm's own lines are not JSON). */
async function berthLog(logFile: string): Promise<{ msg?: string; [key: string]: unknown }[]> {
  return (await readFile(logFile, 'utf8'))
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string });
}

test('npm start runs Berth with no shell in between, and Berth stops gracefully when npm is killed with SIGKILL', async () => {
  await withWrappedBerth(['start', '--'], async ({ npm, berth, port, logFile }) => {
    assert.equal(parentOf(berth), npm.pid, 'the start script execs node: Berth is npm\'s own child');
    npm.kill('SIGKILL');
    assert.ok(await waitGone(berth, 5_000), `Berth (pid ${berth}) exited within 5 s of npm's SIGKILL`);
    assert.equal(await portOpen(port), false, 'the port is free again');
    const lines = await berthLog(logFile);
    const noticed = lines.find((l) => l.msg === 'parent process exited (npm start, npx); shutting down');
    assert.ok(noticed, `Berth says why it stops: ${JSON.stringify(lines.slice(-3))}`);
    assert.equal(noticed.parentPid, npm.pid);
    assert.ok(lines.some((l) => l.msg === 'berth stopped'), 'a graceful stop (stores closed)');
  });
});

test('npm start: SIGTERM to npm stops Berth gracefully', async () => {
  await withWrappedBerth(['start', '--'], async ({ npm, berth, port, logFile }) => {
    npm.kill('SIGTERM');
    assert.ok(await waitGone(berth, 10_000), `Berth (pid ${berth}) exited after SIGTERM to npm`);
    assert.equal(await portOpen(port), false, 'the port is free again');
    assert.ok((await berthLog(logFile)).some((l) => l.msg === 'berth stopped'), 'a graceful stop');
  });
});

test('npx berth serve (npm → sh → node): Berth stops when npm is killed with SIGKILL', async () => {
  await withWrappedBerth(['exec', '--', 'berth', 'serve'], async ({ npm, berth, port, logFile }) => {
    npm.kill('SIGKILL');
    assert.ok(await waitGone(berth, 5_000), `Berth (pid ${berth}) exited within 5 s of npm's SIGKILL`);
    assert.equal(await portOpen(port), false, 'the port is free again');
    assert.ok((await berthLog(logFile)).some((l) => l.msg === 'parent process exited (npm start, npx); shutting down'));
  });
});
