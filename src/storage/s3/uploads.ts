import { Readable } from 'node:stream';
import { StorageError, type AppendOptions, type DeleteUploadOptions } from '../blob-store.ts';
import { cutParts } from './append.ts';
import type { Bucket, KeyRange } from './bucket.ts';
import { isNoSuchUpload } from './client.ts';
import { mapLimit } from '../../domain/map-limit.ts';
import type { Layout } from './layout.ts';
import { RecentStates } from './recent.ts';
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
/**
 * Dropped segments a state names before an append deletes them (one DeleteObjects): keeps the
 * state small on long uploads of many chunks, at one request per this many superseded segments.
 */
const MAX_DROPPED = 64;

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
  /** States `size` and `readUpload` just read, for the caller's next operation (see recent.ts). */
  private readonly recent = new RecentStates();

  constructor(
    private readonly bucket: Bucket,
    private readonly layout: Layout,
    private readonly settings: UploadSettings,
  ) {}

  /** Writes an empty upload's state (see `BlobStore.createUpload`). */
  async create(id: string): Promise<void> {
    await this.writeState(id, emptyState(this.settings.partSize));
  }

  /** Bytes the upload holds: as this process's running append has stored them so far, else as its state says (read afresh). */
  async size(id: string): Promise<number | undefined> {
    this.layout.upload(id);
    const live = this.live.get(id);
    if (live !== undefined) return live;
    const state = await this.readState(id);
    if (state) this.recent.keep(id, state);
    return state?.size;
  }

  /**
   * Cuts `source` into parts (the tail's bytes first), keeps what is left over as a tail segment,
   * then writes the state; see `BlobStore.appendUpload` for the contract.
   */
  async append(id: string, offset: number, source: Readable, options: AppendOptions = {}): Promise<number> {
    this.claim(id);
    try {
      const state = await this.currentState(id, offset);
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
      state = await this.currentState(id);
      if (state.parts > 0 && state.multipart) {
        await this.completeQuietly(id, state.multipart.uploadId, state.multipart.etags);
        state = { ...state, multipart: undefined };
        await this.writeState(id, state);
      }
      // Read back to rebuild a hash: the append or commit of the same request goes on from it.
      this.recent.keep(id, state);
    } finally {
      this.busy.delete(id);
    }
    return Readable.from(this.bytesOf(id, state, start), { objectMode: false });
  }

  /**
   * Makes the upload the object `blobKey` (an upload of full parts only unless that exists
   * already), then removes the upload's objects as its state names them.
   */
  async commit(id: string, blobKey: string, size?: number): Promise<void> {
    this.claim(id);
    try {
      const state = await this.currentState(id, size);
      if (size !== undefined && state.size !== size) throw new StorageError('offset_mismatch', `upload holds ${state.size} bytes, not ${size}`);
      // Less than a part is one server-side copy or put, which costs what looking first would
      // (and clients look before they push, so the blob is almost never there). Writing the same
      // verified bytes again is harmless. Full parts are looked for: completing and copying them
      // in vain would cost far more than a HEAD.
      const exists = state.parts > 0 && (await this.bucket.head(blobKey)) !== undefined;
      if (!exists) await this.assemble(id, state, blobKey);
      // Assembling completes the multipart upload when there are full parts; otherwise it is unused.
      await this.remove(id, state, exists || state.parts === 0 ? state.multipart?.uploadId : undefined, false);
    } finally {
      this.busy.delete(id);
    }
  }

  /** Removes the upload's objects and multipart uploads (see `BlobStore.deleteUpload`); a missing upload is a no-op. */
  async delete(id: string, options: DeleteUploadOptions = {}): Promise<void> {
    this.layout.upload(id);
    const state = this.recent.take(id) ?? (await this.readState(id).catch(() => undefined));
    await this.remove(id, state, state?.multipart?.uploadId, options.sweep ?? true);
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
    const dropped = await this.pruneDropped(state);
    // Once a new part holds them, the old tail's bytes are no longer the tail.
    let tail: Segment[] = n > 0 ? [] : state.tail;
    if (n > 0) dropped.push(...state.tail.map((s) => s.key));
    if (error === undefined && outcome.rest.length > 0) {
      try {
        tail = await this.addToTail(id, tail, (before + n) * partSize, outcome.rest, dropped);
      } catch (err) {
        error = err;
      }
    }
    const next: UploadState = { size: 0, partSize, parts: before + n, tail, dropped };
    next.size = next.parts * partSize + tailSize(next);
    if (opened) next.multipart = { uploadId: opened.uploadId, etags: [...opened.etags, ...etags.slice(0, n)] };
    else if (state.multipart) next.multipart = state.multipart;
    // A multipart upload that failed to open may exist all the same, under an id nobody learnt.
    if (state.stray || (multipart && !opened && !state.multipart)) next.stray = true;
    // The commit point: what is not in the state written here is not part of the upload.
    if (serializeState(next) !== serializeState(state)) await this.writeState(id, next);
    const failure = outcome.failure ?? error;
    if (failure !== undefined) throw failure;
    return next.size;
  }

  /**
   * The tail with `rest` (starting at byte `at` of the upload) added as a segment; merged when there
   * are many. Keys it no longer needs, or failed to write (the write may have happened anyway), go
   * to `dropped`.
   */
  private async addToTail(id: string, tail: Segment[], at: number, rest: Buffer, dropped: string[]): Promise<Segment[]> {
    const merge = tail.length >= MAX_TAIL_SEGMENTS;
    const key = this.layout.newSegment(id, merge ? at : at + tail.reduce((n, s) => n + s.size, 0));
    const bytes = merge ? Buffer.concat([await this.readTail(tail), rest]) : rest;
    try {
      await this.bucket.put(key, bytes);
    } catch (err) {
      dropped.push(key);
      throw err;
    }
    if (!merge) return [...tail, { key, size: rest.length }];
    dropped.push(...tail.map((s) => s.key));
    return [{ key, size: bytes.length }];
  }

  /**
   * The keys `state` drops, to carry into the next state: deleted first (one request) once there
   * are many of them. They are in no state's tail, so deleting them early is safe whatever happens
   * next; if the deletion fails they are kept for later.
   */
  private async pruneDropped(state: UploadState): Promise<string[]> {
    const dropped = state.dropped ?? [];
    if (dropped.length < MAX_DROPPED) return [...dropped];
    try {
      await this.bucket.deleteMany(dropped);
      return [];
    } catch {
      return [...dropped];
    }
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
    let opened: string | undefined;
    try {
      const { uploadId, etags } = await this.openMultipart(id, state);
      // One opened here is in no state: aborted if this commit fails, or nothing would remove it.
      if (!state.multipart) opened = uploadId;
      const last = state.parts + 1;
      const all = [...etags];
      if (state.tail.length === 1) all.push(await this.bucket.copyPart(key, uploadId, last, { key: state.tail[0]!.key }));
      else if (state.tail.length > 1) all.push(await this.bucket.uploadPart(key, uploadId, last, await this.readTail(state.tail)));
      await this.bucket.complete(key, uploadId, all);
    } catch (err) {
      // Gone: completed by an earlier commit of this upload that stopped before removing it.
      if (!isNoSuchUpload(err) || opened) {
        if (opened) await this.bucket.abort(key, opened).catch(() => undefined);
        throw err;
      }
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

  /**
   * Removes the upload's objects, aborting `uploadId` first; its state goes last. The objects are
   * those `state` names (its tail, dropped segments, and `data` once there are parts). With
   * `sweep`, or when the state cannot vouch for that list (none, written by an older version, or
   * `stray`), the upload's prefix and multipart uploads are listed too, for what an append left
   * without recording it (a process that died): two requests more.
   */
  private async remove(id: string, state: UploadState | undefined, uploadId: string | undefined, sweep: boolean): Promise<void> {
    const prefix = this.layout.upload(id);
    const data = this.layout.data(id);
    const stateKey = this.layout.state(id);
    if (uploadId) await this.bucket.abort(data, uploadId);
    const keys = new Set<string>();
    for (const s of state?.tail ?? []) keys.add(s.key);
    for (const key of state?.dropped ?? []) keys.add(key);
    if (state && state.parts > 0) keys.add(data);
    if (sweep || !state || state.dropped === undefined || state.stray) {
      // Only multipart uploads on this upload's key, whatever a server makes of the prefix.
      for (const orphan of await this.bucket.listMultipart(prefix)) {
        if (orphan.key === data && orphan.uploadId !== uploadId) await this.bucket.abort(data, orphan.uploadId);
      }
      for (const key of await this.bucket.list(prefix)) keys.add(key);
    }
    keys.delete(stateKey);
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

  /**
   * The upload's state: as just read for the caller when it holds the `size` bytes the caller
   * expects (see recent.ts), else read afresh.
   */
  private async currentState(id: string, size?: number): Promise<UploadState> {
    const kept = this.recent.take(id);
    const state = (kept && kept.size === size ? kept : undefined) ?? (await this.readState(id));
    if (!state) throw new StorageError('not_found', 'upload not found');
    return state;
  }

  private async writeState(id: string, state: UploadState): Promise<void> {
    await this.bucket.put(this.layout.state(id), serializeState(state), 'application/json');
  }
}
