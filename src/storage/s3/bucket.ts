import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isNoSuchUpload, isNotFound } from './client.ts';

/** An object's size and ETag. */
export interface ObjectInfo {
  size: number;
  etag?: string;
}

/** A byte range of an object, `end` exclusive. */
export interface KeyRange {
  key: string;
  start: number;
  end: number;
}

/**
 * The S3 operations the store uses, on one bucket: plain calls with Buffer bodies (so the client
 * can retry each) and "not there" turned into `undefined` where that is an answer, not a failure.
 */
export class Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
  ) {}

  /** An object's size and ETag, or `undefined` when it does not exist. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }));
      return { size: out.ContentLength ?? 0, etag: out.ETag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A whole object in memory, or `undefined` when it does not exist. For small objects only. */
  async get(key: string): Promise<Buffer | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Opens an object (bytes `start` to `end`, exclusive, when given) as a stream. With `etag`, only
   * that version of it (S3 answers 412 otherwise). `undefined` when it does not exist.
   */
  async open(key: string, range?: { start: number; end?: number }, etag?: string): Promise<{ body: Readable; size: number; etag?: string } | undefined> {
    const header = range ? `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` : undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key, Range: header, IfMatch: etag }));
      return { body: out.Body as Readable, size: out.ContentLength ?? 0, etag: out.ETag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Writes a whole object (atomically: readers see the old one or all of the new one). */
  async put(key: string, body: Uint8Array | string, contentType = 'application/octet-stream'): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentType: contentType }));
  }

  /** Copies an object of up to 5 GiB server-side, atomically. */
  async copy(source: string, target: string): Promise<void> {
    await this.client.send(new CopyObjectCommand({ Bucket: this.name, Key: target, CopySource: this.copySource(source) }));
  }

  /** Starts a multipart upload on `key`; resolves to its upload id. */
  async createMultipart(key: string): Promise<string> {
    const out = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.name, Key: key, ContentType: 'application/octet-stream' }));
    if (!out.UploadId) throw new Error('S3 created a multipart upload without an id');
    return out.UploadId;
  }

  /** Uploads one part; resolves to its ETag. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const out = await this.client.send(new UploadPartCommand({ Bucket: this.name, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body }));
    if (!out.ETag) throw new Error('S3 acknowledged a part without an ETag');
    return out.ETag;
  }

  /** Copies a range of an object (or all of it) in as one part; resolves to its ETag. */
  async copyPart(key: string, uploadId: string, partNumber: number, source: KeyRange | { key: string }): Promise<string> {
    const range = 'start' in source ? `bytes=${source.start}-${source.end - 1}` : undefined;
    const out = await this.client.send(
      new UploadPartCopyCommand({ Bucket: this.name, Key: key, UploadId: uploadId, PartNumber: partNumber, CopySource: this.copySource(source.key), CopySourceRange: range }),
    );
    const etag = out.CopyPartResult?.ETag;
    if (!etag) throw new Error('S3 acknowledged a copied part without an ETag');
    return etag;
  }

  /** Completes a multipart upload with exactly these parts (numbered from 1). */
  async complete(key: string, uploadId: string, etags: readonly string[]): Promise<void> {
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.name,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  }

  /** Aborts a multipart upload; one already gone is no error. */
  async abort(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    } catch (err) {
      if (!isNoSuchUpload(err) && !isNotFound(err)) throw err;
    }
  }

  /** Every key under `prefix` (all pages). */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  /** Multipart uploads in progress on keys under `prefix` (all pages). */
  async listMultipart(prefix: string): Promise<{ key: string; uploadId: string }[]> {
    const found: { key: string; uploadId: string }[] = [];
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const out = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, ...markers }));
      for (const u of out.Uploads ?? []) if (u.Key && u.UploadId) found.push({ key: u.Key, uploadId: u.UploadId });
      if (!out.IsTruncated || (!out.NextKeyMarker && !out.NextUploadIdMarker)) return found;
      markers = { KeyMarker: out.NextKeyMarker, UploadIdMarker: out.NextUploadIdMarker };
    }
  }

  /** Deletes keys, 1,000 per request (S3's limit); missing ones are no error. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const out = await this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      const failed = out.Errors?.filter((e) => e.Code !== 'NoSuchKey') ?? [];
      if (failed.length > 0) throw new Error(`S3 could not delete ${failed.length} object(s): ${failed[0]!.Code ?? 'unknown error'}`);
    }
  }

  private copySource(key: string): string {
    // Keys are built from validated digests, ids and prefix segments; encoded all the same.
    return `${this.name}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
}
