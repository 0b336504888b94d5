import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { BlobStore } from './blob-store.ts';
import { FilesystemBlobStore } from './filesystem/filesystem-store.ts';

/** A blob store and how to release it. */
export type OpenBlobStore = BlobStore & { close(): Promise<void> };

/**
 * Opens the blob store the configuration names: S3 when `storage.s3` is set, else the filesystem
 * under `<dataDir>/storage`. An S3 bucket is checked once first (see `openS3BlobStore`): a
 * `ConfigError` names the setting to fix.
 */
export async function openBlobStore(config: Config): Promise<OpenBlobStore> {
  const s3 = config.storage.s3;
  if (!s3) {
    const store = new FilesystemBlobStore(join(config.dataDir, 'storage'));
    await store.init();
    return store;
  }
  // Loaded only when configured: the AWS SDK is large, and the embedded default never needs it.
  const { openS3BlobStore } = await import('./s3/open.ts');
  return openS3BlobStore(s3);
}

/** How long a redirect to a pre-signed URL stays valid: a client follows it at once, or retries the pull. */
const REDIRECT_SECONDS = 15 * 60;

/**
 * The pre-signed URL for each blob GET when `storage.redirect` is on and the store can sign URLs,
 * else `undefined` (blobs are then served through Berth).
 */
export function blobRedirector(config: Config, store: BlobStore): ((digest: string) => Promise<string>) | undefined {
  if (!config.storage.redirect || !store.signedURL) return undefined;
  return (digest) => store.signedURL!(digest, REDIRECT_SECONDS);
}
