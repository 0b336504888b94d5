// Berth itself as one end of a replication: its registry services, never HTTP. Reads come from
// the metadata and straight from storage; writes go through the same services a push does, so
// quotas, immutability, events and the audit apply, recorded as the rule's actor.
import { Readable } from 'node:stream';
import { digestOf, parseDigest } from '../domain/digest.ts';
import { RegistryError } from '../domain/errors.ts';
import { projectOf } from '../domain/names.ts';
import type { Metadata } from '../metadata/index.ts';
import type { Registry } from '../registry/index.ts';
import { RemoteError } from '../remote/types.ts';
import type { ManifestBody, ManifestHead, ReferrerEntry, ReplicationSide } from './types.ts';

/** What the local end needs. */
export interface LocalSideDeps {
  registry: Registry;
  meta: Metadata;
  /** Who pushes and deletes, for events and the audit: `replication:<rule name>`. */
  actor: string;
}

const PAGE = 1000;
/** Blobs larger than this are written through a session, resumable when the source breaks. */
const RESUMABLE_FROM = 1024 * 1024;
const MAX_SOURCE_RESUMES = 5;
/** Failures of a source stream worth reopening it for: the network's, not the data's. */
const BROKEN_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);
/** Codes meaning "not there" for reads (the contract answers undefined or [] instead). */
const MISSING = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN']);

/**
 * Berth as a replication end (local = true, name `berth`). Errors are RegistryErrors (and storage
 * errors) as the registry services throw them. Writes into a repository whose project does not
 * exist, or is a proxy cache, are refused with a RegistryError naming the project (DENIED), before
 * anything is stored. `signal` is checked between steps and aborts a blob read or write in flight.
 * A blob over 1 MiB whose source stream breaks (a transient RemoteError, a reset) is reopened where
 * the stored bytes end, up to 5 times.
 */
