// Figure 10: what the resumable hash of a chunked upload costs. With PostgreSQL, replicas share
// upload sessions, so the running SHA-256 is hash-wasm's, whose state is restored before and saved
// after every PATCH; on SQLite it is OpenSSL's, kept in memory. Both run here through Berth's own
// UploadHashing classes, in this process, without a registry around them, over the same bytes.
import { createHash, randomBytes } from 'node:crypto';
import { InMemoryHashing, ResumableHashing, type SavedHash, type UploadHashing } from '../../src/registry/upload-hash.ts';
import type { BlobStore } from '../../src/storage/blob-store.ts';
import { median } from '../machine.ts';
import type { Scale } from '../options.ts';

/** The two strategies at one request size. */
export interface HashCost {
  /** Bytes per request (PATCH), each a restore + update + save for the resumable hash. */
  readonly chunkBytes: number;
  readonly totalBytes: number;
  /** OpenSSL's SHA-256 kept in memory between requests (SQLite), MB/s. */
  readonly opensslMBps: number;
  /** hash-wasm's SHA-256 restored and saved around each request (PostgreSQL), MB/s. */
  readonly resumableMBps: number;
  /** Extra CPU time of the resumable hash per request of `chunkBytes`, ms. */
  readonly extraMsPerRequest: number;
}

/** A store the hashes must never read: the benchmark measures the path where the saved state is used. */
const NO_STORE = new Proxy({}, {
  get() {
    throw new Error('the hash was rebuilt from storage: the saved state was not used');
  },
}) as BlobStore;

async function hashAll(hashing: UploadHashing, data: Buffer, chunkBytes: number): Promise<{ seconds: number; digest: string }> {
  const started = process.hrtime.bigint();
  let saved: SavedHash | undefined;
  let offset = 0;
  for (let start = 0; start < data.length; start += chunkBytes) {
    const chunk = data.subarray(start, Math.min(start + chunkBytes, data.length));
    const hash = await hashing.resume('bench-upload-0001', offset, saved);
    hash.update(chunk);
    offset += chunk.length;
    saved = hashing.keep('bench-upload-0001', hash);
  }
  const digest = (await hashing.resume('bench-upload-0001', offset, saved)).digest();
  hashing.forget('bench-upload-0001');
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, digest };
}

/**
 * Hashes `scale.blobBytes` random bytes in requests of 1 MiB and of `scale.chunkBytes` with each
 * strategy, `scale.rounds` times alternating (at least 3), and reports the medians. Throws when
 * a strategy's digest is wrong.
 */
export async function uploadHashCost(scale: Scale, log: (line: string) => void): Promise<HashCost[]> {
  const data = randomBytes(scale.blobBytes);
  const expected = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const results: HashCost[] = [];
  for (const chunkBytes of [...new Set([1 << 20, scale.chunkBytes])]) {
    const times = { openssl: [] as number[], resumable: [] as number[] };
    for (let round = 0; round < Math.max(3, scale.rounds); round++) {
      for (const name of round % 2 === 0 ? (['openssl', 'resumable'] as const) : (['resumable', 'openssl'] as const)) {
        const hashing = name === 'openssl' ? new InMemoryHashing(NO_STORE) : new ResumableHashing(NO_STORE);
        const { seconds, digest } = await hashAll(hashing, data, chunkBytes);
        if (digest !== expected) throw new Error(`${name} hash of ${chunkBytes}-byte requests gave ${digest}, expected ${expected}`);
        times[name].push(seconds);
      }
    }
    const requests = Math.ceil(data.length / chunkBytes);
    const openssl = median(times.openssl);
    const resumable = median(times.resumable);
    const cost: HashCost = {
      chunkBytes,
      totalBytes: data.length,
      opensslMBps: data.length / 1e6 / openssl,
      resumableMBps: data.length / 1e6 / resumable,
      extraMsPerRequest: ((resumable - openssl) * 1000) / requests,
    };
    log(`  hash, ${chunkBytes / (1 << 20)} MiB requests: OpenSSL ${cost.opensslMBps.toFixed(0)} MB/s, resumable ${cost.resumableMBps.toFixed(0)} MB/s (+${cost.extraMsPerRequest.toFixed(2)} ms per request)`);
    results.push(cost);
  }
  return results;
}
