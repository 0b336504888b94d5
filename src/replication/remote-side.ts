// Another registry as one end of a replication: the one outbound client (src/remote/client.ts)
// behind the ReplicationSide contract.
import { addAbortSignal, type Readable } from 'node:stream';
import type { RegistryClient } from '../remote/client.ts';
import { MEDIA_TYPES } from '../domain/media-types.ts';
import { RemoteError } from '../remote/types.ts';
import type { ManifestHead, ReferrerEntry, ReplicationSide } from './types.ts';

/**
 * The registry `client` talks to, named `name` in logs and task records (local = false). Errors are
 * the client's RemoteErrors; "not there" (a 404) becomes undefined or [] where the contract says so;
 * a registry without the referrers API has no referrers. An aborted `signal` rejects with its reason
 * between requests and destroys a blob stream being sent or read.
 */
export function remoteSide(client: RegistryClient, name: string): ReplicationSide {
  return {
    name,
    local: false,
    async repositories(signal) {
      signal?.throwIfAborted();
      return client.catalog();
    },
    async tags(repository, signal) {
      signal?.throwIfAborted();
      return orMissing(client.tags(repository), []);
    },
    async head(repository, reference, signal): Promise<ManifestHead | undefined> {
      signal?.throwIfAborted();
      return orMissing(client.headManifest(repository, reference), undefined);
    },
    async manifest(repository, reference, signal) {
      signal?.throwIfAborted();
      return client.getManifest(repository, reference);
    },
    async referrers(repository, digest, signal): Promise<ReferrerEntry[]> {
      signal?.throwIfAborted();
      const index = await orMissing(client.referrers(repository, digest), undefined);
      return index ? referrerEntries(index.body, `${name}: referrers of ${repository}@${digest}`) : [];
    },
    async blobSize(repository, digest, signal) {
      signal?.throwIfAborted();
      return client.blobExists(repository, digest);
    },
    async openBlob(repository, digest, offset, signal) {
      signal?.throwIfAborted();
      const blob = await client.getBlob(repository, digest, offset > 0 ? { start: offset } : undefined);
      const size = blob.totalSize;
      if (size === undefined || (offset > 0 && blob.status !== 206)) {
        blob.body.destroy();
        throw new RemoteError('protocol', `${name}: GET blob ${repository}@${digest}: the registry did not answer the byte range asked for`);
      }
      return { stream: signal ? addAbortSignal(signal, blob.body) : blob.body, size };
    },
    async mountBlob(repository, digest, from, signal) {
      signal?.throwIfAborted();
      return client.mountBlob(repository, digest, from);
    },
    async pushBlob(repository, digest, size, open, signal) {
      signal?.throwIfAborted();
      const opener = async (offset: number): Promise<Readable> => {
        signal?.throwIfAborted();
        const stream = await open(offset);
        return signal ? addAbortSignal(signal, stream) : stream;
      };
      return client.pushBlob(repository, digest, size, opener);
    },
    async putManifest(repository, reference, body, mediaType, signal) {
      signal?.throwIfAborted();
      await client.putManifest(repository, reference, body, mediaType);
    },
    async deleteManifest(repository, digest, signal) {
      signal?.throwIfAborted();
      await client.deleteManifest(repository, digest);
    },
  };
}

async function orMissing<T, F>(request: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof RemoteError && error.notFound) return fallback;
    throw error;
  }
}

/** The entries of a referrers index, each checked; anything malformed is a protocol error. */
export function referrerEntries(body: Buffer, op: string): ReferrerEntry[] {
  let index: unknown;
  try {
    index = JSON.parse(body.toString('utf8'));
  } catch {
    index = undefined;
  }
  const manifests = (index as { manifests?: unknown } | undefined)?.manifests;
  if (!Array.isArray(manifests)) throw new RemoteError('protocol', `${op}: the answer is not an image index`);
  const entries: ReferrerEntry[] = [];
  for (const m of manifests as unknown[]) {
    const { digest, mediaType, size, artifactType } = (m ?? {}) as Record<string, unknown>;
    if (typeof digest !== 'string' || !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest) || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new RemoteError('protocol', `${op}: an entry of the referrers index is not a valid descriptor`);
    }
    entries.push({ digest, mediaType: typeof mediaType === 'string' ? mediaType : MEDIA_TYPES.ociManifest, size, ...(typeof artifactType === 'string' ? { artifactType } : {}) });
  }
  return entries;
}
