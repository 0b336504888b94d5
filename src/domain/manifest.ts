import { RegistryError } from './errors.ts';
import { isDigest } from './digest.ts';
import { MEDIA_TYPES, manifestKind, type ManifestKind } from './media-types.ts';

/** A content descriptor (OCI image spec): what a manifest points at. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What the registry needs to know about a pushed manifest. */
export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Blobs the manifest needs in the repository (config and layers), for image manifests. */
  blobs: Descriptor[];
  /** Child manifests, for indexes. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** The referrers API's artifact type: `artifactType`, else the config media type of an image. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Layer media types that may live outside the registry ("non-distributable"); never required to exist. */
const FOREIGN_LAYERS = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

function invalid(reason: string, detail: Record<string, unknown> = {}): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${reason}`, { reason, ...detail });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${field} must be an object of strings`);
  }
  return value as Record<string, string>;
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isRecord(value)) throw invalid(`${field} must be a descriptor object`);
  const { mediaType, digest, size, urls, artifactType } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${field}.mediaType must be a non-empty string`);
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${field}.digest is not a valid digest`, { digest });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${field}.size must be a non-negative integer`);
  if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string'))) throw invalid(`${field}.urls must be an array of strings`);
  if (artifactType !== undefined && typeof artifactType !== 'string') throw invalid(`${field}.artifactType must be a string`);
  const result: Descriptor = { mediaType, digest, size };
  if (urls) result.urls = urls as string[];
  if (artifactType) result.artifactType = artifactType;
  const annotations = stringMap(value.annotations, `${field}.annotations`);
  if (annotations) result.annotations = annotations;
  return result;
}

function descriptors(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`);
  return value.map((item, i) => descriptor(item, `${field}[${i}]`));
}

/**
 * Works out a manifest's media type from the `Content-Type` header and its own `mediaType` field.
 * The spec requires them to agree when both are present.
 */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): string {
  const header = contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  const field = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (header && field && header !== field) {
    throw invalid('Content-Type does not match the manifest mediaType field', { contentType: header, mediaType: field });
  }
  const mediaType = field ?? header;
  if (!mediaType) throw invalid('no media type: set Content-Type or the mediaType field');
  return mediaType;
}

/** Parses and validates a manifest body; throws `MANIFEST_INVALID` naming the field at fault. */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid('body is not valid JSON', { error: (err as Error).message });
  }
  if (!isRecord(json)) throw invalid('body must be a JSON object');
  const mediaType = resolveMediaType(contentType, json);
  if (mediaType === MEDIA_TYPES.dockerSchema1 || mediaType === MEDIA_TYPES.dockerSchema1Signed) {
    throw invalid('Docker schema 1 manifests are deprecated and not accepted; push with schema 2 or OCI', { mediaType });
  }
  const kind = manifestKind(mediaType);
  if (!kind) throw invalid('unsupported manifest media type', { mediaType });
  if (json.schemaVersion !== 2) throw invalid('schemaVersion must be 2', { schemaVersion: json.schemaVersion });
  if (json.artifactType !== undefined && typeof json.artifactType !== 'string') throw invalid('artifactType must be a string');
  const subject = json.subject === undefined ? undefined : descriptor(json.subject, 'subject');
  const annotations = stringMap(json.annotations, 'annotations');
  const parsed: ParsedManifest = { mediaType, kind, blobs: [], manifests: [] };
  if (subject) parsed.subject = subject;
  if (annotations) parsed.annotations = annotations;
  if (kind === 'image') {
    const config = descriptor(json.config, 'config');
    const layers = descriptors(json.layers ?? [], 'layers');
    if (mediaType === MEDIA_TYPES.dockerManifest && layers.length === 0) throw invalid('layers must not be empty');
    parsed.blobs = [config, ...layers.filter((l) => !(FOREIGN_LAYERS.has(l.mediaType) && l.urls?.length))];
    parsed.artifactType = (json.artifactType as string | undefined) || config.mediaType;
  } else {
    parsed.manifests = descriptors(json.manifests, 'manifests');
    if (json.artifactType) parsed.artifactType = json.artifactType as string;
  }
  return parsed;
}
