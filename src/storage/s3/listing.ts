import type { StoredBlob, StoredUpload } from '../blob-store.ts';
import type { Bucket, MultipartMarkers } from './bucket.ts';
import type { Layout } from './layout.ts';

/** Keys asked for per listing page: S3's maximum, so a page of blobs is one request. */
const PAGE = 1000;

/** How a listing is read; tests shrink the pages to cross their boundaries with few objects. */
export interface ListingOptions {
  /** Keys per ListObjectsV2 request (default and most 1,000). */
  pageSize?: number;
}

/**
 * See `BlobStore.listBlobs`: ListObjectsV2 under `blobs/` from the key of `after`, keys that are
 * not blobs of this layout skipped — further pages are read until `limit` blobs are found or the
 * listing ends, so a short answer always means the end.
 */
export async function listBlobs(bucket: Bucket, layout: Layout, after: string | undefined, limit: number, options: ListingOptions = {}): Promise<StoredBlob[]> {
  const found: StoredBlob[] = [];
  if (limit <= 0) return found;
  const startAfter = layout.blobsAfter(after);
  const pageSize = Math.min(options.pageSize ?? PAGE, PAGE);
  let token: string | undefined;
  do {
    const page = await bucket.listPage(layout.blobs, { startAfter, token, maxKeys: Math.min(limit, pageSize) });
    for (const o of page.objects) {
      const digest = layout.digestOf(o.key);
      // The start key may lie before `after` (see Layout.blobsAfter): what lies between is dropped here.
      if (digest === undefined || (after !== undefined && digest <= after)) continue;
      found.push({ digest, size: o.size, modifiedAt: o.modifiedAt });
      if (found.length === limit) return found;
    }
    token = page.next;
  } while (token);
  return found;
}

/** Ids in listing order: that of `id + "/"`, the order of their folders' keys. */
const byFolder = (a: string, b: string) => (`${a}/` < `${b}/` ? -1 : `${a}/` > `${b}/` ? 1 : 0);

/**
 * See `BlobStore.listUploads`. The ids are the folders under `uploads/` that hold an object or a
 * multipart upload on their `data` key (the only one `deleteUpload` aborts).
 *
 * Objects are listed without a delimiter: a delimited listing names the folders but not when they
 * were written, which would cost a request per id; an upload holds few objects (its state, `data`
 * and under a hundred tail segments), so its whole folder is a small part of a page. The listing
 * stops at the first key past the `limit`-th id. Multipart uploads are listed up to that id too
 * (all of them when the objects ran out first, to at most `limit` ids of their own); an id's time is
 * the newest of its objects' LastModified and its multipart uploads' Initiated.
 */
export async function listUploads(bucket: Bucket, layout: Layout, after: string | undefined, limit: number, options: ListingOptions = {}): Promise<StoredUpload[]> {
  if (limit <= 0) return [];
  const pageSize = Math.min(options.pageSize ?? PAGE, PAGE);
  const wanted = (id: string) => after === undefined || byFolder(id, after) > 0;
  const startAfter = layout.uploadsAfter(after);

  const times = new Map<string, number>();
  const keep = (id: string, at: number) => times.set(id, Math.max(times.get(id) ?? 0, at));

  // Objects, in key order: one id's keys are contiguous (they all start with its folder).
  const fromObjects = new Set<string>();
  let token: string | undefined;
  listing: do {
    const page = await bucket.listPage(layout.uploads, { startAfter, token, maxKeys: pageSize });
    for (const o of page.objects) {
      const id = layout.uploadIdOf(o.key);
      if (id === undefined || !wanted(id)) continue;
      if (!fromObjects.has(id) && fromObjects.size === limit) break listing;
      fromObjects.add(id);
      keep(id, o.modifiedAt);
    }
    token = page.next;
  } while (token);
  // With `limit` ids from objects, no id after the last of them is among the first `limit`.
  const last = fromObjects.size === limit ? [...fromObjects].at(-1) : undefined;

  // Multipart uploads up to `last`. Filtered here whatever the server does with the marker.
  const fromMultipart = new Set<string>();
  let markers: MultipartMarkers | undefined = { KeyMarker: startAfter };
  while (markers) {
    const page = await bucket.listMultipartPage(layout.uploads, markers);
    let beyond = false;
    for (const u of page.uploads) {
      const id = layout.uploadIdOf(u.key);
      if (id === undefined || !wanted(id) || u.key !== layout.data(id)) continue;
      if (last !== undefined && byFolder(id, last) > 0) {
        beyond = true;
        continue;
      }
      fromMultipart.add(id);
      keep(id, u.initiatedAt);
    }
    // Keys come in order: past the bound, or past `limit` ids of their own, later pages add nothing.
    markers = beyond || fromMultipart.size > limit ? undefined : page.next;
  }

  return [...new Set([...fromObjects, ...fromMultipart])]
    .sort(byFolder)
    .slice(0, limit)
    .map((id) => ({ id, modifiedAt: times.get(id)! }));
}
