// The two ends of a replication, as the copy and the execution see them: Berth itself (its own
// metadata and storage, never through HTTP) or another registry (the one outbound client,
// src/remote/). A push rule copies Berth → registry, a pull rule registry → Berth.
import type { Readable } from 'node:stream';

/** A manifest's identity at one end. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/** A manifest with its bytes. */
export interface ManifestBody extends ManifestHead {
  body: Buffer;
}

/** A referrer of a manifest (an entry of the referrers index). */
export interface ReferrerEntry {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
}

/**
 * One end of a replication. Errors: RemoteError (src/remote/types.ts) for another registry, with
 * `transient` telling retryable failures apart; RegistryError for Berth itself. "Not there" is never
 * an error where the member says it answers `undefined` or an empty list.
 */
export interface ReplicationSide {
  /** For logs and task records: `berth` or the endpoint's name. */
  readonly name: string;
  /** True for Berth itself (blobs are read from its storage, pushes go through its registry services). */
  readonly local: boolean;

  // Reading (the source; the destination too, for the diff).
  /** Every repository (a remote's `_catalog`; Berth's own except proxy-cache projects'). Rejects when a remote lists none (no catalog API). */
  repositories(signal?: AbortSignal): Promise<string[]>;
  /** The repository's tags; [] when the repository does not exist. */
  tags(repository: string, signal?: AbortSignal): Promise<string[]>;
  /** What `reference` (tag or digest) points at; undefined when there is no such manifest. */
  head(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestHead | undefined>;
  /** The manifest with its bytes (digest verified); rejects when it is missing. */
  manifest(repository: string, reference: string, signal?: AbortSignal): Promise<ManifestBody>;
  /** The manifests referring to `digest` (signatures, SBOMs); [] when none or the referrers API is missing. */
  referrers(repository: string, digest: string, signal?: AbortSignal): Promise<ReferrerEntry[]>;
  /** The blob's size when `repository` may serve it; undefined otherwise. */
  blobSize(repository: string, digest: string, signal?: AbortSignal): Promise<number | undefined>;
  /** The blob's bytes from `offset` (0: whole), with the blob's full size. */
  openBlob(repository: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ stream: Readable; size: number }>;

  // Writing (the destination).
  /** Mounts a blob `from` another repository of this end; false when it could not (then upload). */
  mountBlob(repository: string, digest: string, from: string, signal?: AbortSignal): Promise<boolean>;
  /**
   * Stores a blob of `size` bytes read through `open(offset)`, which may be called again with a
   * later offset to resume a transfer that broke (the destination kept the bytes before it).
   * Resolves with the bytes actually sent.
   */
  pushBlob(repository: string, digest: string, size: number, open: (offset: number) => Promise<Readable>, signal?: AbortSignal): Promise<number>;
  /** Stores a manifest under `reference` (a tag, or its digest for untagged children and referrers). */
  putManifest(repository: string, reference: string, body: Buffer, mediaType: string, signal?: AbortSignal): Promise<void>;
  /** Deletes the manifest `digest` (and so its tags); resolves also when it is already gone. */
  deleteManifest(repository: string, digest: string, signal?: AbortSignal): Promise<void>;
}
