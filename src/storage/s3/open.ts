import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../config/overrides.ts';
import { StorageError } from '../blob-store.ts';
import { createS3Client, httpStatus } from './client.ts';
import { S3BlobStore } from './s3-store.ts';

/**
 * Opens the S3 blob store of `settings`, after checking the bucket once: rejects with a
 * `ConfigError` naming the setting to fix (storage.s3.bucket, storage.s3.endpoint or the
 * credentials) when the bucket is missing, unreachable or refuses the credentials; the secret key
 * never appears in it.
 */
export async function openS3BlobStore(s3: NonNullable<Config['storage']['s3']>): Promise<S3BlobStore> {
  const settings = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: s3.forcePathStyle };
  // Few attempts for the check: a wrong endpoint must not keep Berth's start waiting for minutes.
  const probe = createS3Client({ ...settings, maxAttempts: 2 });
  try {
    await probeBucket(probe, s3.bucket, s3.prefix, s3.endpoint);
  } finally {
    probe.destroy();
  }
  const client = createS3Client({ ...settings, maxAttempts: s3.maxAttempts });
  return new S3BlobStore({ client, bucket: s3.bucket, prefix: s3.prefix, partSize: s3.partSize });
}

/** Lists one key under the prefix: needs the bucket, the endpoint and the credentials to work. */
async function probeBucket(client: S3Client, bucket: string, prefix: string, endpoint: string | undefined): Promise<void> {
  const where = `bucket ${bucket} at ${endpoint ? safeEndpoint(endpoint) : 'AWS'}`;
  try {
    await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }));
  } catch (caught) {
    // Unreachable or failing endpoints arrive wrapped (see createS3Client): judge the SDK's error.
    const err = caught instanceof StorageError && caught.cause !== undefined ? caught.cause : caught;
    const name = (err as Error).name;
    const code = (err as NodeJS.ErrnoException).code;
    const status = httpStatus(err);
    if (name === 'NoSuchBucket') throw new ConfigError(`storage.s3.bucket: there is no ${where}; create it or name an existing one`);
    if (name === 'CredentialsProviderError') {
      throw new ConfigError(`storage.s3.accessKeyId and storage.s3.secretAccessKey: not set, and the AWS SDK's default chain (environment, profile, instance role) found no credentials for ${where}`);
    }
    if (status === 403 || ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'].includes(name)) {
      throw new ConfigError(`storage.s3.accessKeyId and storage.s3.secretAccessKey: ${where} refused them (${name}); check the key pair and that it may list, read and write under the prefix`);
    }
    if (status === 301 || name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed') {
      throw new ConfigError(`storage.s3.region: ${where} is in another region (${name})`);
    }
    if (status === undefined) {
      throw new ConfigError(`storage.s3.endpoint: cannot reach ${where} (${code ?? name}); check the URL, and forcePathStyle for servers other than AWS`);
    }
    throw new ConfigError(`storage.s3: ${where} answered ${status} (${name}) to a listing of the prefix`);
  }
}

/** The endpoint as shown in messages: without any user or password written into it. */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return 'the configured endpoint';
  }
}
