// Temporary /etc/hosts entries mapping a test domain to a random loopback address.
import { randomBytes, randomInt } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

/** An /etc/hosts line this process added. */
export interface HostsEntry {
  readonly ip: string;
  readonly name: string;
  /** The exact line added (with a unique marker comment). */
  readonly line: string;
  /** Removes exactly that line again (idempotent). */
  remove(): Promise<void>;
}

/** A random address in 127.77.0.0/16 (never 127.0.0.1), so a test server can own any port there. */
export function randomLoopbackIp(): string {
  return `127.77.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

/**
 * Appends `<ip> <name>` to the hosts file (needs root). The file is rewritten in place rather than
 * replaced, because /etc/hosts is often a bind mount. Only loopback addresses are accepted, plus
 * 10.x addresses listed in `namespaceIps`: pass the addresses of a network namespace the test made
 * itself (netns.ts TestNetns.addresses), so a typo can never point a name at a real host.
 */
export async function addHostsEntry(
  ip: string,
  name: string,
  hostsFile = '/etc/hosts',
  namespaceIps: readonly string[] = [],
): Promise<HostsEntry> {
  const loopback = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
  const ownNamespace = /^10\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip) && namespaceIps.includes(ip);
  if (!loopback && !ownNamespace) throw new Error(`refusing address ${ip}: neither loopback nor the test's own namespace`);
  if (!/^[a-z0-9.-]+$/i.test(name)) throw new Error(`bad host name ${name}`);
  const line = `${ip} ${name} # berth-e2e ${randomBytes(6).toString('hex')}`;
  const current = await readFile(hostsFile, 'utf8');
  await writeFile(hostsFile, `${current}${current.endsWith('\n') || current === '' ? '' : '\n'}${line}\n`);
  let removed = false;
  return {
    ip,
    name,
    line,
    async remove(): Promise<void> {
      if (removed) return;
      const text = await readFile(hostsFile, 'utf8');
      const lines = text.split('\n');
      const index = lines.indexOf(line);
      if (index >= 0) {
        lines.splice(index, 1);
        await writeFile(hostsFile, lines.join('\n'));
      }
      removed = true;
    },
  };
}
