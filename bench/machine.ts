// The machine's own limits, measured in the same run as the registries: single-core SHA-256
// throughput and synced sequential write throughput of each storage directory. Also the tmpfs.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../test/support/run.ts';

/** Single-core SHA-256 in MB/s: `openssl speed -evp sha256`, 16384-byte blocks. */
export async function sha256Limit(seconds: number): Promise<number> {
  const out = await run('openssl', ['speed', '-evp', 'sha256', '-seconds', String(seconds), '-bytes', '16384'], { timeoutMs: 60_000 });
  // The last row reads "sha256   1378043.35k": thousands of bytes per second.
  const m = /^sha256\s+([\d.]+)k\s*$/m.exec(out.stdout);
  if (!m) throw new Error(`cannot read openssl speed output:\n${out.stdout}`);
  return Number(m[1]) / 1000;
}

/**
 * Sequential write throughput of `dir` in MB/s, durable: `bytes` written in 8 MiB writes, then
 * fsync, timed together (what a registry does to acknowledge a blob). Median of `runs` passes.
 */
export function syncedWriteLimit(dir: string, bytes: number, runs: number): { mbps: number; passes: number[] } {
  const block = randomBytes(8 << 20);
  const passes: number[] = [];
  for (let i = 0; i < runs; i++) {
    const file = path.join(dir, `bench-disk-probe-${i}`);
    const started = process.hrtime.bigint();
    const fd = openSync(file, 'w');
    try {
      for (let written = 0; written < bytes; written += block.length) writeSync(fd, block, 0, Math.min(block.length, bytes - written));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    rmSync(file, { force: true });
    passes.push(bytes / 1e6 / seconds);
  }
  return { mbps: median(passes), passes };
}

/** A RAM-backed directory and how to give it back. */
export interface RamDir {
  readonly dir: string;
  /** `tmpfs (mounted)` or `/dev/shm`. */
  readonly kind: string;
  release(): Promise<void>;
}

/**
 * A fresh tmpfs: mounted in a temp dir when running as root (unmounted by release()), else a
 * directory in /dev/shm.
 */
export async function ramDir(sizeGiB: number): Promise<RamDir> {
  if (process.getuid?.() === 0) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-bench-tmpfs-'));
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeGiB}g,mode=0700`, 'berth-bench', dir]);
    return {
      dir,
      kind: 'tmpfs (mounted)',
      release: async () => {
        await run('umount', [dir]);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const dir = await mkdtemp('/dev/shm/berth-bench-');
  return { dir, kind: '/dev/shm', release: () => rm(dir, { recursive: true, force: true }) };
}

/** The median of a non-empty list (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
