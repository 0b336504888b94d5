import type { UploadState } from './state.ts';

/** How long a kept state may stand in for reading it again. */
const RECENT_MS = 5_000;
/** Entries kept before stale ones are pruned (sizes asked for with no operation following). */
const PRUNE_AT = 1_000;

/**
 * Upload states this process has just read for a caller, each taken (once) by the operation the
 * caller makes next instead of a second GET of the state: the registry asks an upload's size, then
 * appends at that offset or commits that many bytes, in the same request.
 *
 * A kept state is used only when it holds exactly the bytes the operation expects (the offset of an
 * append, the verified size of a commit), so a caller that learnt a newer size elsewhere reads the
 * state afresh. What remains is a caller whose size came from this very read while another process
 * changed the upload (the registry's lease rules that out unless a request stalls past it): acting
 * on that state cannot make a wrong blob — it names immutable segments and parts by ETag, so a
 * commit writes exactly the bytes whose size the caller verified — and an append on it drops the
 * other process's bytes from the upload, which that process's next request then sees as a size
 * mismatch, exactly as when the two appends overlap without any of this.
 */
export class RecentStates {
  private readonly entries = new Map<string, { state: UploadState; at: number }>();

  /** Keeps `state` as upload `id`'s, replacing any kept before. */
  keep(id: string, state: UploadState): void {
    const now = Date.now();
    if (this.entries.size >= PRUNE_AT) for (const [key, entry] of this.entries) if (now - entry.at > RECENT_MS) this.entries.delete(key);
    this.entries.set(id, { state, at: now });
  }

  /** Takes upload `id`'s kept state if it is recent; nothing stays kept for `id` either way. */
  take(id: string): UploadState | undefined {
    const entry = this.entries.get(id);
    this.entries.delete(id);
    return entry && Date.now() - entry.at <= RECENT_MS ? entry.state : undefined;
  }
}
