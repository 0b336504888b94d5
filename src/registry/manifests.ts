import { RegistryError } from '../domain/errors.ts';
import { digestOf, parseDigest } from '../domain/digest.ts';
import { isTag } from '../domain/names.ts';
import { acceptsMediaType } from '../domain/media-types.ts';
import { parseManifest, type ParsedManifest } from '../domain/manifest.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { Metadata } from '../metadata/index.ts';
import type { QuotaService } from './quota.ts';
import type { ManifestRow } from '../metadata/schema.ts';
import type { ManifestRecord } from '../metadata/manifests.ts';
import { ImmutableTagError } from '../metadata/immutability.ts';

/** A manifest reference from a URL: a tag or a digest. */
export type Reference = { tag: string } | { digest: string };

const EXPECTED_REFERENCE = 'a tag matching [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}, or a digest';

/** Parses the `<reference>` of a manifest URL; `TAG_INVALID`/`DIGEST_INVALID` when it is neither. */
export function parseReference(reference: string): Reference {
  if (reference.includes(':')) return { digest: parseDigest(reference, 'reference').value };
  if (!isTag(reference)) throw new RegistryError('TAG_INVALID', 'invalid tag', { field: 'reference', expected: EXPECTED_REFERENCE });
  return { tag: reference };
}

/**
 * Parses the `<reference>` of a manifest to look up (GET, HEAD, DELETE). A tag-shaped reference
 * that is not a valid tag names no manifest that can exist, so it is `MANIFEST_UNKNOWN` (404), as
 * the distribution spec's conformance suite expects of `.INVALID_MANIFEST_NAME` and as
 * Distribution answers; only a push to it is `TAG_INVALID` (400). A malformed digest stays
 * `DIGEST_INVALID`, as for blobs.
 */
function lookupReference(reference: string): Reference {
  if (reference.includes(':') || isTag(reference)) return parseReference(reference);
  // Not echoed: it is whatever the client sent.
  throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry: the reference is not a valid tag, so no manifest has it', {
    field: 'reference',
    expected: EXPECTED_REFERENCE,
  });
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
}

export interface PushedManifest {
  digest: string;
  subject?: string;
}

/**
 * What recording a validated manifest stores (`ManifestStore.put`): its media type, artifact type,
 * subject and annotations, and the blobs and child manifests it references. The caller adds the
 * tag, who pushed it, and the checks that apply.
 */
