import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { StorageError, type AppendOptions, type BlobStore, type BlobStream, type ByteRange, type StoredBlob, type StoredUpload } from '../blob-store.ts';
import { blobPath, uploadPath, uploadsDir } from './paths.ts';
import { deleteBlobs, listBlobs, listUploads } from './listing.ts';
import { FileBlobStream } from './blob-stream.ts';
import { keepFreedMemory } from './heap.ts';
import { UploadFile } from './upload-file.ts';

/** Tunables of {@link FilesystemBlobStore}; the defaults suit a server. */
export interface FilesystemStoreOptions {
  /**
   * How long an upload's file stays open after its last append (default 10 s). The PATCHes of one
   * push follow each other within milliseconds; keeping the handle saves an open, a stat and a
   * close per chunk.
   */
  idleCloseMs?: number;
  /** Open upload files kept at most (default 64); beyond this the least recently used idle one is closed. */
  maxOpenUploads?: number;
}

/**
 * Modes of what the store creates: private to Berth's user. Set at creation, so no window where a
 * file is readable by others; the usual umasks (022, 027, 077) leave them exactly so. A rename keeps
 * an upload's mode, so committed blobs are 0600 too.
 */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Opens a file, turning "no such file" into `StorageError('not_found')` naming `what`. */
async function openExisting(path: string, flags: 'r' | 'r+', what: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (err) {
    if (isNotFound(err)) throw new StorageError('not_found', `${what} not found`);
    throw err;
  }
}

/**
 * Blob store on a local (or mounted) filesystem; the layout is drawn in `paths.ts`. One process owns
 * the directory while it runs: upload files stay open between appends (see `UploadFile`) and their
 * sizes are known without asking the filesystem.
 */
export class FilesystemBlobStore implements BlobStore {
  private readonly createdDirs = new Set<string>();
  /**
   * Open handles of the directories renames land in, for their fsync: saves an open and a close
   * per committed blob (a fifth of a small push's file operations). Directories under `blobs/` are
   * never removed while Berth runs, so a handle always names the live directory.
   */
  private readonly dirHandles = new Map<string, Promise<FileHandle>>();
  /** Open upload files, least recently used first. */
  private readonly files = new Map<string, UploadFile>();
  private readonly opening = new Map<string, Promise<UploadFile>>();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly idleCloseMs: number;
  private readonly maxOpenUploads: number;

  constructor(
    private readonly root: string,
    options: FilesystemStoreOptions = {},
  ) {
    this.idleCloseMs = options.idleCloseMs ?? 10_000;
    this.maxOpenUploads = options.maxOpenUploads ?? 64;
  }

