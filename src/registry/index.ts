import type { BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import { BlobService } from './blobs.ts';
import { ListingService } from './listings.ts';
import { ManifestService } from './manifests.ts';
import { UploadService } from './uploads.ts';
import { UploadIds } from './upload-ids.ts';

/** The OCI registry's services over one blob store and one metadata database. */
export interface Registry {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
}

/** `uploadIdKey`: a secret shared by every replica, for self-verifying upload session ids. */
export function createRegistry(store: BlobStore, meta: Metadata, uploadIdKey: Buffer): Registry {
  return {
    blobs: new BlobService(store, meta),
    uploads: new UploadService(store, meta, new UploadIds(uploadIdKey)),
    manifests: new ManifestService(store, meta),
    listings: new ListingService(meta),
  };
}
