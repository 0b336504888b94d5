import { createHash, type Hash } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import type { SavedHash } from '../metadata/uploads.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export type { SavedHash };

/** The SHA-256 of an upload's first `offset` bytes, to which the next bytes are added. */
export interface RunningHash {
  /** Bytes hashed so far. */
  readonly offset: number;
  /** Adds the next bytes of the upload. */
  update(chunk: Buffer): void;
  /** `sha256:<hex>` of the bytes so far; the hash may go on afterwards (a failed commit keeps the session). */
  digest(): string;
  /** The state to keep in the session row, or undefined for a hash that cannot be saved (OpenSSL's). */
  save(): SavedHash | undefined;
}

/**
 * Where the running hash of a chunked upload lives between requests. Two strategies:
 * - {@link InMemoryHashing} (one process, the embedded default): OpenSSL's SHA-256, the fastest,
 *   kept in this process's memory; another process (after a restart) rebuilds it by reading the
 *   upload's bytes back.
 * - {@link ResumableHashing} (replicas sharing one database): a SHA-256 whose state can be saved
 *   (hash-wasm; a fifth to a sixth of OpenSSL's speed), saved in the session row after every request,
 *   so whichever replica gets the next request restores it without reading the bytes again.
 *
 * A whole blob in one request (`whole`) always uses OpenSSL: nothing has to outlive the request.
 */
export interface UploadHashing {
  /** Whether hashes are saved in the session row (see {@link SavedHash}). */
  readonly resumable: boolean;

  /**
   * The hash of the first `offset` bytes of upload `id`: kept in memory, restored from `saved` when
   * it covers exactly `offset` bytes and loads, or else rebuilt by reading the upload from storage
   * (never a wrong digest: a saved state that does not fit is not used). Rejects with what
   * `BlobStore.readUpload` rejects with.
   */
  resume(id: string, offset: number, saved: SavedHash | undefined): Promise<RunningHash>;

  /**
   * A fresh hash for an upload whose every byte arrives in this request: OpenSSL's whatever the
   * strategy, since it need not outlive the request (`keep` saves nothing of it in the row).
   */
  whole(): RunningHash;

  /**
   * Keeps `hash` (consistent with the upload's stored bytes) for the session's next request:
   * returns what to save in the session row, or undefined when the strategy keeps it in memory.
   */
  keep(id: string, hash: RunningHash): SavedHash | undefined;

  /** Forgets the hash of upload `id` (ended, or its stored bytes no longer match what was hashed). */
  forget(id: string): void;
}

/** The OpenSSL SHA-256 of an upload's first `offset` bytes. */
class OpenSslHash implements RunningHash {
  offset = 0;
  private readonly hash: Hash = createHash('sha256');

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.offset += chunk.length;
  }

  digest(): string {
    return `sha256:${this.hash.copy().digest('hex')}`;
  }

  save(): undefined {
    return undefined;
  }
}

/**
 * hash-wasm's SHA-256, whose state can be saved and restored anywhere. Every hash of a process
 * shares one hasher (a WebAssembly instance: creating one per request cost more than a small
 * chunk's hashing), loading its own state into it for each chunk: hashing is synchronous, so no
 * two hashes ever use it at once, and swapping ~100 bytes of state costs next to nothing.
 */
class WasmHash implements RunningHash {
  constructor(private readonly hasher: IHasher, private state: Uint8Array, public offset: number) {}

  update(chunk: Buffer): void {
    this.hasher.load(this.state);
    this.hasher.update(chunk);
    this.state = this.hasher.save();
    this.offset += chunk.length;
  }

  digest(): string {
    this.hasher.load(this.state);
    return `sha256:${this.hasher.digest('hex')}`;
  }

  save(): SavedHash {
    return { state: Buffer.from(this.state).toString('base64'), offset: this.offset };
  }
}

/**
 * The byte count a saved hash-wasm SHA-256 state holds itself (its 4-byte build prefix, then the
 * 64-byte block buffer, then the count as a little-endian 64-bit number): must agree with the
 * offset saved beside it. Undefined when the state is too short to hold one.
 */
function countedBytes(state: Buffer): number | undefined {
  return state.length >= 76 ? Number(state.readBigUInt64LE(68)) : undefined;
}

/** Feeds every byte of upload `id` into `hash` (a fresh one): the slow path, after a restart or a crash. */
async function rebuild<H extends RunningHash>(store: BlobStore, id: string, hash: H): Promise<H> {
  for await (const chunk of await store.readUpload(id)) hash.update(chunk as Buffer);
  return hash;
}

/** OpenSSL's SHA-256 kept in this process's memory between requests (see {@link UploadHashing}). */
export class InMemoryHashing implements UploadHashing {
  readonly resumable = false;
  private readonly hashes = new Map<string, RunningHash>();

  constructor(private readonly store: BlobStore) {}

  async resume(id: string, offset: number): Promise<RunningHash> {
    const known = this.hashes.get(id);
    if (known && known.offset === offset) return known;
    this.hashes.delete(id);
    const hash = new OpenSslHash();
    return offset === 0 ? hash : rebuild(this.store, id, hash);
  }

  whole(): RunningHash {
    return new OpenSslHash();
  }

  keep(id: string, hash: RunningHash): undefined {
    this.hashes.set(id, hash);
    return undefined;
  }

  forget(id: string): void {
    this.hashes.delete(id);
  }
}

/** hash-wasm's SHA-256, saved in the session row after each request (see {@link UploadHashing}). */
export class ResumableHashing implements UploadHashing {
  readonly resumable = true;
  private hasher: Promise<IHasher> | undefined;
  /** The state of an empty hash. */
  private empty: Uint8Array | undefined;

  constructor(private readonly store: BlobStore) {}

  async resume(id: string, offset: number, saved: SavedHash | undefined): Promise<RunningHash> {
    const hasher = await (this.hasher ??= createSHA256());
    const empty = (this.empty ??= hasher.init().save());
    if (offset === 0) return new WasmHash(hasher, empty, 0);
    if (saved && saved.offset === offset) {
      const state = Buffer.from(saved.state, 'base64');
      try {
        // load() refuses a state of the wrong length or from another build of hash-wasm.
        if (countedBytes(state) === offset) {
          hasher.load(state);
          return new WasmHash(hasher, state, offset);
        }
      } catch {
        // Not usable: rebuilt from the bytes below.
      }
    }
    return rebuild(this.store, id, new WasmHash(hasher, empty, 0));
  }

  whole(): RunningHash {
    return new OpenSslHash();
  }

  keep(_id: string, hash: RunningHash): SavedHash | undefined {
    return hash.save();
  }

  forget(): void {}
}
