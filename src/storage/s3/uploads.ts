import { Readable } from 'node:stream';
import { StorageError, type AppendOptions } from '../blob-store.ts';
import { cutParts } from './append.ts';
import type { Bucket, KeyRange } from './bucket.ts';
import { isNoSuchUpload } from './client.ts';
import type { Layout } from './layout.ts';
import { emptyState, parseState, serializeState, tailSize, type Segment, type UploadState } from './state.ts';

/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000;
/**
 * Tail segments kept before an append merges them into one: each small append costs one PutObject
 * of its own bytes, and reading the tail back (to start the next part) one GET per segment.
 */
const MAX_TAIL_SEGMENTS = 32;
/** Server-side copies (UploadPartCopy) and tail reads running at once. */
const COPY_CONCURRENCY = 4;

/** How uploads are cut and copied; see `S3StoreOptions` for each. */
export interface UploadSettings {
  partSize: number;
  partConcurrency: number;
  copyObjectLimit: number;
  copyPartSize: number;
}

/**
 * Upload sessions as S3 multipart uploads, with their state in the bucket (layout.ts, state.ts) so
 * any process continues any upload. Within this process an upload takes one append (or commit) at
 * a time; appends to one upload from two processes at once are not detected here (the registry
 * serialises a session's requests), but cannot make a wrong blob: the state names each part's ETag
 * and S3 refuses to complete with a part that was overwritten since.
 */
export class S3Uploads {
  private readonly busy = new Set<string>();
  /** Bytes stored so far by an append running in this process (its state is written at its end). */
  private readonly live = new Map<string, number>();

  constructor(
    private readonly bucket: Bucket,
    private readonly layout: Layout,
    private readonly settings: UploadSettings,
  ) {}

  /** Writes an empty upload's state (see `BlobStore.createUpload`). */
  async create(id: string): Promise<void> {
    await this.writeState(id, emptyState(this.settings.partSize));
  }

  /** Bytes the upload holds: as this process's running append has stored them so far, else as its state says. */
  async size(id: string): Promise<number | undefined> {
    this.layout.upload(id);
    return this.live.get(id) ?? (await this.readState(id))?.size;
  }

  /**
   * Cuts `source` into parts (the tail's bytes first), keeps what is left over as a tail segment,
   * then writes the state; see `BlobStore.appendUpload` for the contract.
   */
  async append(id: string, offset: number, source: Readable, options: AppendOptions = {}): Promise<number> {
    this.claim(id);
    try {
      const state = await this.requireState(id);
      if (state.size !== offset) throw new StorageError('offset_mismatch', `upload holds ${state.size} bytes, not ${offset}`);
      return await this.appendTo(id, state, source, options);
    } finally {
      this.live.delete(id);
      this.busy.delete(id);
    }
  }

  /**
   * Streams the upload's bytes from `start`. Parts of a multipart upload cannot be read before it
   * is completed, so an upload holding full parts is completed into `data` first and continues from
   * there: its next append (or commit with a tail) copies those parts server-side into a new
   * multipart upload — a copy of the upload inside S3, none through Berth. Rare: only non-SHA-256
   * digests and hash rebuilds read uploads back.
   */
  async readUpload(id: string, start = 0): Promise<Readable> {
    this.claim(id);
    let state: UploadState;
    try {
      state = await this.requireState(id);
      if (state.parts > 0 && state.multipart) {
        await this.completeQuietly(id, state.multipart.uploadId, state.multipart.etags);
        state = { ...state, multipart: undefined };
        await this.writeState(id, state);
      }
    } finally {
      this.busy.delete(id);
    }
    return Readable.from(this.bytesOf(id, state, start), { objectMode: false });
  }

  /** Makes the upload the object `blobKey` (unless it exists already), then removes the upload. */
  async commit(id: string, blobKey: string): Promise<void> {
    this.claim(id);
    try {
      const state = await this.requireState(id);
      let open = state.multipart?.uploadId;
      if (!(await this.bucket.head(blobKey))) {
        await this.assemble(id, state, blobKey);
        open = undefined;
      }
      await this.remove(id, open);
    } finally {
      this.busy.delete(id);
    }
  }

  /** Removes the upload's objects and multipart uploads; a missing upload is a no-op. */
  async delete(id: string): Promise<void> {
    this.layout.upload(id);
    const state = await this.readState(id).catch(() => undefined);
    await this.remove(id, state?.multipart?.uploadId);
  }

  /** Marks the upload as taken by this process's one running operation on it. */
  private claim(id: string): void {
    this.layout.upload(id);
    if (this.busy.has(id)) throw new StorageError('offset_mismatch', 'another append to this upload is in progress');
    this.busy.add(id);
  }

