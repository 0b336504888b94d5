import type { JobKind } from '../kind.ts';

/** What upload expiry needs from the composition root. */
export interface UploadExpiryServices {
  uploads: { expire(ttlSeconds: number): Promise<number> };
  /** `uploads.ttl`: sessions idle for longer are removed, seconds. */
  uploadTTL: number;
}

/**
 * Removes upload sessions idle for longer than `uploads.ttl`, with their bytes (a session a request
 * is using is kept). Hourly. Idempotent: a second run finds nothing left to remove.
 */
export const uploadExpiry: JobKind<UploadExpiryServices> = {
  kind: 'upload-expiry',
  schedule: '0 * * * *',
  async run(_job, ctx) {
    const expired = await ctx.services.uploads.expire(ctx.services.uploadTTL);
    await ctx.progress({ expired });
    if (expired > 0) await ctx.log('info', `removed ${expired} idle upload session(s)`);
  },
};
