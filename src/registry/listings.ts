import { RegistryError } from '../domain/errors.ts';
import { parseDigest } from '../domain/digest.ts';
import { MEDIA_TYPES } from '../domain/media-types.ts';
import type { Metadata } from '../metadata/index.ts';
import type { Referrer } from '../metadata/artifacts.ts';

/** The largest page a client may ask for; larger `n` values are clamped and paginated with `Link`. */
export const MAX_PAGE = 10_000;

/** One page of a listing; `next` is the `last` value of the following page when there is one. */
export interface Page<T> {
  items: T[];
  next?: string;
  /** The page size used, for the `Link` header. */
  n: number;
}

/** A page of a tags list as its response body, `{"name":…,"tags":[…]}`, already serialised. */
export interface TagsPage {
  body: Buffer;
  /** The `last` value of the following page, when there is one. */
  next?: string;
  /** The page size used, for the `Link` header. */
  n: number;
}

/** Parses `n`; `PAGINATION_NUMBER_INVALID` unless it is a whole number. */
export function parsePageSize(value: string | null, fallback: number): number {
  if (value === null) return fallback;
  if (!/^\d{1,9}$/.test(value)) throw new RegistryError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative whole number', { field: 'n', expected: 'a whole number of at most 9 digits' });
  return Math.min(Number(value), MAX_PAGE);
}

async function page<T extends string>(n: number, fetch: (limit: number) => Promise<T[]>): Promise<Page<T>> {
  if (n === 0) return { items: [], n };
  const rows = await fetch(n + 1);
  if (rows.length > n) return { items: rows.slice(0, n), next: rows[n - 1]!, n };
  return { items: rows, n };
}

/**
 * How long a cached tags list is kept. It is never stale: every request compares the repository's
 * creation time and tags version, read from the database, with those the list was built at (see
 * `ManifestStore.tagsState`), on every replica. The TTL only bounds what a writer that bypasses
 * ManifestStore could leave unseen.
 */
const TAGS_TTL_MS = 2_000;
/** Repositories with more tags than this are listed from the database each time. */
const TAGS_CACHE_MAX_TAGS = 100_000;
/** Total (estimated) memory of the cached lists. */
const TAGS_CACHE_MAX_BYTES = 32 << 20;

interface TagList {
  repositoryId: number;
  createdAt: number;
  version: number;
  at: number;
  /** Sorted as the database sorts them: tags are ASCII, where byte and UTF-16 order agree. */
  names: string[];
  bytes: number;
  /** Serialised first pages by page size. */
  bodies: Map<number, Buffer>;
}

/** Tags lists, the catalog and referrers. */
export class ListingService {
  /** Tag lists by repository name, least recently used first. */
  private readonly tagLists = new Map<string, TagList>();
  private tagListBytes = 0;

  constructor(private readonly meta: Metadata) {}

  /** A page of a repository's tags; `NAME_UNKNOWN` when the repository does not exist. */
  async tags(repository: string, n: number, last?: string): Promise<TagsPage> {
    const found = await this.meta.repositories.lookup(repository, async (id) => {
      const state = await this.meta.manifests.tagsState(id);
      return state && { id, state };
    });
    if (found === undefined) {
      this.forgetTags(repository);
      throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name: repository });
    }
    const repoId = found.id;
    const list = await this.tagList(repository, repoId, found.state);
    if (!list) return serialised(repository, await page(n, (limit) => this.meta.manifests.tags(repoId, limit, last)));
    if (last !== undefined) return serialised(repository, slice(list.names, firstAfter(list.names, last), n));
    // The first page, as clients ask for it: its body is kept with the list.
    const next = n > 0 && list.names.length > n ? list.names[n - 1] : undefined;
    let body = list.bodies.get(n);
    if (!body) {
      body = serialised(repository, slice(list.names, 0, n)).body;
      if (list.bodies.size < 4 && this.tagLists.get(repository) === list) {
        list.bodies.set(n, body);
        list.bytes += body.length;
        this.tagListBytes += body.length;
        this.trimTagLists();
      }
    }
    return next === undefined ? { body, n } : { body, next, n };
  }

  /** A page of repository names (those holding at least one manifest), only of `projectIds` when given. */
  async catalog(n: number, last?: string, projectIds?: readonly number[]): Promise<Page<string>> {
    return page(n, (limit) => this.meta.repositories.catalog(limit, last, projectIds));
  }

  /** The referrers index of a subject: always an index, empty when nothing refers to it. */
  async referrers(repository: string, digestParam: string, artifactType?: string): Promise<{ mediaType: string; schemaVersion: 2; manifests: Referrer[] }> {
    const digest = parseDigest(digestParam).value;
    // An empty list is a miss: checked against the database when replicas share it (see `lookup`).
    const manifests = (await this.meta.repositories.lookup(repository, async (id) => {
      const found = await this.meta.artifacts.referrers(id, digest, artifactType);
      return found.length > 0 ? found : undefined;
    })) ?? [];
    return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests };
  }

  /**
   * Every tag of the repository, from the cache when it is current: same repository (id and
   * creation time) and tags version as `state` — read from the database by this request, before
   * the tags are — and younger than the TTL. Undefined for very long lists.
   */
  private async tagList(repository: string, repositoryId: number, state: { createdAt: number; version: number }): Promise<TagList | undefined> {
    const { createdAt, version } = state;
    const now = Date.now();
    const hit = this.tagLists.get(repository);
    if (hit && hit.repositoryId === repositoryId && hit.createdAt === createdAt && hit.version === version && now - hit.at < TAGS_TTL_MS) {
      this.tagLists.delete(repository);
      this.tagLists.set(repository, hit);
      return hit;
    }
    this.forgetTags(repository);
    const names = await this.meta.manifests.tags(repositoryId, TAGS_CACHE_MAX_TAGS + 1);
    if (names.length > TAGS_CACHE_MAX_TAGS) return undefined;
    let bytes = 64;
    for (const name of names) bytes += 2 * name.length + 40;
    const list: TagList = { repositoryId, createdAt, version, at: now, names, bytes, bodies: new Map() };
    this.tagLists.set(repository, list);
    this.tagListBytes += bytes;
    this.trimTagLists();
    return list;
  }

  private forgetTags(repository: string): void {
    const cached = this.tagLists.get(repository);
    if (!cached) return;
    this.tagLists.delete(repository);
    this.tagListBytes -= cached.bytes;
  }

  private trimTagLists(): void {
    for (const name of this.tagLists.keys()) {
      if (this.tagListBytes <= TAGS_CACHE_MAX_BYTES) break;
      this.forgetTags(name);
    }
  }
}

/** The page of `names` starting at `start`, `n` long, with `next` when more follow. */
function slice(names: string[], start: number, n: number): Page<string> {
  if (n === 0) return { items: [], n };
  const items = names.slice(start, start + n);
  return names.length - start > n ? { items, next: items[n - 1]!, n } : { items, n };
}

/** Index of the first name greater than `last` (what `WHERE name > last` selects). */
function firstAfter(names: string[], last: string): number {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (names[mid]! <= last) low = mid + 1;
    else high = mid;
  }
  return low;
}

function serialised(repository: string, page: Page<string>): TagsPage {
  const body = Buffer.from(JSON.stringify({ name: repository, tags: page.items }));
  return page.next === undefined ? { body, n: page.n } : { body, next: page.next, n: page.n };
}
