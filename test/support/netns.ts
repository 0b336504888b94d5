// An isolated test host: a network namespace of the test's own, joined to the host by a veth pair.
// Servers inside listen on the namespace's loopback or its veth addresses; clients on the host only
// reach the veth addresses, as clients of a real deployment only reach the public side of a server.
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessRegistry } from './processes.ts';
import { run } from './run.ts';
import { ensurePackages } from './system.ts';

/** How to make the namespace. */
export interface NetnsOptions {
  /** Registers the namespace's removal so after() deletes it (register it before anything runs inside). */
  readonly registry?: ProcessRegistry;
}

/** A namespace this process created; every address is in 10.a.b.0/24. */
export interface TestNetns {
  /** `ip netns` name, `berth-<hex>`. */
  readonly name: string;
  /** The host side of the veth pair, 10.a.b.1. */
  readonly hostAddress: string;
  /** The first address inside, 10.a.b.2 (e.g. a server's "LAN" address). */
  readonly address: string;
  /** `10.a.b.0/30`: the host side and the first inside address only (e.g. dockerd --insecure-registry). */
  readonly lanCidr: string;
  /** Every address inside the namespace so far (the first one plus each {@link addAddress}). */
  readonly addresses: readonly string[];
  /** Adds one more address inside (10.a.b.10, .11, …) and returns it. */
  addAddress(): Promise<string>;
  /** `ip netns exec NAME command args…` as a command + args pair: the exec keeps the pid. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Polls until a TCP connect from inside the namespace to host:port succeeds. */
  waitForTcp(host: string, port: number, options: { readonly timeoutMs: number; readonly abortIf?: () => string | undefined }): Promise<void>;
  /** Deletes the veth pair and the namespace (idempotent). Stop the processes inside first. */
  remove(): Promise<void>;
}

async function subnetInUse(prefix: string): Promise<boolean> {
  const routes = (await run('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout;
  const addrs = (await run('ip', ['-4', '-o', 'addr', 'show'])).stdout;
  return `${routes}\n${addrs}`.includes(`${prefix}.`);
}

/**
 * Creates `berth-<hex>` with lo up and a veth pair: 10.a.b.1/24 on the host side, 10.a.b.2/24
 * inside. The /24 leaves room for one address per proxy (each can own port 443). Needs root.
 */
export async function createTestNetns(options: NetnsOptions = {}): Promise<TestNetns> {
  await ensurePackages([{ binary: 'ip', pkg: 'iproute2' }]);
  let prefix = '';
  for (let attempt = 0; attempt < 20 && !prefix; attempt++) {
    const candidate = `10.${randomInt(200, 250)}.${randomInt(1, 255)}`;
    if (!(await subnetInUse(candidate))) prefix = candidate;
  }
  if (!prefix) throw new Error('no unused 10.x.y.0/24 subnet found for the test namespace');
  const hex = randomBytes(3).toString('hex');
  const name = `berth-${hex}`;
  const hostIf = `bth${hex}h`;
  const nsIf = `bth${hex}n`;
  const hostAddress = `${prefix}.1`;
  const address = `${prefix}.2`;
  const addresses = [address];
  let next = 10;
  let removed = false;

  const remove = async (): Promise<void> => {
    if (removed) return;
    // Deleting either end removes the pair; the namespace's end goes with the namespace.
    await run('ip', ['link', 'del', hostIf], { allowFailure: true });
    await run('ip', ['netns', 'del', name], { allowFailure: true });
    const left = (await run('ip', ['netns', 'list'])).stdout;
    if (left.split('\n').some((l) => l.split(' ')[0] === name)) throw new Error(`network namespace ${name} still exists`);
    removed = true;
  };
  options.registry?.defer(`netns ${name}`, remove);
  try {
    await run('ip', ['netns', 'add', name]);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    await run('ip', ['link', 'set', nsIf, 'netns', name]);
    await run('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', hostIf]);
    await run('ip', ['link', 'set', hostIf, 'up']);
    await run('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${address}/24`, 'dev', nsIf]);
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up']);
    await run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (error) {
    if (!options.registry) await remove().catch(() => undefined);
    throw error;
  }

  const wrap = (command: string, args: readonly string[]): { command: string; args: string[] } => ({
    command: 'ip',
    args: ['netns', 'exec', name, command, ...args],
  });
  return {
    name,
    hostAddress,
    address,
    lanCidr: `${prefix}.0/30`,
    get addresses() {
      return [...addresses];
    },
    async addAddress(): Promise<string> {
      if (next > 250) throw new Error('namespace address pool exhausted');
      const ip = `${prefix}.${next++}`;
      await run('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${ip}/24`, 'dev', nsIf]);
      addresses.push(ip);
      return ip;
    },
    wrap,
    async waitForTcp(host, port, wait): Promise<void> {
      if (!/^[0-9.]+$/.test(host) || !Number.isInteger(port)) throw new Error(`bad address ${host}:${port}`);
      const deadline = Date.now() + wait.timeoutMs;
      let last = 'no attempt';
      while (Date.now() < deadline) {
        const reason = wait.abortIf?.();
        if (reason) throw new Error(`gave up waiting for ${host}:${port} in ${name}: ${reason} (last: ${last})`);
        const probe = wrap('bash', ['-c', `exec 3<>/dev/tcp/${host}/${port}`]);
        const result = await run(probe.command, probe.args, { allowFailure: true, timeoutMs: 5_000 });
        if (result.code === 0) return;
        last = result.stderr.trim().split('\n').pop() ?? `exit ${result.code}`;
        await sleep(200);
      }
      throw new Error(`${host}:${port} in ${name} did not accept connections within ${wait.timeoutMs} ms (last: ${last})`);
    },
    remove,
  };
}
