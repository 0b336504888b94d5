// The job kinds Berth runs, and what they need from the composition root.
import type { JobKind } from '../kind.ts';
import { gcKind, type GcServices } from './gc.ts';
import { housekeeping, type HousekeepingServices } from './housekeeping.ts';
import { uploadExpiry, type UploadExpiryServices } from './upload-expiry.ts';
import { verifyBlobs, type VerifyBlobsServices } from './verify-blobs.ts';
import { retention, type RetentionServices } from './retention.ts';
import { replication, type ReplicationServices } from './replication.ts';
import { webhookKind, type WebhookServices } from './webhook.ts';

/** Everything the built-in kinds need; the composition root builds it once. */
export type JobServices = UploadExpiryServices & HousekeepingServices & VerifyBlobsServices & RetentionServices & GcServices & WebhookServices & ReplicationServices;

/** Every built-in kind; each with a `schedule` gets a schedule of its name on first start. */
export const builtinKinds: readonly JobKind<JobServices>[] = [uploadExpiry, housekeeping, verifyBlobs, retention, gcKind, webhookKind, replication];
