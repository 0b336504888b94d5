import type { BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import { BlobService } from './blobs.ts';
import { ListingService } from './listings.ts';
import { ManifestService } from './manifests.ts';
import { UploadService } from './uploads.ts';

/** The OCI registry's services over one blob store and one metadata database. */
export interface Registry {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
}

export function createRegistry(store: BlobStore, meta: Metadata): Registry {
  return {
    blobs: new BlobService(store, meta),
    uploads: new UploadService(store, meta),
    manifests: new ManifestService(store, meta),
    listings: new ListingService(meta),
  };
}
