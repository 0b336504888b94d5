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

/** What the S3 server of a PostgreSQL + S3 phase delivers by itself, to read Berth's S3 figures against. */
export interface S3Limit {
  readonly endpoint: string;
  readonly bytes: number;
  /** One PutObject of `bytes` from memory, MB/s (median). */
  readonly putMBps: number;
  /** One GetObject of it, read to the end, MB/s (median). */
  readonly getMBps: number;
  /** PutObjects of 16 KiB from 16 concurrent clients, objects/s: the request rate small pushes meet. */
  readonly smallPutsPerSecond: number;
}

/**
 * PUT and GET of `bytes` random bytes to a scratch bucket through the AWS SDK (no Berth), `runs`
 * times, then 200 small PUTs from 16 clients: the S3 server's own throughput and request rate on
 * this machine (moto is a Python server, slower than a disk). The large objects are deleted.
 */
export async function s3Limit(server: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; createBucket(name: string): Promise<void> }, bytes: number, runs: number): Promise<S3Limit> {
  const { S3Client, PutObjectCommand, GetObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
  const bucket = `bench-probe-${randomBytes(4).toString('hex')}`;
  await server.createBucket(bucket);
  const body = randomBytes(bytes);
  const put: number[] = [];
  const get: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const key = `probe-${i}`;
      let started = process.hrtime.bigint();
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: bytes }));
      put.push(bytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9));
      started = process.hrtime.bigint();
      const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      let read = 0;
      for await (const chunk of reply.Body as AsyncIterable<Uint8Array>) read += chunk.length;
      if (read !== bytes) throw new Error(`S3 probe: read back ${read} bytes of ${bytes}`);
      get.push(bytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9));
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
    const small = randomBytes(16 * 1024);
    const count = 200;
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < count; i = next++) await client.send(new PutObjectCommand({ Bucket: bucket, Key: `small-${i}`, Body: small, ContentLength: small.length }));
      }),
    );
    const smallPutsPerSecond = count / (Number(process.hrtime.bigint() - started) / 1e9);
    return { endpoint: server.endpoint, bytes, putMBps: median(put), getMBps: median(get), smallPutsPerSecond };
  } finally {
    client.destroy();
  }
}

/** How fast the storage itself deletes what a GC sweep deletes: keys (or files) per minute. */
export interface DeleteLimit {
  readonly count: number;
  readonly seconds: number;
  readonly perMinute: number;
}

/** `count` random 64-hex names: stand-ins for SHA-256 digests (only their shape matters to a delete). */
function probeDigests(count: number): string[] {
  return Array.from({ length: count }, () => randomBytes(32).toString('hex'));
}

/** Runs `fn` over `items` with `limit` calls in flight. */
async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

/**
 * The filesystem's own delete rate under `dir`: `count` files of `bytes` written in Berth's blob
 * layout (`blobs/sha256/<2 hex>/<64 hex>`) and flushed (`sync`, so no unlink finds its blocks
 * still unallocated), then unlinked `concurrency` at a time from this process (libuv's thread
 * pool, as Berth's are). Times the unlinks only; removes the directory.
 */
export async function unlinkLimit(dir: string, count: number, bytes: number, concurrency: number): Promise<DeleteLimit> {
  const { mkdir, unlink, writeFile } = await import('node:fs/promises');
  const root = await mkdtemp(path.join(dir, 'gc-probe-'));
  try {
    const body = randomBytes(bytes);
    const files = probeDigests(count).map((hex) => path.join(root, 'blobs', 'sha256', hex.slice(0, 2), hex));
    for (const shard of new Set(files.map((f) => path.dirname(f)))) await mkdir(shard, { recursive: true });
    await eachLimit(files, 64, (file) => writeFile(file, body));
    await run('sync', []);
    const started = process.hrtime.bigint();
    await eachLimit(files, concurrency, (file) => unlink(file));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { count, seconds, perMinute: (count / seconds) * 60 };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The S3 server's own delete rate: `count` objects of `bytes` put into a bucket of their own in
 * Berth's key layout (32 clients), then deleted with DeleteObjects of up to 1,000 keys each,
 * `concurrency` requests in flight (what Berth's S3 driver sends). Times the deletes only and
 * checks the bucket is empty afterwards.
 */
export async function deleteObjectsLimit(server: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; createBucket(name: string): Promise<void> }, count: number, bytes: number, concurrency: number): Promise<DeleteLimit> {
  const { S3Client, PutObjectCommand, DeleteObjectsCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
  const bucket = `bench-delete-${randomBytes(4).toString('hex')}`;
  await server.createBucket(bucket);
  try {
    const body = randomBytes(bytes);
    const keys = probeDigests(count).map((hex) => `blobs/sha256/${hex.slice(0, 2)}/${hex}`);
    await eachLimit(keys, 32, async (Key) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body, ContentLength: body.length }));
    });
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += 1000) batches.push(keys.slice(i, i + 1000));
    let failed = 0;
    const started = process.hrtime.bigint();
    await eachLimit(batches, concurrency, async (batch) => {
      const out = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      failed += out.Errors?.length ?? 0;
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const left = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 10 }));
    if (failed > 0 || (left.KeyCount ?? 0) > 0) throw new Error(`S3 delete probe: ${failed} keys failed, ${left.KeyCount ?? 0}+ left in the bucket`);
    return { count, seconds, perMinute: (count / seconds) * 60 };
  } finally {
    client.destroy();
  }
}