  private async appendTo(id: string, state: UploadState, source: Readable, options: AppendOptions): Promise<number> {
    const { partSize } = state;
    const before = state.parts;
    const tailBytes = tailSize(state);
    const etags: string[] = [];
    const stored: boolean[] = [];
    let multipart: Promise<{ uploadId: string; etags: string[] }> | undefined;
    this.live.set(id, state.size);
    const outcome = await cutParts(source, options, {
      firstPart: partSize - tailBytes,
      partSize,
      concurrency: this.settings.partConcurrency,
      room: MAX_PARTS * partSize - state.size,
      sendPart: async (index, bytes) => {
        multipart ??= this.openMultipart(id, state);
        const { uploadId } = await multipart;
        // The first new part starts with the tail: read back only now that a part is full.
        const body = index === 0 && tailBytes > 0 ? Buffer.concat([await this.readTail(state.tail), bytes]) : bytes;
        etags[index] = await this.bucket.uploadPart(this.layout.data(id), uploadId, before + index + 1, body);
        stored[index] = true;
        let n = 0;
        while (stored[n]) n++;
        if (n > 0) this.live.set(id, (before + n) * partSize);
      },
    });
    const opened = multipart && (await multipart.catch(() => undefined));
    const n = outcome.partsStored;
    let error = outcome.partError;
    // Once a new part holds them, the old tail's bytes are no longer the tail.
    let tail: Segment[] = n > 0 ? [] : state.tail;
    if (error === undefined && outcome.rest.length > 0) {
      try {
        tail = await this.addToTail(id, tail, (before + n) * partSize, outcome.rest);
      } catch (err) {
        error = err;
      }
    }
    const next: UploadState = { size: 0, partSize, parts: before + n, tail };
    next.size = next.parts * partSize + tailSize(next);
    if (opened) next.multipart = { uploadId: opened.uploadId, etags: [...opened.etags, ...etags.slice(0, n)] };
    else if (state.multipart) next.multipart = state.multipart;
    // The commit point: what is not in the state written here is not part of the upload.
    if (serializeState(next) !== serializeState(state)) await this.writeState(id, next);
    const failure = outcome.failure ?? error;
    if (failure !== undefined) throw failure;
    return next.size;
  }

  /** The tail with `rest` (starting at byte `at` of the upload) added as a segment; merged when there are many. */
  private async addToTail(id: string, tail: Segment[], at: number, rest: Buffer): Promise<Segment[]> {
    if (tail.length < MAX_TAIL_SEGMENTS) {
      const key = this.layout.newSegment(id, at + tail.reduce((n, s) => n + s.size, 0));
      await this.bucket.put(key, rest);
      return [...tail, { key, size: rest.length }];
    }
    const merged = Buffer.concat([await this.readTail(tail), rest]);
    const key = this.layout.newSegment(id, at);
    await this.bucket.put(key, merged);
    return [{ key, size: merged.length }];
  }

  /**
   * The upload's multipart upload: the recorded one, or a new one on `data` — into which an upload
   * whose parts were completed into `data` (see `readUpload`) gets them copied back server-side.
   */
  private async openMultipart(id: string, state: UploadState): Promise<{ uploadId: string; etags: string[] }> {
    if (state.multipart) return state.multipart;
    const key = this.layout.data(id);
    const uploadId = await this.bucket.createMultipart(key);
    try {
      if (state.parts === 0) return { uploadId, etags: [] };
      const data = await this.bucket.head(key);
      if (!data || data.size < state.parts * state.partSize) throw new Error('the bytes of the upload are gone from the bucket');
      const ranges = Array.from({ length: state.parts }, (_, i) => ({ key, start: i * state.partSize, end: (i + 1) * state.partSize }));
      const etags = await mapLimit(ranges, COPY_CONCURRENCY, (range, i) => this.bucket.copyPart(key, uploadId, i + 1, range));
      return { uploadId, etags };
    } catch (err) {
      await this.bucket.abort(key, uploadId).catch(() => undefined);
      throw err;
    }
  }

  /** Writes the upload's bytes as the object `blobKey`, atomically. */
  private async assemble(id: string, state: UploadState, blobKey: string): Promise<void> {
    if (state.parts === 0) {
      // Smaller than a part: one object written straight to its place (no multipart upload was made).
      if (state.tail.length === 1) return this.bucket.copy(state.tail[0]!.key, blobKey);
      return this.bucket.put(blobKey, await this.readTail(state.tail));
    }
    const data = this.layout.data(id);
    await this.completeWhole(id, state);
    if (state.size <= this.settings.copyObjectLimit) return this.bucket.copy(data, blobKey);
    await this.copyInParts(data, state.size, blobKey);
  }

