import type { BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import { BlobService } from './blobs.ts';
import { ListingService } from './listings.ts';
import { ManifestService } from './manifests.ts';
import { UploadService, type UploadServiceOptions } from './uploads.ts';
import { UploadIds } from './upload-ids.ts';
import { QuotaService } from './quota.ts';
import { AuditService } from './audit.ts';

/** The OCI registry's services over one blob store and one metadata database. */
export interface Registry {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
  quota: QuotaService;
  audit: AuditService;
}

/**
 * `uploadIdKey`: a secret shared by every replica, for self-verifying upload session ids.
 * `options.uploads`: how upload sessions are kept between requests (resumable hashes for replicas
 * sharing a database; see UploadServiceOptions).
 */
export function createRegistry(store: BlobStore, meta: Metadata, uploadIdKey: Buffer, options: { auditPulls: boolean; uploads?: UploadServiceOptions } = { auditPulls: false }): Registry {
  const quota = new QuotaService(meta);
  return {
    blobs: new BlobService(store, meta, quota),
    uploads: new UploadService(store, meta, new UploadIds(uploadIdKey), quota, options.uploads),
    manifests: new ManifestService(store, meta, quota),
    listings: new ListingService(meta),
    quota,
    audit: new AuditService(meta, options.auditPulls),
  };
}
