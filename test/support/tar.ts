// Minimal streaming ustar writer (regular files and directories), enough for image layers and archives.
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 512;

/** One tar member's metadata. */
export interface TarEntry {
  /** Path inside the archive (at most 100 bytes; directories end with '/'). */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Byte size of a file's content (0 for directories). */
  readonly size: number;
  /** Permission bits; default 0o644 for files, 0o755 for directories. */
  readonly mode?: number;
  /** Modification time in seconds since the epoch; default now. */
  readonly mtime?: number;
}

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar field overflow: ${value}`);
  return `${digits.padStart(width - 1, '0')}\0`;
}

/** Builds the 512-byte ustar header of an entry. */
export function tarHeader(entry: TarEntry): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  if (name.length > 100) throw new Error(`tar name longer than 100 bytes: ${entry.name}`);
  const header = Buffer.alloc(BLOCK, 0);
  const put = (text: string, offset: number): void => {
    header.write(text, offset, 'binary');
  };
  name.copy(header, 0);
  put(octal(entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644), 8), 100);
  put(octal(0, 8), 108); // uid
  put(octal(0, 8), 116); // gid
  put(octal(entry.type === 'directory' ? 0 : entry.size, 12), 124);
  put(octal(entry.mtime ?? Math.floor(Date.now() / 1000), 12), 136);
  put('        ', 148); // checksum placeholder: eight spaces
  put(entry.type === 'directory' ? '5' : '0', 156);
  put('ustar\0', 257);
  put('00', 263);
  put('root', 265); // uname
  put('root', 297); // gname
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** Writes a tar stream to a file handle, optionally feeding every byte to a hash (for digests). */
export class TarWriter {
  readonly #file: FileHandle;
  readonly #hash: Hash | undefined;
  #bytes = 0;

  constructor(file: FileHandle, hash?: Hash) {
    this.#file = file;
    this.#hash = hash;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  async #write(chunk: Buffer): Promise<void> {
    this.#hash?.update(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.#file.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
    this.#bytes += chunk.length;
  }

  /** Adds a directory entry. */
  async addDirectory(name: string, mtime?: number): Promise<void> {
    await this.#write(tarHeader({ name: name.endsWith('/') ? name : `${name}/`, type: 'directory', size: 0, mtime }));
  }

  /** Adds a file whose content is in memory. */
  async addFile(name: string, data: Buffer, mtime?: number): Promise<void> {
    await this.addFileFrom(name, data.length, [data], mtime);
  }

  /** Adds a file of exactly `size` bytes taken from `chunks` (streamed, never held in memory at once). */
  async addFileFrom(name: string, size: number, chunks: AsyncIterable<Buffer> | Iterable<Buffer>, mtime?: number): Promise<void> {
    await this.#write(tarHeader({ name, type: 'file', size, mtime }));
    let seen = 0;
    for await (const chunk of chunks) {
      seen += chunk.length;
      if (seen > size) throw new Error(`tar member ${name}: more than the declared ${size} bytes`);
      await this.#write(chunk);
    }
    if (seen !== size) throw new Error(`tar member ${name}: got ${seen} bytes, declared ${size}`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0) await this.#write(Buffer.alloc(pad, 0));
  }

  /** Writes the two zero blocks that end an archive. */
  async finish(): Promise<void> {
    await this.#write(Buffer.alloc(2 * BLOCK, 0));
  }
}
