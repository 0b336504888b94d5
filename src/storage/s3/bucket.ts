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
import { mapLimit } from '../../domain/map-limit.ts';

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

/** An object as a listing shows it. */
export interface ListedObject {
  key: string;
  size: number;
  /** LastModified, ms since the epoch. */
  modifiedAt: number;
}

/** A multipart upload in progress as a listing shows it. */
export interface ListedMultipart {
  key: string;
  uploadId: string;
  /** When it was initiated, ms since the epoch. */
  initiatedAt: number;
}

/** Where the next page of a multipart listing starts. */
export interface MultipartMarkers {
  KeyMarker?: string;
  UploadIdMarker?: string;
}

/** S3's limit on keys per DeleteObjects request (and per listing page). */
const PAGE = 1000;

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

  /**
   * One page (up to `maxKeys`, at most 1,000) of the objects under `prefix`, in key order: the first
   * after `startAfter`, or continuing where `token` (a previous page's `next`) left off. `next` is
   * unset on the last page.
   */
  async listPage(prefix: string, from: { startAfter?: string; token?: string; maxKeys?: number }): Promise<{ objects: ListedObject[]; next?: string }> {
    const out = await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.name,
        Prefix: prefix,
        ...(from.token ? { ContinuationToken: from.token } : { StartAfter: from.startAfter }),
        MaxKeys: Math.min(from.maxKeys ?? PAGE, PAGE),
      }),
    );
    const objects: ListedObject[] = [];
    for (const o of out.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0, modifiedAt: o.LastModified?.getTime() ?? 0 });
    return { objects, next: out.IsTruncated ? out.NextContinuationToken : undefined };
  }

  /** Multipart uploads in progress on keys under `prefix` (all pages). */
  async listMultipart(prefix: string): Promise<{ key: string; uploadId: string }[]> {
    const found: ListedMultipart[] = [];
    let markers: MultipartMarkers | undefined = {};
    while (markers) {
      const page = await this.listMultipartPage(prefix, markers);
      found.push(...page.uploads);
      markers = page.next;
    }
    return found;
  }

  /**
   * One page of the multipart uploads in progress on keys under `prefix`, in key order, from
   * `markers` (S3 lists keys after `KeyMarker`); `next` is unset on the last page. Some servers
   * ignore the markers (moto answers everything in one page): callers filter what they were given.
   */
  async listMultipartPage(prefix: string, markers: MultipartMarkers): Promise<{ uploads: ListedMultipart[]; next?: MultipartMarkers }> {
    const out = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.name, Prefix: prefix, ...markers }));
    const uploads: ListedMultipart[] = [];
    for (const u of out.Uploads ?? []) {
      if (u.Key && u.UploadId) uploads.push({ key: u.Key, uploadId: u.UploadId, initiatedAt: u.Initiated?.getTime() ?? 0 });
    }
    const more = out.IsTruncated && (out.NextKeyMarker || out.NextUploadIdMarker);
    return { uploads, next: more ? { KeyMarker: out.NextKeyMarker, UploadIdMarker: out.NextUploadIdMarker } : undefined };
  }

  /**
   * Deletes keys, 1,000 per request (S3's limit), `concurrency` requests at a time; missing ones
   * are no error. S3 answers 200 with a list of the keys it could not delete: any there make this
   * reject once every request has run, with their number and the first one's code (never a key
   * or a message). A request that fails outright stops new ones and rejects with its error.
   */
  async deleteMany(keys: readonly string[], concurrency = 1): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += PAGE) batches.push(keys.slice(i, i + PAGE));
    let failed = 0;
    let code: string | undefined;
    await mapLimit(batches, concurrency, async (batch) => {
      const out = await this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      for (const e of out.Errors ?? []) {
        if (e.Code === 'NoSuchKey') continue;
        failed++;
        code ??= e.Code;
      }
    });
    if (failed > 0) throw new Error(`S3 could not delete ${failed} of ${keys.length} object(s): ${safeCode(code)}`);
  }

  private copySource(key: string): string {
    // Keys are built from validated digests, ids and prefix segments; encoded all the same.
    return `${this.name}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }
}

/** An S3 error code as shown in a message: a plain token, or nothing of what the server sent. */
function safeCode(code: string | undefined): string {
  return code && /^[A-Za-z0-9.]{1,64}$/.test(code) ? code : 'unknown error';
}