  /** Creates the top-level directories; call once before use. */
  async init(): Promise<void> {
    keepFreedMemory();
    await mkdir(uploadsDir(this.root), { recursive: true, mode: DIR_MODE });
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.createdDirs.has(dir)) return;
    const created = await mkdir(dir, { recursive: true, mode: DIR_MODE });
    // A fresh fan-out directory must itself be durable, or the blob renamed into it is not.
    if (created) {
      await this.syncDir(dirname(dir));
      await this.syncDir(dirname(dirname(dir)));
    }
    this.createdDirs.add(dir);
  }

  async stat(digest: string): Promise<number | undefined> {
    try {
      return (await stat(blobPath(this.root, digest))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<BlobStream> {
    // Open first so a missing blob is an error here, not on the response stream.
    const handle = await openExisting(blobPath(this.root, digest), 'r', `blob ${digest}`);
    try {
      const end = range ? range.end + 1 : (await handle.stat()).size;
      return new FileBlobStream(handle, range?.start ?? 0, end);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async readAll(digest: string): Promise<Buffer> {
    try {
      return await readFile(blobPath(this.root, digest));
    } catch (err) {
      if (isNotFound(err)) throw new StorageError('not_found', `blob ${digest} not found`);
      throw err;
    }
  }

  async putSmall(digest: string, data: Uint8Array): Promise<void> {
    const target = blobPath(this.root, digest);
    if ((await this.stat(digest)) !== undefined) return;
    const temp = uploadPath(this.root, `put-${randomBytes(12).toString('hex')}`);
    const handle = await open(temp, 'wx', FILE_MODE);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.moveIntoPlace(temp, target);
  }

  async delete(digest: string): Promise<void> {
    await rm(blobPath(this.root, digest), { force: true });
  }

  /** Parallel unlinks; see listing.ts (empty shard directories are kept). */
  deleteBlobs(digests: readonly string[]): Promise<void> {
    return deleteBlobs(this.root, digests);
  }

  /** One shard directory read at a time; see listing.ts. */
  listBlobs(after: string | undefined, limit: number): Promise<StoredBlob[]> {
    return listBlobs(this.root, after, limit);
  }

  /** Upload files, `putSmall`'s temporary files among them; see listing.ts. */
  listUploads(after: string | undefined, limit: number): Promise<StoredUpload[]> {
    return listUploads(this.root, after, limit);
  }

  async createUpload(id: string): Promise<void> {
    const handle = await open(uploadPath(this.root, id), 'wx', FILE_MODE);
    await this.keep(id, new UploadFile(handle, 0));
  }

  async appendUpload(id: string, offset: number, data: Readable, options?: AppendOptions): Promise<number> {
    const file = await this.uploadFile(id);
    if (file.busy) throw new StorageError('offset_mismatch', 'another append to this upload is in progress');
    if (file.size !== offset) throw new StorageError('offset_mismatch', `upload holds ${file.size} bytes, not ${offset}`);
    file.busy = true;
    try {
      await file.append(data, options);
      return file.size;
    } catch (err) {
      // No handle outlives a failed request, and the next append reads the size from the file again.
      if (this.files.get(id) === file) this.files.delete(id);
      await file.close().catch(() => undefined);
      throw err;
    } finally {
      file.busy = false;
      file.lastUsed = Date.now();
    }
  }

  async uploadSize(id: string): Promise<number | undefined> {
    const file = this.files.get(id);
    if (file) return file.size;
    try {
      return (await stat(uploadPath(this.root, id))).size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async readUpload(id: string, start = 0): Promise<Readable> {
    const handle = await openExisting(uploadPath(this.root, id), 'r', 'upload');
    return createReadStream('', { fd: handle, start, highWaterMark: 1024 * 1024 });
  }

  async commitUpload(id: string, digest: string, size?: number): Promise<void> {
    const source = uploadPath(this.root, id);
    const target = blobPath(this.root, digest);
    if (this.files.get(id)?.busy) throw new StorageError('offset_mismatch', 'an append to this upload is in progress');
    // No look for an existing blob first: clients ask (HEAD) before they upload, so it is almost
    // never there, and the look cost a file-system call per blob. If it is, the rename swaps in
    // the same verified bytes atomically; a reader holding the old file reads it to the end.
    // Durability: the background flushes only shorten this one; the blob is acknowledged after its
    // bytes are flushed here, renamed into place and the directory entry flushed (moveIntoPlace).
    const file = (await this.release(id)) ?? (await this.openUpload(source));
    try {
      if (size !== undefined && file.size !== size) throw new StorageError('offset_mismatch', `upload holds ${file.size} bytes, not ${size}`);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await this.moveIntoPlace(source, target);
    } catch (err) {
      if (isNotFound(err)) throw new StorageError('not_found', 'upload not found');
      throw err;
    }
  }

  async deleteUpload(id: string): Promise<void> {
    const path = uploadPath(this.root, id);
    await (await this.release(id))?.close().catch(() => undefined);
    try {
      await unlink(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Closes every open upload file (their bytes stay) and directory handle: for shutdown. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.opening.values()]);
    const files = [...this.files.values()];
    this.files.clear();
    this.stopSweeper();
    const dirs = [...this.dirHandles.values()];
    this.dirHandles.clear();
    await Promise.allSettled([...files.map((f) => f.close()), ...dirs.map(async (d) => (await d).close())]);
  }

  /** The upload's open file, opening it (and reading its size) when it is not open yet. */
  private async uploadFile(id: string): Promise<UploadFile> {
    const cached = this.files.get(id);
    if (cached) {
      // Most recently used goes last.
      this.files.delete(id);
      this.files.set(id, cached);
      cached.lastUsed = Date.now();
      return cached;
    }
    let opening = this.opening.get(id);
    if (!opening) {
      // Callers get the file only once it is kept (and any file it evicts is closed).
      opening = this.openUpload(uploadPath(this.root, id)).then(
        async (file) => {
          this.opening.delete(id);
          await this.keep(id, file);
          return file;
        },
        (err: unknown) => {
          this.opening.delete(id);
          throw err;
        },
      );
      this.opening.set(id, opening);
    }
    return opening;
  }

  private async openUpload(path: string): Promise<UploadFile> {
    const handle = await openExisting(path, 'r+', 'upload');
    try {
      return new UploadFile(handle, (await handle.stat()).size);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Takes the upload's open file (if any) out of the cache, for its caller to close. */
  private async release(id: string): Promise<UploadFile | undefined> {
    await this.opening.get(id)?.catch(() => undefined);
    const file = this.files.get(id);
    this.files.delete(id);
    return file;
  }

  /**
   * Caches an open upload file; beyond `maxOpenUploads`, closes the least recently used idle one.
   * Resolves once that file is closed, so the bound holds when the caller goes on.
   */
  private async keep(id: string, file: UploadFile): Promise<void> {
    this.files.set(id, file);
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.closeIdle(), Math.max(this.idleCloseMs / 2, 10));
      this.sweeper.unref();
    }
    if (this.files.size <= this.maxOpenUploads) return;
    for (const [otherId, other] of this.files) {
      if (other.busy || other === file) continue;
      this.files.delete(otherId);
      await other.close().catch(() => undefined);
      return;
    }
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.idleCloseMs;
    for (const [id, file] of this.files) {
      if (file.busy || file.lastUsed > cutoff) continue;
      this.files.delete(id);
      void file.close().catch(() => undefined);
    }
    if (this.files.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private async moveIntoPlace(source: string, target: string): Promise<void> {
    const dir = dirname(target);
    await this.ensureDir(dir);
    await rename(source, target);
    await this.syncDir(dir);
  }

  /** Flushes a directory's entries so a rename inside it survives a power cut. */
  private async syncDir(dir: string): Promise<void> {
    let handle = this.dirHandles.get(dir);
    if (!handle) {
      handle = open(dir, 'r');
      this.dirHandles.set(dir, handle);
    }
    try {
      await (await handle).sync();
    } catch (err) {
      // Not kept after a failure: the next flush opens the directory afresh.
      if (this.dirHandles.get(dir) === handle) this.dirHandles.delete(dir);
      void handle.then((h) => h.close()).catch(() => undefined);
      throw err;
    }
  }
}
