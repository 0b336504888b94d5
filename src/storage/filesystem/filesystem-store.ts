import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError, type BlobStore, type ByteRange } from '../blob-store.ts';
import { blobPath, uploadPath, uploadsDir } from './paths.ts';

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

/** Flushes a directory entry so a rename inside it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Blob store on a local (or mounted) filesystem; the layout is drawn in `paths.ts`. */
export class FilesystemBlobStore implements BlobStore {
  private readonly createdDirs = new Set<string>();

  constructor(private readonly root: string) {}

  /** Creates the top-level directories; call once before use. */
  async init(): Promise<void> {
    await mkdir(uploadsDir(this.root), { recursive: true });
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.createdDirs.has(dir)) return;
    const created = await mkdir(dir, { recursive: true });
    // A fresh fan-out directory must itself be durable, or the blob renamed into it is not.
    if (created) {
      await syncDir(dirname(dir));
      await syncDir(dirname(dirname(dir)));
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

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    // Open first so a missing blob is an error here, not on the response stream.
    const handle = await openExisting(blobPath(this.root, digest), 'r', `blob ${digest}`);
    return createReadStream('', { fd: handle, start: range?.start, end: range?.end, highWaterMark: 1024 * 1024 });
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
    const handle = await open(temp, 'w');
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

  async createUpload(id: string): Promise<void> {
    const handle = await open(uploadPath(this.root, id), 'wx');
    await handle.close();
  }

  async appendUpload(id: string, offset: number, data: Readable, signal?: AbortSignal): Promise<number> {
    const path = uploadPath(this.root, id);
    const size = await this.uploadSize(id);
    if (size === undefined) throw new StorageError('not_found', 'upload not found');
    if (size !== offset) throw new StorageError('offset_mismatch', `upload holds ${size} bytes, not ${offset}`);
    // 'r+' at an explicit position: never truncates, never writes past what we checked.
    const out = createWriteStream(path, { flags: 'r+', start: offset, highWaterMark: 1024 * 1024 });
    await pipeline(data, out, signal ? { signal } : {});
    return offset + out.bytesWritten;
  }

  async uploadSize(id: string): Promise<number | undefined> {
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

  async commitUpload(id: string, digest: string): Promise<void> {
    const source = uploadPath(this.root, id);
    const target = blobPath(this.root, digest);
    if ((await this.stat(digest)) !== undefined) {
      await this.deleteUpload(id);
      return;
    }
    const handle = await openExisting(source, 'r+', 'upload');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.moveIntoPlace(source, target);
  }

  async deleteUpload(id: string): Promise<void> {
    try {
      await unlink(uploadPath(this.root, id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async moveIntoPlace(source: string, target: string): Promise<void> {
    const dir = dirname(target);
    await this.ensureDir(dir);
    await rename(source, target);
    await syncDir(dir);
  }
}
