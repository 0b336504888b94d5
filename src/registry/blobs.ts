import { RegistryError } from '../domain/errors.ts';
import { parseDigest } from '../domain/digest.ts';
import { StorageError, type BlobStore, type BlobStream, type ByteRange } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import type { QuotaService } from './quota.ts';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Blobs as a repository sees them: only those linked into it exist for it. */
export class BlobService {
  constructor(private readonly store: BlobStore, private readonly meta: Metadata, private readonly quota: QuotaService) {}

  /** Size of a blob in a repository; `BLOB_UNKNOWN` when it is not there. */
  async stat(repository: string, digestParam: string): Promise<BlobInfo> {
    const digest = parseDigest(digestParam).value;
    const size = await this.meta.repositories.lookup(repository, (repoId) => this.meta.repositories.blobSize(repoId, digest));
    if (size === undefined) throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    return { digest, size };
  }

  /** Opens a blob (or a range of it) of a repository for reading. */
  async open(repository: string, digestParam: string, range?: ByteRange): Promise<{ info: BlobInfo; stream: BlobStream }> {
    const info = await this.stat(repository, digestParam);
    try {
      return { info, stream: await this.store.read(info.digest, range) };
    } catch (err) {
      // Only a blob the store does not have is unknown; anything else (storage unavailable, an I/O
      // error) is the store's failure, answered as such, with its cause in the log, not the reply.
      if (err instanceof StorageError && err.kind === 'not_found') throw new RegistryError('BLOB_UNKNOWN', 'blob is recorded but its content is missing from storage', { digest: info.digest });
      throw err;
    }
  }

  /** Removes a blob from a repository (the bytes stay for other repositories until GC). */
  async delete(repository: string, digestParam: string): Promise<void> {
    const digest = parseDigest(digestParam).value;
    const repoId = await this.meta.repositories.currentId(repository);
    if (repoId === undefined || !(await this.meta.repositories.unlinkBlob(repoId, digest))) {
      throw new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    }
  }

  /**
   * Cross-repository mount: links a blob of `from` into `repository` without a copy. Returns
   * undefined when `from` does not have it (the client then uploads normally).
   */
  async mount(repository: string, digestParam: string, from: string): Promise<BlobInfo | undefined> {
    const digest = parseDigest(digestParam, 'mount query parameter').value;
    const size = await this.meta.repositories.lookup(from, (fromId) => this.meta.repositories.blobSize(fromId, digest));
    if (size === undefined || (await this.store.stat(digest)) === undefined) return undefined;
    await this.quota.check(repository, digest, size);
    // If garbage collection took the blob just before, the mount fails as for a blob `from` lacks: the client uploads it.
    if (!(await this.link(repository, digest, size))) return undefined;
    return { digest, size };
  }

  /**
   * Links stored blob `digest` into `repository` (creating it) and charges its project, in one
   * transaction that holds the blob's row, so garbage collection cannot take it meanwhile
   * (BlobRecords). False when garbage collection took it just before: nothing was recorded.
   */
  async link(repository: string, digest: string, size: number): Promise<boolean> {
    const repositoryId = await this.meta.repositories.ensure(repository);
    const projectId = await this.quota.projectOf(repository);
    try {
      await this.meta.uploads.complete(undefined, { repositoryId, projectId, digest, size });
      return true;
    } catch (err) {
      if (err instanceof RegistryError && (err.detail as { reason?: string } | undefined)?.reason === 'collected-during-push') return false;
      throw err;
    }
  }
}
