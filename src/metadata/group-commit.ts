import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Makes everything written to the log so far durable (an fsync, run off the main thread). */
export type LogSync = () => Promise<void>;

/**
 * Group commit: many commits share one flush of the write-ahead log instead of each waiting for
 * its own.
 *
 * Every commit takes the next number of a logical clock the moment its bytes reach the log (a
 * plain write into the page cache). A flush records the clock when it *starts*: once it
 * completes, every commit numbered up to that value is on stable storage, because an fsync covers
 * whatever was written to the file before it began. A commit that waits for number n therefore
 * never settles for a flush that was already in flight when it committed — it waits for the next.
 * Commits arriving while one flush runs are covered together by the following one.
 *
 * A failed flush is final: after an fsync error the kernel may have dropped the dirty pages and a
 * later fsync could report success for data that never reached the disk, so every later wait
 * fails too, until the process restarts.
 */
export class GroupCommit {
  private written = 0;
  private durable = 0;
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;
  /** Flushes started so far (for tests and metrics). */
  flushes = 0;

  constructor(private readonly sync: LogSync) {}

  /** Notes that a commit has just reached the log; returns its number. */
  committed(): number {
    return ++this.written;
  }

  /** The number of the last commit made. */
  get latest(): number {
    return this.written;
  }

  /** Whether commit `n` is already on stable storage. */
  isDurable(n: number): boolean {
    return this.durable >= n;
  }

  /** Resolves once commit `n` (and so every commit before it) is on stable storage. */
  async durableThrough(n: number): Promise<void> {
    while (this.durable < n) {
      if (this.failure) throw this.failure;
      await (this.flushing ?? this.startFlush());
    }
  }

  /** Waits for the flush in flight, if any (before closing the log). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private startFlush(): Promise<void> {
    const target = this.written;
    this.flushes++;
    const run = this.sync().then(
      () => {
        this.durable = Math.max(this.durable, target);
      },
      (err: unknown) => {
        this.failure = new Error(`the metadata database could not be flushed to disk, so nothing more can be acknowledged as stored; check the disk and restart Berth (${(err as Error).message})`);
      },
    );
    const flushing = run.finally(() => {
      if (this.flushing === flushing) this.flushing = undefined;
    });
    this.flushing = flushing;
    return flushing;
  }
}

/**
 * Flushes SQLite's write-ahead log file `walPath` with fdatasync, through libuv's thread pool.
 * The directory holding it is synced once too, so the log's own directory entry is durable.
 * The file is opened on first use (SQLite creates it with the first write) and reopened if it was
 * unlinked: SQLite removes the log only when the last connection closes, after checkpointing it
 * into the database with a sync, so the old file's content is safe and the new one is what to flush.
 */
export function walFileSync(walPath: string): LogSync & { close(): Promise<void> } {
  let handle: FileHandle | undefined;
  let directorySynced = false;
  const sync = async () => {
    if (handle && (await handle.stat()).nlink === 0) {
      await handle.close();
      handle = undefined;
    }
    handle ??= await open(walPath, 'r+');
    await handle.datasync();
    if (!directorySynced) {
      const directory = await open(dirname(walPath), 'r');
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
      directorySynced = true;
    }
  };
  return Object.assign(sync, {
    async close() {
      await handle?.close();
      handle = undefined;
    },
  });
}
