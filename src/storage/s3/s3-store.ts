import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  StorageError,
  type AppendOptions,
  type BlobStore,
  type BlobStream,
  type ByteRange,
  type DeleteUploadOptions,
  type StoredBlob,
  type StoredUpload,
} from '../blob-store.ts';
import { S3BlobStream } from './blob-stream.ts';
import { Bucket } from './bucket.ts';
import { Layout } from './layout.ts';
import { listBlobs, listUploads } from './listing.ts';
import { S3Uploads } from './uploads.ts';

/** Where the store keeps its objects and how it cuts uploads; only `client` and `bucket` are required. */
export interface S3StoreOptions {
  /** The store owns it: `close()` destroys it. */
  client: S3Client;
  bucket: string;
  /** Key prefix: empty, or path segments each ending in `/` (default empty). */
  prefix?: string;
  /**
   * Bytes of every multipart part but the last (default 16 MiB). S3 wants at least 5 MiB and allows
   * 10,000 parts, so this also caps an upload at 10,000 × partSize (156 GiB at the default). Each
   * upload keeps the part size it was created with.
   */
  partSize?: number;
  /** Parts of one append sent at once (default 3): memory per running append is about one more part than this. */
  partConcurrency?: number;
  /** Largest object committed with one CopyObject (default 5 GiB, S3's limit); larger ones are copied in parts. */
  copyObjectLimit?: number;
  /** Size of the parts of such a copy (default 512 MiB, rounded up to a multiple of `partSize`). */
  copyPartSize?: number;
  /** Attempts to read a blob whose response body breaks, the first included (default 5). */
  readAttempts?: number;
}

const MIB = 1024 * 1024;
/**
 * DeleteObjects requests (1,000 keys each) running at once for `deleteBlobs`: a few in flight
 * reach S3's write rate per key prefix (3,500 a second); more would only be throttled (SlowDown).
 */
const DELETE_CONCURRENCY = 4;
/** What S3 allows a pre-signed URL at most: 7 days. */
const MAX_URL_SECONDS = 7 * 24 * 3600;

/**
 * Blob store on an S3-compatible bucket; the layout is drawn in `layout.ts`. Holds no state of its
 * own between requests: uploads keep theirs in the bucket, so any number of processes share it.
 */
export class S3BlobStore implements BlobStore {
  readonly writesAreRequests = true;
  private readonly client: S3Client;
  private readonly bucket: Bucket;
  private readonly layout: Layout;
  private readonly uploads: S3Uploads;
  private readonly readAttempts: number;

  constructor(options: S3StoreOptions) {
    this.client = options.client;
    this.bucket = new Bucket(options.client, options.bucket);
    this.layout = new Layout(options.prefix ?? '');
    const partSize = options.partSize ?? 16 * MIB;
    const copyPartSize = Math.ceil((options.copyPartSize ?? 512 * MIB) / partSize) * partSize;
    this.uploads = new S3Uploads(this.bucket, this.layout, {
      partSize,
      partConcurrency: options.partConcurrency ?? 3,
      copyObjectLimit: options.copyObjectLimit ?? 5 * 1024 * MIB,
      copyPartSize,
    });
    this.readAttempts = options.readAttempts ?? 5;
  }

  async stat(digest: string): Promise<number | undefined> {
    return (await this.bucket.head(this.layout.blob(digest)))?.size;
  }

  async read(digest: string, range?: ByteRange): Promise<BlobStream> {
    const key = this.layout.blob(digest);
    const start = range?.start ?? 0;
    // Opened here so a missing blob is an error of this call, not of the stream.
    const opened = await this.bucket.open(key, range ? { start, end: range.end + 1 } : undefined);
    if (!opened) throw new StorageError('not_found', `blob ${digest} not found`);
    // What S3 answered, not what was asked: a range past the end is cut short there.
    const end = start + opened.size;
    const reopen = async (from: number): Promise<Readable> => {
      const again = await this.bucket.open(key, { start: from, end }, opened.etag);
      if (!again) throw new Error(`blob ${digest} disappeared while it was read`);
      return again.body;
    };
    return new S3BlobStream(opened.body, start, end, reopen, this.readAttempts);
  }

  async readAll(digest: string): Promise<Buffer> {
    const bytes = await this.bucket.get(this.layout.blob(digest));
    if (!bytes) throw new StorageError('not_found', `blob ${digest} not found`);
    return bytes;
  }

  /**
   * One PutObject, without looking first: rewriting the same verified bytes is harmless (readers
   * see the old or the new object, which are equal), and a look would cost a request per manifest.
   */
  async putSmall(digest: string, data: Uint8Array): Promise<void> {
    await this.bucket.put(this.layout.blob(digest), data);
  }

  async delete(digest: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket.name, Key: this.layout.blob(digest) }));
  }

  /** DeleteObjects in Quiet mode, several requests at once; every digest is checked first. */
  async deleteBlobs(digests: readonly string[]): Promise<void> {
    const keys = digests.map((digest) => this.layout.blob(digest));
    await this.bucket.deleteMany(keys, DELETE_CONCURRENCY);
  }

  /** ListObjectsV2 under `blobs/`; see listing.ts. */
  listBlobs(after: string | undefined, limit: number): Promise<StoredBlob[]> {
    return listBlobs(this.bucket, this.layout, after, limit);
  }

  /** Upload folders and multipart uploads under `uploads/`; see listing.ts. */
  listUploads(after: string | undefined, limit: number): Promise<StoredUpload[]> {
    return listUploads(this.bucket, this.layout, after, limit);
  }

  createUpload(id: string): Promise<void> {
    return this.uploads.create(id);
  }

  appendUpload(id: string, offset: number, data: Readable, options?: AppendOptions): Promise<number> {
    return this.uploads.append(id, offset, data, options);
  }

  uploadSize(id: string): Promise<number | undefined> {
    return this.uploads.size(id);
  }

  readUpload(id: string, start?: number): Promise<Readable> {
    return this.uploads.readUpload(id, start);
  }

  /**
   * S3 completes and copies server-side (layout.ts); a blob of full parts already there is kept and
   * the upload dropped (a smaller one is copied over it: looking would cost as much). Durable when
   * it resolves: S3 acknowledges writes once stored redundantly.
   */
  async commitUpload(id: string, digest: string, size?: number): Promise<void> {
    await this.uploads.commit(id, this.layout.blob(digest), size);
  }

  deleteUpload(id: string, options?: DeleteUploadOptions): Promise<void> {
    return this.uploads.delete(id, options);
  }

  async signedURL(digest: string, expiresInSeconds: number): Promise<string> {
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_URL_SECONDS) {
      throw new StorageError('invalid', `a pre-signed URL lasts 1 to ${MAX_URL_SECONDS} seconds`);
    }
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket.name, Key: this.layout.blob(digest) }), { expiresIn: expiresInSeconds });
  }

  /** Releases the client's sockets; for shutdown. */
  async close(): Promise<void> {
    this.client.destroy();
  }
}