export function localSide(deps: LocalSideDeps): ReplicationSide {
  const { registry, meta, actor } = deps;

  async function writable(repository: string): Promise<void> {
    const name = projectOf(repository);
    const project = await meta.projects.find(name);
    if (!project) throw new RegistryError('DENIED', `project ${name} does not exist at this Berth: create it before replicating into it`, { project: name, reason: 'no-project' });
    if (project.proxy_registry_id !== null) {
      throw new RegistryError('DENIED', `project ${name} is a proxy cache and cannot be replicated into: choose an ordinary project`, { project: name, reason: 'proxy-cache' });
    }
  }

  return {
    name: 'berth',
    local: true,
    async repositories(signal) {
      const names: string[] = [];
      const proxied = new Map<string, boolean>();
      for (let last: string | undefined; ; ) {
        signal?.throwIfAborted();
        const page = await meta.repositories.catalog(PAGE, last);
        for (const name of page) {
          const project = projectOf(name);
          if (!proxied.has(project)) proxied.set(project, ((await meta.projects.find(project))?.proxy_registry_id ?? null) !== null);
          if (!proxied.get(project)) names.push(name);
        }
        if (page.length < PAGE) return names;
        last = page.at(-1);
      }
    },
    async tags(repository, signal) {
      const id = await meta.repositories.currentId(repository);
      if (id === undefined) return [];
      const tags: string[] = [];
      for (let last: string | undefined; ; ) {
        signal?.throwIfAborted();
        const page = await meta.manifests.tags(id, PAGE, last);
        tags.push(...page);
        if (page.length < PAGE) return tags;
        last = page.at(-1);
      }
    },
    async head(repository, reference, signal): Promise<ManifestHead | undefined> {
      signal?.throwIfAborted();
      return orMissing(registry.manifests.stat(repository, reference), undefined);
    },
    async manifest(repository, reference, signal): Promise<ManifestBody> {
      signal?.throwIfAborted();
      const found = await registry.manifests.get(repository, reference, undefined, { pull: false });
      // Storage is trusted less than the records: bytes that no longer hash to their digest are not sent on.
      if (digestOf(found.body, parseDigest(found.digest).algorithm) !== found.digest) {
        throw new RegistryError('INTERNAL', `manifest ${repository}@${found.digest} does not match its digest in storage`, { digest: found.digest });
      }
      return { digest: found.digest, mediaType: found.mediaType, size: found.size, body: found.body };
    },
    async referrers(repository, digest, signal): Promise<ReferrerEntry[]> {
      signal?.throwIfAborted();
      const index = await registry.listings.referrers(repository, digest);
      return index.manifests.map((m) => ({ digest: m.digest, mediaType: m.mediaType, size: m.size, ...(m.artifactType ? { artifactType: m.artifactType } : {}) }));
    },
    async blobSize(repository, digest, signal) {
      signal?.throwIfAborted();
      return (await orMissing(registry.blobs.stat(repository, digest), undefined))?.size;
    },
    async openBlob(repository, digest, offset, signal) {
      signal?.throwIfAborted();
      const { size } = await registry.blobs.stat(repository, digest);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) throw new RegistryError('RANGE_INVALID', `offset ${offset} is outside blob ${repository}@${digest} of ${size} bytes`);
      if (offset === size) return { stream: Readable.from([]), size };
      const { stream } = await registry.blobs.open(repository, digest, offset > 0 ? { start: offset, end: size - 1 } : undefined);
      if (signal) {
        const abort = (): void => void stream.destroy(abortReason(signal));
        signal.addEventListener('abort', abort, { once: true });
        stream.once('close', () => signal.removeEventListener('abort', abort));
      }
      return { stream, size };
    },
    async mountBlob(repository, digest, from, signal) {
      signal?.throwIfAborted();
      await writable(repository);
      return (await registry.blobs.mount(repository, digest, from)) !== undefined;
    },
    async pushBlob(repository, digest, size, open, signal): Promise<number> {
      signal?.throwIfAborted();
      await writable(repository);
      if (size <= RESUMABLE_FROM) {
        await withAbort(await open(0), signal, (body) => registry.uploads.monolithic(repository, digest, body, actor, size));
        return size;
      }
      // A session of its own, so a source that breaks midway is reopened where the bytes stored end.
      const session = await registry.uploads.start(repository, actor);
      try {
        let read = 0;
        for (let offset = 0, attempt = 0; offset < size; attempt++) {
          try {
            const stored = await withAbort(await open(offset), signal, (body) => registry.uploads.append(repository, session.id, body, {}));
            read += stored.size - offset;
            break;
          } catch (error) {
            if (signal?.aborted || attempt >= MAX_SOURCE_RESUMES || !brokenSource(error)) throw error;
            const stored = (await registry.uploads.status(repository, session.id)).size;
            read += stored - offset;
            offset = stored;
          }
        }
        await registry.uploads.complete(repository, session.id, digest, undefined, {});
        return read;
      } catch (error) {
        await registry.uploads.cancel(repository, session.id).catch(() => undefined);
        throw error;
      }
    },
    async putManifest(repository, reference, body, mediaType, signal) {
      signal?.throwIfAborted();
      await writable(repository);
      await registry.manifests.put(repository, reference, body, mediaType, actor);
    },
    async deleteManifest(repository, digest, signal) {
      signal?.throwIfAborted();
      try {
        await registry.manifests.delete(repository, digest, actor);
      } catch (error) {
        if (!(error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN')) throw error;
      }
    },
  };
}

async function orMissing<T, F>(request: Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof RegistryError && MISSING.has(error.code)) return fallback;
    throw error;
  }
}

function brokenSource(error: unknown): boolean {
  if (error instanceof RemoteError) return error.transient;
  return BROKEN_CODES.has(String((error as NodeJS.ErrnoException | undefined)?.code ?? ''));
}

/** Runs `task` over `body`, destroying `body` when `signal` aborts meanwhile. */
async function withAbort<T>(body: Readable, signal: AbortSignal | undefined, task: (body: Readable) => Promise<T>): Promise<T> {
  if (!signal) return task(body);
  const abort = (): void => void body.destroy(abortReason(signal));
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await task(body);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('the replication was aborted');
}
