import { RegistryError } from '../domain/errors.ts';
import { parseDigest } from '../domain/digest.ts';
import { MEDIA_TYPES } from '../domain/media-types.ts';
import type { Metadata } from '../metadata/index.ts';
import type { Referrer } from '../metadata/manifests.ts';

/** The largest page a client may ask for; larger `n` values are clamped and paginated with `Link`. */
export const MAX_PAGE = 10_000;

/** One page of a listing; `next` is the `last` value of the following page when there is one. */
export interface Page<T> {
  items: T[];
  next?: string;
  /** The page size used, for the `Link` header. */
  n: number;
}

/** Parses `n`; `PAGINATION_NUMBER_INVALID` unless it is a whole number. */
export function parsePageSize(value: string | null, fallback: number): number {
  if (value === null) return fallback;
  if (!/^\d{1,9}$/.test(value)) throw new RegistryError('PAGINATION_NUMBER_INVALID', 'n must be a non-negative whole number', { n: value.slice(0, 50) });
  return Math.min(Number(value), MAX_PAGE);
}

async function page<T extends string>(n: number, fetch: (limit: number) => Promise<T[]>): Promise<Page<T>> {
  if (n === 0) return { items: [], n };
  const rows = await fetch(n + 1);
  if (rows.length > n) return { items: rows.slice(0, n), next: rows[n - 1]!, n };
  return { items: rows, n };
}

/** Tags lists, the catalog and referrers. */
export class ListingService {
  constructor(private readonly meta: Metadata) {}

  /** A page of a repository's tags; `NAME_UNKNOWN` when the repository does not exist. */
  async tags(repository: string, n: number, last?: string): Promise<Page<string>> {
    const repoId = await this.meta.repositories.id(repository);
    if (repoId === undefined) throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name: repository });
    return page(n, (limit) => this.meta.manifests.tags(repoId, limit, last));
  }

  /** A page of repository names (those holding at least one manifest), only of `projectIds` when given. */
  async catalog(n: number, last?: string, projectIds?: readonly number[]): Promise<Page<string>> {
    return page(n, (limit) => this.meta.repositories.catalog(limit, last, projectIds));
  }

  /** The referrers index of a subject: always an index, empty when nothing refers to it. */
  async referrers(repository: string, digestParam: string, artifactType?: string): Promise<{ mediaType: string; schemaVersion: 2; manifests: Referrer[] }> {
    const digest = parseDigest(digestParam).value;
    const repoId = await this.meta.repositories.id(repository);
    const manifests = repoId === undefined ? [] : await this.meta.manifests.referrers(repoId, digest, artifactType);
    return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests };
  }
}