  /** Makes `data` hold the whole upload: its parts, then its tail as the last part; checks the size. */
  private async completeWhole(id: string, state: UploadState): Promise<void> {
    const key = this.layout.data(id);
    if (!state.multipart && (await this.bucket.head(key))?.size === state.size) return;
    try {
      const { uploadId, etags } = await this.openMultipart(id, state);
      const last = state.parts + 1;
      const all = [...etags];
      if (state.tail.length === 1) all.push(await this.bucket.copyPart(key, uploadId, last, { key: state.tail[0]!.key }));
      else if (state.tail.length > 1) all.push(await this.bucket.uploadPart(key, uploadId, last, await this.readTail(state.tail)));
      await this.bucket.complete(key, uploadId, all);
    } catch (err) {
      // Gone: completed by an earlier commit of this upload that stopped before removing it.
      if (!isNoSuchUpload(err)) throw err;
    }
    const done = await this.bucket.head(key);
    if (done?.size !== state.size) throw new Error(`the completed upload holds ${done?.size ?? 'no'} bytes instead of ${state.size}`);
  }

  /** Copies an object beyond CopyObject's limit: UploadPartCopy of its ranges, in parallel. */
  private async copyInParts(source: string, size: number, target: string): Promise<void> {
    const { copyPartSize, partSize } = this.settings;
    const step = Math.max(copyPartSize, Math.ceil(size / MAX_PARTS / partSize) * partSize);
    const ranges: KeyRange[] = [];
    for (let start = 0; start < size; start += step) ranges.push({ key: source, start, end: Math.min(start + step, size) });
    const uploadId = await this.bucket.createMultipart(target);
    try {
      const etags = await mapLimit(ranges, COPY_CONCURRENCY, (range, i) => this.bucket.copyPart(target, uploadId, i + 1, range));
      await this.bucket.complete(target, uploadId, etags);
    } catch (err) {
      await this.bucket.abort(target, uploadId).catch(() => undefined);
      throw err;
    }
  }

  /** Completes a multipart upload; one gone already (completed before) is no error. */
  private async completeQuietly(id: string, uploadId: string, etags: string[]): Promise<void> {
    try {
      await this.bucket.complete(this.layout.data(id), uploadId, etags);
    } catch (err) {
      if (!isNoSuchUpload(err)) throw err;
    }
  }

  /** Removes every object and multipart upload of the upload; its state goes last. */
  private async remove(id: string, uploadId: string | undefined): Promise<void> {
    const prefix = this.layout.upload(id);
    if (uploadId) await this.bucket.abort(this.layout.data(id), uploadId);
    // Multipart uploads an append created but did not get to record (a process that died). Only
    // those on this upload's key, whatever a server makes of the prefix.
    const data = this.layout.data(id);
    for (const orphan of await this.bucket.listMultipart(prefix)) {
      if (orphan.key === data && orphan.uploadId !== uploadId) await this.bucket.abort(data, orphan.uploadId);
    }
    const stateKey = this.layout.state(id);
    const keys = (await this.bucket.list(prefix)).filter((k) => k !== stateKey);
    await this.bucket.deleteMany([...keys, stateKey]);
  }

  /** The upload's bytes from `start`: the completed parts in `data`, then each tail segment. */
  private async *bytesOf(id: string, state: UploadState, start: number): AsyncGenerator<Buffer> {
    // Each piece: an object whose byte 0 is byte `at` of the upload, of which `size` bytes count.
    const pieces: { key: string; at: number; size: number }[] = [];
    let at = state.parts * state.partSize;
    if (at > 0) pieces.push({ key: this.layout.data(id), at: 0, size: at });
    for (const s of state.tail) {
      pieces.push({ key: s.key, at, size: s.size });
      at += s.size;
    }
    for (const piece of pieces) {
      if (start >= piece.at + piece.size) continue;
      const opened = await this.bucket.open(piece.key, { start: Math.max(start - piece.at, 0), end: piece.size });
      if (!opened) throw new Error('the bytes of the upload are gone from the bucket');
      for await (const chunk of opened.body) yield chunk as Buffer;
    }
  }

  private async readTail(tail: readonly Segment[]): Promise<Buffer> {
    const buffers = await mapLimit(tail, COPY_CONCURRENCY, async (s) => {
      const bytes = await this.bucket.get(s.key);
      if (bytes?.length !== s.size) throw new Error('a tail segment of the upload is missing or has the wrong size');
      return bytes;
    });
    return Buffer.concat(buffers);
  }

  private async readState(id: string): Promise<UploadState | undefined> {
    const text = await this.bucket.get(this.layout.state(id));
    if (text === undefined) return undefined;
    return parseState(text.toString('utf8'), (key) => this.layout.isSegmentOf(id, key));
  }

  private async requireState(id: string): Promise<UploadState> {
    const state = await this.readState(id);
    if (!state) throw new StorageError('not_found', 'upload not found');
    return state;
  }

  private async writeState(id: string, state: UploadState): Promise<void> {
    await this.bucket.put(this.layout.state(id), serializeState(state), 'application/json');
  }
}

/**
 * Maps `items` through `fn` with at most `limit` calls running; results in order. On a failure no
 * new call starts, and it rejects (with the first error) only once the running ones have settled.
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
  return results;
}
