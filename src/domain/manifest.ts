import { RegistryError } from './errors.ts';
import { DIGEST_SHAPE, isDigest } from './digest.ts';
import { MEDIA_TYPES, manifestKind, type ManifestKind } from './media-types.ts';

/** A content descriptor (OCI image spec): what a manifest points at. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  artifactType?: string;
  annotations?: Record<string, string>;
  /** An index entry's platform, when it has a well-formed one (read leniently: a malformed one is left out, never refused). */
  platform?: Platform;
}

/** The platform an index entry is for (OCI image index). */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** What the registry needs to know about a pushed manifest. */
export interface ParsedManifest {
  mediaType: string;
  kind: ManifestKind;
  /** Blobs the manifest needs in the repository (config and layers), for image manifests. */
  blobs: Descriptor[];
  /** Child manifests, for indexes. */
  manifests: Descriptor[];
  /** An image manifest's config descriptor. */
  config?: Descriptor;
  /** An image manifest's layers as listed (`blobs` leaves out foreign layers that live elsewhere). */
  layers?: Descriptor[];
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

/**
 * `MANIFEST_INVALID` naming the field at fault and the shape it should have. Never the value that
 * was sent: the client has it, and echoing it would hand any size or depth of input to the error
 * path (a value nested deeply enough cannot even be serialised back).
 */
function invalid(reason: string, field: string, expected: string, extra: Record<string, unknown> = {}): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${reason}`, { reason, field, expected, ...extra });
}

const MANIFEST_TYPES = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw invalid(`${field} must be an object of strings`, field, 'an object whose values are all strings');
  }
  return value as Record<string, string>;
}

function descriptor(value: unknown, field: string): Descriptor {
  if (!isRecord(value)) throw invalid(`${field} must be a descriptor object`, field, 'a descriptor object with mediaType, digest and size');
  const { mediaType, digest, size, urls, artifactType } = value;
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${field}.mediaType must be a non-empty string`, `${field}.mediaType`, 'a non-empty string');
  if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${field}.digest is not a valid digest`, `${field}.digest`, DIGEST_SHAPE);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${field}.size must be a non-negative integer`, `${field}.size`, 'a non-negative integer');
  if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string'))) throw invalid(`${field}.urls must be an array of strings`, `${field}.urls`, 'an array of strings');
  if (artifactType !== undefined && typeof artifactType !== 'string') throw invalid(`${field}.artifactType must be a string`, `${field}.artifactType`, 'a string');
  const result: Descriptor = { mediaType, digest, size };
  if (urls) result.urls = urls as string[];
  if (artifactType) result.artifactType = artifactType;
  const annotations = stringMap(value.annotations, `${field}.annotations`);
  if (annotations) result.annotations = annotations;
  const platform = platformOf(value.platform);
  if (platform) result.platform = platform;
  return result;
}

/** A descriptor's platform when its os and architecture are strings; anything else is ignored, as before it was read. */
function platformOf(value: unknown): Platform | undefined {
  if (!isRecord(value) || typeof value.os !== 'string' || typeof value.architecture !== 'string') return undefined;
  return { os: value.os, architecture: value.architecture, ...(typeof value.variant === 'string' ? { variant: value.variant } : {}) };
}

function descriptors(value: unknown, field: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${field} must be an array`, field, 'an array of descriptor objects');
  return value.map((item, i) => descriptor(item, `${field}[${i}]`));
}

/** `mediaType` when it is one of the manifest media types Berth knows (so safe to show), else undefined. */
function known(mediaType: string): string | undefined {
  return (Object.values(MEDIA_TYPES) as string[]).includes(mediaType) ? mediaType : undefined;
}

/**
 * Works out a manifest's media type from the `Content-Type` header and its own `mediaType` field.
 * The spec requires them to agree when both are present.
 */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): string {
  const header = contentType?.split(';')[0]!.trim().toLowerCase() || undefined;
  const field = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if (header && field && header !== field) {
    // Only media types Berth knows are shown back; anything else is named, not echoed.
    const shown = { ...(known(header) ? { contentType: header } : {}), ...(known(field) ? { mediaType: field } : {}) };
    throw invalid('Content-Type does not match the manifest mediaType field', 'mediaType', 'the same media type as the Content-Type header', shown);
  }
  const mediaType = field ?? header;
  if (!mediaType) throw invalid('no media type: set Content-Type or the mediaType field', 'mediaType', `one of ${MANIFEST_TYPES.join(', ')}`);
  return mediaType;
}

/**
 * Where JSON.parse gave up, when its message ends by saying so. The message itself is not shown:
 * V8 quotes the input in some of them.
 */
function parsePosition(err: unknown): { position: number } | undefined {
  const m = err instanceof Error ? / at position (\d{1,10})(?: \(line \d+ column \d+\))?$/.exec(err.message) : null;
  return m ? { position: Number(m[1]) } : undefined;
}

/** Parses and validates a manifest body; throws `MANIFEST_INVALID` naming the field at fault. */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (err) {
    throw invalid('body is not valid JSON', 'body', 'a JSON object', parsePosition(err));
  }
  if (!isRecord(json)) throw invalid('body must be a JSON object', 'body', 'a JSON object');
  const mediaType = resolveMediaType(contentType, json);
  if (mediaType === MEDIA_TYPES.dockerSchema1 || mediaType === MEDIA_TYPES.dockerSchema1Signed) {
    throw invalid('Docker schema 1 manifests are deprecated and not accepted; push with schema 2 or OCI', 'mediaType', `one of ${MANIFEST_TYPES.join(', ')}`, { mediaType });
  }
  const kind = manifestKind(mediaType);
  if (!kind) throw invalid('unsupported manifest media type', 'mediaType', `one of ${MANIFEST_TYPES.join(', ')}`);
  if (json.schemaVersion !== 2) throw invalid('schemaVersion must be 2', 'schemaVersion', 'the number 2');
  if (json.artifactType !== undefined && typeof json.artifactType !== 'string') throw invalid('artifactType must be a string', 'artifactType', 'a string');
  const subject = json.subject === undefined ? undefined : descriptor(json.subject, 'subject');
  const annotations = stringMap(json.annotations, 'annotations');
  const parsed: ParsedManifest = { mediaType, kind, blobs: [], manifests: [] };
  if (subject) parsed.subject = subject;
  if (annotations) parsed.annotations = annotations;
  if (kind === 'image') {
    const config = descriptor(json.config, 'config');
    const layers = descriptors(json.layers ?? [], 'layers');
    if (mediaType === MEDIA_TYPES.dockerManifest && layers.length === 0) throw invalid('layers must not be empty', 'layers', 'at least one layer descriptor (Docker schema 2)');
    parsed.config = config;
    parsed.layers = layers;
    parsed.blobs = [config, ...layers.filter((l) => !(FOREIGN_LAYERS.has(l.mediaType) && l.urls?.length))];
    parsed.artifactType = (json.artifactType as string | undefined) || config.mediaType;
  } else {
    parsed.manifests = descriptors(json.manifests, 'manifests');
    if (json.artifactType) parsed.artifactType = json.artifactType as string;
  }
  return parsed;
}
