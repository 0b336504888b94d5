import { BlockList, isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses `10.0.0.0/8`, `127.0.0.1`, `fd00::/8` or `::1`; undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = normalizeAddress(slash < 0 ? text.trim() : text.slice(0, slash).trim());
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, prefix: Number(prefixText), family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`; brackets removed. */
export function normalizeAddress(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(bare) ? bare.slice(7) : bare;
}

/** A set of addresses and CIDR blocks, e.g. the trusted proxies. */
export class AddressSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const cidr = parseCidr(entry);
      if (!cidr) throw new Error(`not an IP address or CIDR block: ${entry}`);
      this.list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    this.size = entries.length;
  }

  /** Whether `address` (any textual form, IPv4-mapped included) is in the set. */
  has(address: string | undefined): boolean {
    if (!address || this.size === 0) return false;
    const bare = normalizeAddress(address);
    const version = isIP(bare);
    if (version === 0) return false;
    return this.list.check(bare, version === 4 ? 'ipv4' : 'ipv6');
  }
}
