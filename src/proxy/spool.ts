import { randomBytes } from 'node:crypto';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ignore } from '../storage/sink.ts';
import { SpoolStream } from './spool-stream.ts';

/** Most bytes one `writev` takes: what arrived while the previous one ran, up to this. */
const WRITE_BATCH_BYTES = 8 << 20;
/** Most buffers one `writev` takes (below every system's IOV_MAX). */
const WRITE_BATCH_BUFFERS = 512;
/** Queued bytes above which `write` asks its caller to wait (the upstream is then paused). */
const QUEUE_LIMIT = 8 << 20;
/**
 * Written bytes kept in memory behind the newest: readers within this distance of the tail (the
 * usual case: clients as fast as the upstream) are served the arriving chunks themselves, with
 * no file read; readers further behind read the file.
 */
const MEMORY_WINDOW = 4 << 20;

/**
 * The growing copy of one blob on local disk while it arrives from an upstream registry: written
 * once, in order, by its fill, and read meanwhile by any number of readers, each from its own
 * offset, each following the copy as it grows (woken by new bytes, never polling). Readers near
 * the tail get the arriving chunks from memory; the file serves the late joiners and the slow.
 *
 * The last byte is held back from readers until the fill says the bytes match their digest
 * (`complete`): a reader of the whole blob can then never deliver a complete but corrupt body —
 * its connection is cut one byte short when the fill fails (`fail`).
 *
 * The file is unlinked as soon as it is created: it lives while its handle is open, and the
 * kernel frees it when the last reader is done, or when the process dies — a crash leaves nothing
 * in the spool directory. Never flushed to disk: it is a cache of bytes in flight.
 */
export class Spool {
  private acceptedBytes = 0;
  /** Bytes in the file. */
  private written = 0;
  /** The blob's size as announced by the upstream, when it was. */
  private expected: number | undefined;
  /** The final size, once the fill verified the bytes. */
  private size: number | undefined;
  private error: Error | undefined;
  /** Chunks not yet written, in order. */
  private queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  /** The newest chunks (written or not) and where each starts: [memStart, accepted). */
  private memory: Buffer[] = [];
  private memoryAt: number[] = [];
  /** Callbacks for the next change (more bytes, the end, a failure). */
  private waiters = new Set<() => void>();
  /** Callbacks for the queue having drained (or the spool having failed). */
  private drains: (() => void)[] = [];
  /** Callbacks for the queue having room again (or the spool having failed). */
  private rooms: (() => void)[] = [];
  /** The fill's reference plus one per open reader; the handle closes at zero. */
  private refs = 1;

  private constructor(private readonly handle: FileHandle) {}

