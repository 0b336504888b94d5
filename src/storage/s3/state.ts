/** A tail segment: an object holding bytes after the last full part. */
export interface Segment {
  key: string;
  size: number;
}

/**
 * What an upload holds, kept as the JSON object `uploads/<id>/state` (see layout.ts) and rewritten
 * as the last step of every append: whatever an append wrote before its state was written is not
 * part of the upload (parts beyond `parts` are overwritten by the next append or aborted with the
 * multipart upload, unreferenced tail segments are deleted with the upload). Any replica continues
 * from it.
 *
 * It also names every object the upload made that is no longer part of it (`dropped`), so removing
 * the upload deletes exactly the named keys instead of listing its prefix: two requests fewer per
 * push. Only an append whose process died (or whose state write failed) leaves objects no state
 * names; those are found when an abandoned upload is removed with a sweep, else by the bucket's
 * lifecycle rules (see `BlobStore.deleteUpload`).
 */
export interface UploadState {
  /** Bytes in the upload: `parts × partSize` plus the tail's sizes. */
  size: number;
  /** Part size fixed when the upload was created, so a replica configured otherwise continues it. */
  partSize: number;
  /** Full parts: the upload's first `parts × partSize` bytes. */
  parts: number;
  /**
   * The multipart upload on `data` holding parts 1…`parts`, with `etags[i]` the ETag of part i+1
   * as S3 acknowledged it. Completing with these exact ETags means S3 refuses (InvalidPart) a part
   * that anything else overwrote since. Unset while `parts > 0`: the object `data` holds the
   * upload's first `parts × partSize` bytes (a completed multipart upload, see `readUpload`).
   */
  multipart?: { uploadId: string; etags: string[] };
  tail: Segment[];
  /**
   * Keys of tail segments that are no longer part of the upload (merged, cut into a part, or whose
   * write failed and may have happened anyway), deleted with it. Undefined in a state written by a
   * version that did not keep this list: removing such an upload lists its prefix.
   */
  dropped?: string[];
  /**
   * Set when an append may have left an object it could not name (a multipart upload whose
   * creation failed half-way): removing the upload lists its prefix. Stays set.
   */
  stray?: boolean;
}

/** The state of a fresh upload. */
export function emptyState(partSize: number): UploadState {
  return { size: 0, partSize, parts: 0, tail: [], dropped: [] };
}

export function tailSize(state: UploadState): number {
  return state.tail.reduce((n, s) => n + s.size, 0);
}

export function serializeState(state: UploadState): string {
  return JSON.stringify({ v: 1, ...state });
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses a state object read from the bucket. Throws when it is not one this version wrote, or its
 * numbers do not add up: an upload is never continued from a state it cannot trust.
 */
export function parseState(text: string, isSegmentKey: (key: string) => boolean): UploadState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('upload state is not valid JSON');
  }
  const r = raw as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || r.v !== 1) throw new Error('upload state has an unknown format');
  const { size, partSize, parts, multipart, tail, dropped, stray } = r;
  if (!isCount(size) || !isCount(partSize) || partSize === 0 || !isCount(parts) || !Array.isArray(tail)) throw new Error('upload state is malformed');
  const segments: Segment[] = tail.map((s: unknown) => {
    const seg = s as Record<string, unknown>;
    if (typeof seg !== 'object' || seg === null || typeof seg.key !== 'string' || !isSegmentKey(seg.key) || !isCount(seg.size)) {
      throw new Error('upload state has a malformed tail segment');
    }
    return { key: seg.key, size: seg.size };
  });
  const state: UploadState = { size, partSize, parts, tail: segments };
  if (dropped !== undefined) {
    // Keys this state makes Berth delete: only segments of this very upload, never another object.
    if (!Array.isArray(dropped) || !dropped.every((k) => typeof k === 'string' && isSegmentKey(k))) throw new Error('upload state has a malformed list of dropped segments');
    state.dropped = dropped as string[];
  }
  if (stray !== undefined) {
    if (typeof stray !== 'boolean') throw new Error('upload state is malformed');
    if (stray) state.stray = true;
  }
  if (multipart !== undefined) {
    const m = multipart as Record<string, unknown>;
    if (typeof m !== 'object' || m === null || typeof m.uploadId !== 'string' || !Array.isArray(m.etags) || !m.etags.every((e) => typeof e === 'string')) {
      throw new Error('upload state has a malformed multipart upload');
    }
    if (m.etags.length !== parts) throw new Error('upload state lists a different number of parts than it counts');
    state.multipart = { uploadId: m.uploadId, etags: m.etags as string[] };
  }
  // A tail of a part or more would have been cut into parts: its sizes cannot be trusted either.
  if (parts * partSize + tailSize(state) !== size || tailSize(state) >= partSize) throw new Error('upload state sizes do not add up');
  return state;
}
