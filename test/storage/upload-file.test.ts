// The filesystem driver's upload file: batched writes, background flushes and what a failed flush
// means for the commit. A recording stand-in for the file handle shows the order of the calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { UploadFile } from '../../src/storage/filesystem/upload-file.ts';

/** A file handle that keeps what is written in memory and records every call. */
class RecordingHandle {
  readonly calls: string[] = [];
  readonly data: Buffer[] = [];
  /** Bytes written; with `keep` their copies are kept in `data` too. */
  length = 0;
  keep = false;
  writes = 0;
  flushFails = false;
  private releaseFlush: (() => void) | undefined;
  holdFlushes = false;

  async writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }> {
    const bytes = buffers.reduce((n, b) => n + b.length, 0);
    assert.equal(position, this.length, 'each write continues where the file ends');
    if (this.keep) this.data.push(...buffers.map((b) => Buffer.from(b)));
    this.length += bytes;
    this.writes++;
    this.calls.push('write');
    return { bytesWritten: bytes };
  }

  async datasync(): Promise<void> {
    this.calls.push('datasync');
    if (this.holdFlushes) await new Promise<void>((resolve) => (this.releaseFlush = resolve));
    this.calls.push('datasync done');
    if (this.flushFails) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  }

  finishFlush(): void {
    this.releaseFlush?.();
  }

  async sync(): Promise<void> {
    this.calls.push('sync');
  }

  async close(): Promise<void> {
    this.calls.push('close');
  }
}

function fileOn(handle: RecordingHandle): UploadFile {
  return new UploadFile(handle as unknown as FileHandle, 0);
}

const CHUNK = Buffer.alloc(64 << 10, 7);

/** `mib` MiB in chunks of 64 KiB, the size socket reads deliver (distinct ones when `distinct`). */
function socketChunks(mib: number, distinct = false): Buffer[] {
  return Array.from({ length: mib * 16 }, (_, i) => (distinct ? Buffer.alloc(64 << 10, i % 251) : CHUNK));
}

test('64 KiB chunks are written in batches of megabytes, in order, and counted once written', async () => {
  const handle = new RecordingHandle();
  handle.keep = true;
  const file = fileOn(handle);
  const chunks = socketChunks(10, true);
  await file.append(Readable.from(chunks));
  assert.equal(file.size, 10 << 20);
  assert.ok(handle.writes <= 12, `${handle.writes} writes for 160 chunks`);
  assert.ok(Buffer.concat(handle.data).equals(Buffer.concat(chunks)));
});

test('background flushes start while a large upload streams in', async () => {
  const handle = new RecordingHandle();
  const file = fileOn(handle);
  await file.append(Readable.from(socketChunks(320)));
  const flushes = handle.calls.filter((c) => c === 'datasync').length;
  assert.ok(flushes >= 2, `${flushes} background flushes for 320 MiB`);
  assert.ok(handle.calls.indexOf('datasync') < handle.calls.lastIndexOf('write'), 'the first flush ran before the last write');
  await file.sync();
  assert.equal(handle.calls.at(-1), 'sync', 'the commit still ends with a full fsync');
});

test('one background flush at a time, and the final flush waits for it', async () => {
  const handle = new RecordingHandle();
  handle.holdFlushes = true;
  const file = fileOn(handle);
  await file.append(Readable.from(socketChunks(200))); // the first flush starts and is held
  assert.equal(handle.calls.filter((c) => c === 'datasync').length, 1, 'one background flush at a time');
  let synced = false;
  const sync = file.sync().then(() => (synced = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(synced, false, 'no fsync while the background flush runs');
  handle.finishFlush();
  await sync;
  assert.deepEqual(handle.calls.slice(-2), ['datasync done', 'sync']);
});

test('a failed background flush fails the commit, even though a later fsync succeeds', async () => {
  // Linux reports a writeback error to a descriptor once: the fsync after it would succeed although
  // the data is gone, so the error must be remembered rather than swallowed.
  const handle = new RecordingHandle();
  handle.flushFails = true;
  const file = fileOn(handle);
  await file.append(Readable.from(socketChunks(80)));
  await assert.rejects(file.sync(), /EIO/);
  assert.ok(!handle.calls.includes('sync'), 'no fsync is trusted after a failed flush');
});

test('a write error rejects the append, stops reading and leaves the size at what was written', async () => {
  const handle = new RecordingHandle();
  const original = handle.writev.bind(handle);
  handle.writev = async (buffers: Buffer[], position: number) => {
    if (handle.writes === 2) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return original(buffers, position);
  };
  const file = fileOn(handle);
  let taken = 0;
  const source = Readable.from(socketChunks(64));
  await assert.rejects(file.append(source, { onChunk: () => void taken++ }), /ENOSPC/);
  assert.equal(file.size, handle.length, 'size counts only written bytes');
  assert.ok(taken < 64 * 16, `reading stopped at the error (${taken} chunks taken)`);
});
