import type { Readable } from 'node:stream';
import { StorageError, type AppendOptions } from '../blob-store.ts';

/** How {@link cutParts} turns a stream into parts. */
export interface PartPlan {
  /** New bytes that complete the first part (less than a part when the upload has a tail). */
  firstPart: number;
  partSize: number;
  /** Parts being sent at once; the source is paused while that many are and the next one is full. */
  concurrency: number;
  /** New bytes the upload can still take; more fails the append (after storing what fits). */
  room: number;
  /** Stores the `index`-th new part (0-based) with these new bytes; rejects when it could not. */
  sendPart(index: number, bytes: Buffer): Promise<void>;
}

/** What came of a stream (see {@link cutParts}). */
export interface PartsOutcome {
  /** Leading new parts that were stored, in order (a part after a failed one does not count). */
  partsStored: number;
  /** Bytes after the last full part, to be kept as a tail segment; meaningful only without `partError`. */
  rest: Buffer;
  /** Why a part could not be stored (the first such failure). */
  partError?: unknown;
  /** Why the source stopped early: its own error, an abort, `onChunk` throwing, or too many bytes. */
  failure?: unknown;
}

/**
 * Reads `source` to its end (or until it fails, `signal` aborts or a part fails), handing each chunk
 * to `onChunk` as it arrives, and cuts the bytes into parts sent with `plan.sendPart`: the first of
 * `plan.firstPart` bytes, the others of `plan.partSize`; at most `plan.concurrency` are sent at once
 * and the source is paused while the next part waits for a slot, so memory stays below about
 * (concurrency + 1) parts. Resolves when no part is in flight any more, never rejects: the caller
 * records what was stored, then fails with the outcome's error. The source is left paused, never
 * destroyed (a failed request's body is the caller's to answer).
 */
export function cutParts(source: Readable, options: AppendOptions, plan: PartPlan): Promise<PartsOutcome> {
  const { signal, onChunk } = options;
  return new Promise<PartsOutcome>((resolve) => {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let received = 0;
    let next = 0; // index of the next part to cut
    let inFlight = 0;
    const stored: boolean[] = [];
    let partError: unknown;
    let failure: unknown;
    let done = false; // nothing more is taken from the source
    let paused = false;
    let settled = false;

    const capacity = () => (next === 0 ? plan.firstPart : plan.partSize);
    const detach = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const settle = () => {
      if (settled || inFlight > 0) return;
      if (partError === undefined && (!done || pendingBytes >= capacity())) return;
      settled = true;
      detach();
      // Left unconsumed for the caller's response; a later failure of it must not go unhandled.
      source.on('error', () => undefined);
      if (!source.readableEnded) source.pause();
      let partsStored = 0;
      while (stored[partsStored]) partsStored++;
      resolve({ partsStored, rest: Buffer.concat(pending, pendingBytes), partError, failure });
    };
    const stop = (reason: unknown) => {
      if (done) return;
      done = true;
      failure = reason;
      source.off('data', onData);
      source.pause();
      pump();
    };
    /** Sends every full part a slot is free for; pauses or resumes the source accordingly. */
    const pump = () => {
      while (partError === undefined && inFlight < plan.concurrency && pendingBytes >= capacity()) send(take(capacity()));
      if (partError !== undefined) return settle();
      const full = pendingBytes >= capacity();
      if (full && !paused && !done) {
        paused = true;
        source.pause();
      } else if (!full && paused && !done) {
        paused = false;
        source.resume();
      }
      settle();
    };
    const take = (n: number): Buffer => {
      const parts: Buffer[] = [];
      let left = n;
      while (left > 0) {
        const head = pending[0]!;
        if (head.length <= left) {
          parts.push(head);
          pending.shift();
          left -= head.length;
        } else {
          parts.push(head.subarray(0, left));
          pending[0] = head.subarray(left);
          left = 0;
        }
      }
      pendingBytes -= n;
      // One contiguous copy per part: retried requests resend it, checksums read it once.
      return Buffer.concat(parts, n);
    };
    const send = (bytes: Buffer) => {
      const index = next++;
      inFlight++;
      plan.sendPart(index, bytes).then(
        () => {
          stored[index] = true;
        },
        (err: unknown) => {
          partError ??= err;
          if (!done) {
            done = true;
            source.off('data', onData);
            source.pause();
          }
        },
      ).finally(() => {
        inFlight--;
        pump();
      });
    };
    const onData = (chunk: Uint8Array | string) => {
      if (done) return;
      let buffer = asBuffer(chunk);
      try {
        onChunk?.(buffer);
      } catch (err) {
        return stop(err);
      }
      if (received + buffer.length > plan.room) {
        buffer = buffer.subarray(0, Math.max(plan.room - received, 0));
        pending.push(buffer);
        pendingBytes += buffer.length;
        received += buffer.length;
        return stop(new StorageError('invalid', 'the upload is larger than S3 can hold with the part size it was created with (10,000 parts)'));
      }
      received += buffer.length;
      pending.push(buffer);
      pendingBytes += buffer.length;
      if (pendingBytes >= capacity()) pump();
    };
    const onEnd = () => {
      if (done) return;
      done = true;
      pump();
    };
    const onError = (err: Error) => stop(err);
    // 'close' follows 'end' on every request: build the error only when it counts.
    const onClose = () => void (done || stop(prematureClose()));
    const onAbort = () => stop(signal?.reason ?? new Error('append aborted'));

    if (signal?.aborted) {
      failure = signal.reason ?? new Error('append aborted');
      done = true;
      return settle();
    }
    // A source that failed before we got to it (a client gone while the request waited its turn).
    if (source.destroyed && !source.readableEnded) {
      failure = source.errored ?? prematureClose();
      done = true;
      return settle();
    }
    if (source.readableEnded) {
      done = true;
      return settle();
    }
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    source.on('close', onClose);
    signal?.addEventListener('abort', onAbort);
    if (source.isPaused()) source.resume();
  });
}

/** A chunk as a Buffer without copying it (object-mode sources may yield plain Uint8Arrays). */
function asBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function prematureClose(): Error {
  return Object.assign(new Error('the stream closed before it ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