  /**
   * A new, empty spool in `dir` (created 0700 if missing; the file 0600 and unlinked at once).
   * Rejects with the file system's error.
   */
  static async create(dir: string): Promise<Spool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `fill-${randomBytes(12).toString('hex')}`);
    const handle = await open(path, 'wx+', 0o600);
    try {
      await unlink(path);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new Spool(handle);
  }

  /** Bytes accepted by `write` (in memory or in the file): readers may have them, up to `readable`. */
  get accepted(): number {
    return this.acceptedBytes;
  }

  /** Bytes readers may deliver now: all once complete; before, the last byte is held back. */
  get readable(): number {
    if (this.size !== undefined) return this.size;
    const bound = this.expected === undefined ? this.accepted - 1 : Math.min(this.accepted, this.expected - 1);
    return Math.max(bound, 0);
  }

  /** The blob's size as the upstream announced it (readers then hold back only its last byte). */
  expect(size: number | undefined): void {
    this.expected = size;
  }

  /**
   * Appends `chunk` (readers may have it at once; it is written to the file in the background).
   * Returns false when the caller should stop supplying bytes until `room()` resolves. The
   * chunk must never be changed afterwards: readers hand it out as it is.
   */
  write(chunk: Buffer): boolean {
    if (this.error) return false;
    if (chunk.length === 0) return true;
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.memory.push(chunk);
    this.memoryAt.push(this.acceptedBytes);
    this.acceptedBytes += chunk.length;
    if (!this.writing) this.flush();
    this.notify();
    return this.queued < QUEUE_LIMIT;
  }

  /** Resolves once the queue has room again (half of it written); rejects when the spool failed. */
  room(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => (this.error ? reject(this.error) : resolve());
      if (this.error || this.queued <= QUEUE_LIMIT / 2) return check();
      this.rooms.push(check);
    });
  }

  /** Resolves once every accepted byte is in the file; rejects when the spool failed. */
  drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => (this.error ? reject(this.error) : resolve());
      if (this.error || (!this.writing && this.queued === 0)) return check();
      this.drains.push(check);
    });
  }

  /** Every byte is accepted and verified: readers may deliver all `size` bytes, then end. */
  complete(size: number): void {
    if (this.error) return;
    if (size !== this.accepted) throw new Error(`spool holds ${this.accepted} bytes, not ${size}`);
    this.size = size;
    this.notify();
  }

  /** The fill failed: readers fail with `err` (their connections are cut), queued bytes are dropped. */
  fail(err: Error): void {
    if (this.error || this.size !== undefined) return;
    this.error = err;
    this.queue = [];
    this.queued = 0;
    this.memory = [];
    this.memoryAt = [];
    this.notify();
    this.settleDrains();
  }

  /**
   * A reader of bytes `start` to `end` (inclusive; to the blob's last byte when undefined), following
   * the copy as it grows; it errors when the fill fails, or when the range lies beyond the final size.
   * Undefined when the spool is closed already (read the committed blob instead).
   */
  reader(start: number, end: number | undefined): SpoolStream | undefined {
    if (this.refs === 0) return undefined;
    this.refs++;
    return new SpoolStream(this, start, end === undefined ? undefined : end + 1);
  }

  /** Drops the fill's reference (or a reader's): the file is closed once nobody holds it. */
  release(): void {
    if (this.refs === 0) return;
    if (--this.refs > 0) return;
    this.memory = [];
    this.memoryAt = [];
    this.handle.close().catch(ignore);
  }

  /**
   * Where a reader at `position` wanting bytes up to `end` (exclusive, or the blob's end when
   * undefined) stands: it may read up to `limit` now (nothing when `limit` <= position), and is
   * `done` at its end; throws the fill's failure, or for a range beyond the final size.
   */
  state(position: number, end: number | undefined): { limit: number; done: boolean } {
    if (this.error) throw this.error;
    const last = end ?? this.size;
    if (this.size !== undefined && last !== undefined && last > this.size) throw new RangeError(`range ends beyond the blob's ${this.size} bytes`);
    if (last !== undefined && position >= last) return { limit: position, done: true };
    const limit = last === undefined ? this.readable : Math.min(this.readable, last);
    return { limit, done: false };
  }

  /** The bytes from `position` (below `limit`) of the chunk holding it, when it is still in memory. */
  fromMemory(position: number, limit: number): Buffer | undefined {
    for (let i = this.memory.length - 1; i >= 0; i--) {
      const at = this.memoryAt[i]!;
      if (at > position) continue;
      const chunk = this.memory[i]!;
      if (position >= at + chunk.length) return undefined;
      // The chunk itself when it is wanted whole (the usual case): no view to allocate.
      if (position === at && limit >= at + chunk.length) return chunk;
      return chunk.subarray(position - at, Math.min(chunk.length, limit - at));
    }
    return undefined;
  }

  /** Reads up to `length` bytes at `position` (below what `state` allows) from the file into `buffer`. */
  async readAt(buffer: Buffer, length: number, position: number): Promise<number> {
    // Bytes accepted but not yet written are always in memory: a reader is only sent here for older ones.
    const n = Math.min(length, this.written - position);
    if (n <= 0) throw new Error('spool read beyond what is written');
    const { bytesRead } = await this.handle.read(buffer, 0, n, position);
    if (bytesRead === 0) throw new Error('spool file ended early');
    return bytesRead;
  }

  /** Calls `callback` once, at the next change; returns a function that cancels it. */
  onChange(callback: () => void): () => void {
    this.waiters.add(callback);
    return () => this.waiters.delete(callback);
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const callback of waiting) callback();
  }

  private settleDrains(): void {
    this.settleRooms();
    const drains = this.drains;
    this.drains = [];
    for (const check of drains) check();
  }

  private settleRooms(): void {
    if (this.rooms.length === 0) return;
    const rooms = this.rooms;
    this.rooms = [];
    for (const check of rooms) check();
  }

  /** Drops written chunks beyond the memory window (never one that is not written yet). */
  private trim(): void {
    let drop = 0;
    while (drop < this.memory.length - 1) {
      const end = this.memoryAt[drop]! + this.memory[drop]!.length;
      if (end > this.written || this.written - end < MEMORY_WINDOW) break;
      drop++;
    }
    if (drop === 0) return;
    this.memory.splice(0, drop);
    this.memoryAt.splice(0, drop);
  }

  /** Writes what is queued, one `writev` at a time, at the end of what is written. */
  private flush(): void {
    if (this.error || this.queued === 0) {
      this.writing = false;
      this.settleDrains();
      return;
    }
    this.writing = true;
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < WRITE_BATCH_BUFFERS && bytes < WRITE_BATCH_BYTES) bytes += this.queue[count++]!.length;
    const batch = this.queue.splice(0, count);
    this.handle.writev(batch, this.written).then(
      ({ bytesWritten }) => {
        if (this.error) return this.flush();
        if (bytesWritten < bytes) {
          if (bytesWritten === 0) return this.fail(new Error('spool write made no progress'));
          this.queue.unshift(...skip(batch, bytesWritten));
        }
        this.written += bytesWritten;
        this.queued -= bytesWritten;
        if (this.queued <= QUEUE_LIMIT / 2) this.settleRooms();
        this.trim();
        this.flush();
      },
      (err: Error) => {
        this.writing = false;
        this.fail(err);
      },
    );
  }
}

/** `buffers` without their first `n` bytes. */
function skip(buffers: Buffer[], n: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const buffer of buffers) {
    if (n >= buffer.length) {
      n -= buffer.length;
      continue;
    }
    rest.push(n > 0 ? buffer.subarray(n) : buffer);
    n = 0;
  }
  return rest;
}
