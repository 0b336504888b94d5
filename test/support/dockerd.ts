// A private Docker engine (and the containerd it manages) in a temp dir, no networking or iptables.
import { access, copyFile, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ManagedProcess, type ProcessRegistry, startProcess, stopByPidFile, tailFile } from './processes.ts';
import { cleanEnv, run } from './run.ts';
import { ensurePackages, tmpDir } from './system.ts';

/** How to start dockerd. */
export interface DockerdOptions {
  /** Registries (host:port or CIDR) dockerd may reach over plain HTTP besides 127.0.0.0/8. */
  readonly insecureRegistries?: readonly string[];
  /** Base directory; default a fresh temp dir. Removed by stop() unless keepDir is set. */
  readonly dir?: string;
  readonly keepDir?: boolean;
  /** How long to wait for `docker version` to succeed; default 60 000 ms. */
  readonly timeoutMs?: number;
  /** Registers dockerd here so after() stops it. */
  readonly registry?: ProcessRegistry;
  /** More dockerd flags, e.g. `--registry-mirror=http://127.0.0.1:PORT`. */
  readonly extraArgs?: readonly string[];
}

/** Environment for the docker CLI talking to this engine. */
export interface DockerEnv {
  readonly DOCKER_HOST: string;
  /** A temp dir: `docker login` writes here, never to /root/.docker. */
  readonly DOCKER_CONFIG: string;
}

/** A running engine. */
export interface Dockerd {
  readonly dir: string;
  readonly env: DockerEnv;
  /** The containerd that dockerd started (for ctr -a). */
  readonly containerdSocket: string;
  readonly logFile: string;
  readonly process: ManagedProcess;
  /** Stops dockerd by pid, then its containerd by pid file, then removes the dir (unless keepDir). */
  stop(): Promise<void>;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts whatever dockerd left mounted under dir (it bind-mounts its data root), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  for (const mountPoint of await mountsUnder(dir)) {
    await run('umount', [mountPoint], { allowFailure: true, timeoutMs: 30_000 });
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted, not removing ${dir}: ${left.join(', ')}`);
}

/**
 * Starts dockerd as TESTING.md describes (vfs storage, no bridge, no iptables, everything under a
 * temp dir, its own socket) and waits until `docker version` answers.
 */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  await ensurePackages([
    { binary: 'dockerd', pkg: 'docker.io' },
    { binary: 'docker', pkg: 'docker.io' },
    { binary: 'ctr', pkg: 'containerd' },
  ]);
  const dir = options.dir ?? (await tmpDir('berth-dockerd'));
  const execRoot = path.join(dir, 'exec');
  const configDir = path.join(dir, 'client-config');
  await mkdir(configDir, { recursive: true });
  const socket = path.join(dir, 'docker.sock');
  const env: DockerEnv = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: configDir };
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    `--data-root=${path.join(dir, 'root')}`,
    `--exec-root=${execRoot}`,
    `--pidfile=${path.join(dir, 'dockerd.pid')}`,
    '-H',
    env.DOCKER_HOST,
    ...(options.insecureRegistries ?? []).map((r) => `--insecure-registry=${r}`),
    ...(options.extraArgs ?? []),
  ];
  const logFile = path.join(dir, 'dockerd.log');
  const child = await startProcess({ name: 'dockerd', command: 'dockerd', args, logFile });
  const containerdSocket = path.join(execRoot, 'containerd', 'containerd.sock');
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    await child.stop({ termTimeoutMs: 30_000 });
    await stopByPidFile(path.join(execRoot, 'containerd', 'containerd.pid'));
    stopped = true;
    if (!options.keepDir) {
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true });
    }
  };
  options.registry?.add({ name: 'dockerd', stop });

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last = '';
  for (;;) {
    const died = child.exitDescription();
    const result = died
      ? undefined
      : await run('docker', ['version'], { env: cleanEnv({ ...env }), allowFailure: true, timeoutMs: 15_000 });
    if (result?.code === 0) {
      if (await exists(containerdSocket)) break;
      last = `no containerd socket at ${containerdSocket}`;
    } else if (result) last = `${result.stdout}${result.stderr}`;
    if (died || Date.now() > deadline) {
      const log = await tailFile(logFile);
      await stop().catch(() => undefined);
      throw new Error(`dockerd did not become ready: ${died ?? 'timeout'}\n${last}\n--- ${logFile} ---\n${log}`);
    }
    await sleep(300);
  }
  return { dir, env, containerdSocket, logFile, process: child, stop };
}

/** A CA installed where dockerd looks for it. */
export interface InstalledDockerCa {
  /** /etc/docker/certs.d/HOST[:PORT]/ca.crt */
  readonly path: string;
  /** Removes the file and the directories this install created. */
  remove(): Promise<void>;
}

/**
 * Makes dockerd trust `caFile` for registry `hostPort` (exactly as clients address it, port only
 * when not 443) by copying it to /etc/docker/certs.d/HOST[:PORT]/ca.crt. dockerd reads that
 * directory on every connection, so no restart is needed. Refuses to overwrite a different existing
 * file; when the same CA is already there, remove() of the returned handle leaves it in place.
 */
export async function installDockerRegistryCa(hostPort: string, caFile: string, certsDir = '/etc/docker/certs.d'): Promise<InstalledDockerCa> {
  if (!/^[a-z0-9.-]+(:\d+)?$/i.test(hostPort)) throw new Error(`bad registry host ${hostPort}`);
  const target = path.join(certsDir, hostPort, 'ca.crt');
  if (await exists(target)) {
    // The same CA installed by an outer scope (e.g. the whole suite): leave it to that scope.
    if ((await readFile(target)).equals(await readFile(caFile))) return { path: target, remove: async () => undefined };
    throw new Error(`${target} already exists with another CA; refusing to replace it`);
  }
  const created: string[] = [];
  for (const dir of [path.dirname(certsDir), certsDir, path.dirname(target)]) {
    if (await exists(dir)) continue;
    await mkdir(dir);
    created.push(dir);
  }
  await copyFile(caFile, target);
  let removed = false;
  return {
    path: target,
    async remove(): Promise<void> {
      if (removed) return;
      await rm(target, { force: true });
      for (const dir of [...created].reverse()) await rmdir(dir).catch(() => undefined);
      removed = true;
    },
  };
}
