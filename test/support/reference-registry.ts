// The reference registry (CNCF Distribution 2.8, Debian's `docker-registry`) as a child process:
// filesystem storage and htpasswd (bcrypt) basic auth, for side-by-side runs with Berth.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestNetns } from './netns.ts';
import { type ManagedProcess, type ProcessRegistry, startProcess, tailFile } from './processes.ts';
import { run } from './run.ts';
import { ensurePackages, tmpDir, waitForTcp } from './system.ts';

/** How to run it. */
export interface ReferenceRegistryOptions {
  /** Listen address; default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  /** The one htpasswd user; default `admin` with a random password. */
  readonly username?: string;
  readonly password?: string;
  /** Base directory (config, htpasswd, storage, log); default a fresh temp dir. */
  readonly dir?: string;
  /** Run inside this network namespace; readiness is then probed from inside it. */
  readonly netns?: Pick<TestNetns, 'wrap' | 'waitForTcp'>;
  /** Registers the process so after() stops it. */
  readonly registry?: ProcessRegistry;
}

/** A running Distribution instance. */
export interface ReferenceRegistry {
  /** `http://host:port` as reachable from where it listens (inside the namespace, if any). */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly dir: string;
  readonly configFile: string;
  /** stdout + stderr: JSON application log lines and one access-log line per request. */
  readonly logFile: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** Writes config.yml and htpasswd, starts `docker-registry serve` and waits until it accepts connections. */
export async function startReferenceRegistry(options: ReferenceRegistryOptions): Promise<ReferenceRegistry> {
  await ensurePackages([
    { binary: 'docker-registry', pkg: 'docker-registry' },
    { binary: 'htpasswd', pkg: 'apache2-utils' },
  ]);
  const host = options.host ?? '127.0.0.1';
  const username = options.username ?? 'admin';
  const password = options.password ?? randomBytes(12).toString('base64url');
  const dir = options.dir ?? (await tmpDir('berth-refreg'));
  const storage = path.join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  const htpasswdFile = path.join(dir, 'htpasswd');
  const hashed = await run('htpasswd', ['-Bbn', username, password], { redact: [password] });
  await writeFile(htpasswdFile, hashed.stdout.trim() + '\n', { mode: 0o600 });
  const configFile = path.join(dir, 'config.yml');
  await writeFile(
    configFile,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  formatter: json',
      '  fields: { service: registry }',
      'storage:',
      `  filesystem: { rootdirectory: ${JSON.stringify(storage)} }`,
      '  delete: { enabled: true }',
      '  maintenance: { uploadpurging: { enabled: false } }',
      'http:',
      `  addr: ${JSON.stringify(`${host}:${options.port}`)}`,
      `  secret: ${JSON.stringify(randomBytes(16).toString('hex'))}`,
      'auth:',
      '  htpasswd:',
      '    realm: berth-reference',
      `    path: ${JSON.stringify(htpasswdFile)}`,
      '',
    ].join('\n'),
  );
  const logFile = path.join(dir, 'registry.log');
  const argv = ['serve', configFile];
  const command = options.netns ? options.netns.wrap('docker-registry', argv) : { command: 'docker-registry', args: argv };
  const child = await startProcess({ name: 'docker-registry', ...command, logFile });
  const stop = (): Promise<void> => child.stop();
  options.registry?.add({ name: 'docker-registry', stop });
  try {
    const wait = { timeoutMs: 20_000, abortIf: () => child.exitDescription() };
    if (options.netns) await options.netns.waitForTcp(host, options.port, wait);
    else await waitForTcp(host, options.port, wait);
  } catch (error) {
    await stop();
    throw new Error(`docker-registry did not start: ${(error as Error).message}\n${await tailFile(logFile)}`, { cause: error });
  }
  return { url: `http://${host}:${options.port}`, username, password, dir, configFile, logFile, process: child, stop };
}