export function manifestRecord(manifest: ParsedManifest, repositoryId: number, digest: string, size: number): ManifestRecord {
  return {
    repositoryId,
    digest,
    mediaType: manifest.mediaType,
    size,
    ...(manifest.artifactType ? { artifactType: manifest.artifactType } : {}),
    ...(manifest.subject ? { subjectDigest: manifest.subject.digest } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
    references: [...manifest.blobs.map((b) => ({ digest: b.digest, kind: 'blob' as const })), ...manifest.manifests.map((m) => ({ digest: m.digest, kind: 'manifest' as const }))],
  };
}

/**
 * MANIFEST_UNKNOWN unless the client's `Accept` header admits `mediaType` (a manifest's validated
 * media type); the header is named, not echoed.
 */
export function requireAccepted(accept: string | undefined, mediaType: string): void {
  if (!acceptsMediaType(accept, mediaType)) {
    throw new RegistryError('MANIFEST_UNKNOWN', 'manifest exists but its media type is not in the Accept header', { mediaType, field: 'Accept', expected: `a list of media types including ${mediaType}` });
  }
}

/** Default memory for manifest bytes kept in memory. */
const MANIFEST_CACHE_BYTES = 64 << 20;

/**
 * Manifest bytes by digest, least recently used first, bounded by their total size. Content
 * addressed, so an entry is never stale: whether a repository may serve a digest is decided by the
 * metadata on every request, before the bytes are looked up here.
 */
class ManifestBytes {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(digest: string): Buffer | undefined {
    const hit = this.entries.get(digest);
    if (hit) {
      this.entries.delete(digest);
      this.entries.set(digest, hit);
    }
    return hit;
  }

  /**
   * Remembers `body` under `digest`. Unless `owned` (a buffer nobody else holds), a copy: the
   * caller's buffer may be reused, or be a view into a larger pooled one that would stay alive.
   */
  set(digest: string, body: Buffer, owned: boolean): void {
    // One manifest may not take more than an eighth of the budget (the largest are a few MiB).
    if (body.length > this.maxBytes / 8 || this.entries.has(digest)) return;
    let own = body;
    if (!owned || body.byteOffset !== 0 || body.buffer.byteLength !== body.length) {
      own = Buffer.allocUnsafeSlow(body.length);
      body.copy(own);
    }
    this.entries.set(digest, own);
    this.bytes += own.length;
    for (const [key, value] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(key);
      this.bytes -= value.length;
    }
  }
}

/** Manifests: validated on push, stored byte-exact, served by tag or digest. */
export class ManifestService {
  private readonly cache: ManifestBytes;

  /** `cacheBytes`: memory for manifest bytes kept in memory, so GET does not read storage each time. */
  constructor(private readonly store: BlobStore, private readonly meta: Metadata, private readonly quota: QuotaService, cacheBytes = MANIFEST_CACHE_BYTES) {
    this.cache = new ManifestBytes(cacheBytes);
  }

  /** Looks up a manifest without reading it (HEAD), honouring `Accept`. */
  async stat(repository: string, reference: string, accept?: string): Promise<StoredManifest> {
    const row = await this.find(repository, lookupReference(reference));
    requireAccepted(accept, row.media_type);
    return { digest: row.digest, mediaType: row.media_type, size: Number(row.size) };
  }

  /**
   * Reads a manifest's exact bytes (GET). A client's pull records the pull time (retention's "pulled
   * within" rules); `{ pull: false }` reads for Berth itself (replication), which is not a pull.
   */
  async get(repository: string, reference: string, accept?: string, options: { pull?: boolean } = {}): Promise<StoredManifest & { body: Buffer }> {
    const info = await this.stat(repository, reference, accept);
    if (options.pull !== false) {
      const repoId = await this.meta.repositories.id(repository);
      if (repoId !== undefined) void this.meta.manifests.markPulled(repoId, info.digest).catch(() => undefined);
    }
    const cached = this.cache.get(info.digest);
    if (cached) return { ...info, body: cached };
    let body: Buffer;
    try {
      body = await this.store.readAll(info.digest);
    } catch (err) {
      throw new RegistryError('MANIFEST_UNKNOWN', 'manifest is recorded but its content is missing from storage', { digest: info.digest, cause: (err as Error).message });
    }
    this.cache.set(info.digest, body, true);
    return { ...info, body };
  }

  /**
   * Stores a manifest pushed to `reference` (PUT). Everything it references must already be in the
   * repository; the bytes are stored exactly as sent, before the metadata that points at them.
   */
  async put(repository: string, reference: string, body: Buffer, contentType: string | undefined, pushedBy?: string): Promise<PushedManifest> {
    const ref = parseReference(reference);
    const algorithm = 'digest' in ref ? parseDigest(ref.digest).algorithm : 'sha256';
    const digest = digestOf(body, algorithm);
    if ('digest' in ref && ref.digest !== digest) {
      throw new RegistryError('DIGEST_INVALID', 'manifest digest does not match the reference it was pushed to', { reference: ref.digest, actual: digest });
    }
    const manifest = parseManifest(body, contentType);
    const repoId = await this.meta.repositories.currentId(repository);
    const immutable = 'tag' in ref ? await this.meta.immutability.checkFor(repository) : undefined;
    const rule = 'tag' in ref ? immutable?.(ref.tag) : undefined;
    if (rule && repoId !== undefined && 'tag' in ref) {
      // Refused before anything is stored; the transaction recording the push decides for good.
      const current = await this.meta.manifests.byTag(repoId, ref.tag);
      if (current && current.digest !== digest) throw new ImmutableTagError(rule, repository, ref.tag, 'move');
    }
    await this.checkReferences(repoId, manifest);
    await this.quota.check(repository, digest, body.length);
    // Recorded before the bytes are written, so garbage collection never deletes them under this push (BlobRecords).
    await this.meta.blobs.claim(digest, body.length);
    await this.store.putSmall(digest, body);
    this.cache.set(digest, body, false);
    const id = repoId ?? (await this.meta.repositories.ensure(repository));
    await this.quota.charge(repository, digest, body.length);
    await this.meta.manifests.put({
      ...manifestRecord(manifest, id, digest, body.length),
      ...('tag' in ref ? { tag: ref.tag } : {}),
      ...(immutable ? { immutable } : {}),
      ...(pushedBy ? { pushedBy } : {}),
    });
    return manifest.subject ? { digest, subject: manifest.subject.digest } : { digest };
  }

  /**
   * Deletes by digest (the manifest and every tag on it) or by tag (only the tag; the manifest
   * stays reachable by digest). `actor` is who asked, for the event the deletion records. A tag
   * an immutability rule covers, or an artifact carrying one, is not deleted: DENIED naming the rule.
   */
  async delete(repository: string, reference: string, actor?: string): Promise<void> {
    const ref = lookupReference(reference);
    const repoId = await this.meta.repositories.currentId(repository);
    const immutable = repoId === undefined ? undefined : await this.meta.immutability.checkFor(repository);
    const deleted =
      repoId !== undefined &&
      ('tag' in ref ? await this.meta.manifests.deleteTag(repoId, ref.tag, actor, immutable) : await this.meta.manifests.delete(repoId, ref.digest, actor, immutable));
    if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { reference });
  }

  private async find(repository: string, ref: Reference): Promise<ManifestRow> {
    const row = await this.meta.repositories.lookup(repository, (repoId) => ('tag' in ref ? this.meta.manifests.byTag(repoId, ref.tag) : this.meta.manifests.byDigest(repoId, ref.digest)));
    if (!row) throw new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', 'tag' in ref ? { tag: ref.tag } : { digest: ref.digest });
    return row;
  }

  private async checkReferences(repoId: number | undefined, manifest: ParsedManifest): Promise<void> {
    const blobSizes = repoId === undefined ? new Map<string, number>() : await this.meta.repositories.blobSizes(repoId, manifest.blobs.map((b) => b.digest));
    for (const blob of manifest.blobs) {
      const size = blobSizes.get(blob.digest);
      if (size === undefined) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest references a blob unknown to the repository', { digest: blob.digest });
      if (size !== blob.size) throw new RegistryError('MANIFEST_INVALID', 'manifest invalid: descriptor size does not match the blob', { digest: blob.digest, descriptorSize: blob.size, blobSize: size });
    }
    const children = manifest.manifests.map((m) => m.digest);
    const present = repoId === undefined ? new Set<string>() : await this.meta.manifests.existing(repoId, children);
    for (const child of children) {
      if (!present.has(child)) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 'index references a manifest unknown to the repository', { digest: child });
    }
  }
}

