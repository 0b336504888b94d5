// What an artifact's detail adds to its list entry: the manifest as parsed on push (layers, config
// descriptor, annotations, subject, an index's children) and a summary of an image's config blob.
// Both come from content a client pushed: every field is read defensively, strings and lists are
// capped, and a config that is too large, not JSON or not an image config shows as null.
import { z } from 'zod';
import type { Descriptor, ParsedManifest } from '../../domain/manifest.ts';
import type { BlobStore } from '../../storage/blob-store.ts';

/** Config blobs larger than this are not read (real image configs are a few KiB; long histories some hundreds). */
export const MAX_CONFIG_BYTES = 4 << 20;
/** Longest string shown from pushed content; longer ones are cut. */
const MAX_STRING = 4096;
/** Most entries shown of a list or map from pushed content (history, env, labels, annotations, layers…). */
const MAX_ITEMS = 1000;

/** Config media types whose blob is an image configuration (OCI and Docker). */
const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

const stringMap = z.record(z.string(), z.string());
const descriptorView = z.object({ mediaType: z.string(), digest: z.string(), size: z.number().int(), annotations: stringMap.optional() });
const platformView = z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() });

/** The parsed manifest in an artifact's detail (OpenAPI). */
export const manifestSummary = z.object({
  config: descriptorView.omit({ annotations: true }).nullable().describe("an image manifest's config descriptor; null for an index"),
  layers: z.array(descriptorView).describe("an image manifest's layers in order (at most 1000); empty for an index"),
  manifests: z
    .array(z.object({ digest: z.string(), mediaType: z.string(), size: z.number().int(), platform: platformView.nullable(), artifactType: z.string().optional() }))
    .describe("an index's entries (at most 1000); empty for an image"),
  annotations: stringMap.describe('the manifest annotations (at most 1000)'),
  subject: z.string().nullable().describe('digest of the manifest this one refers to (a signature or SBOM of it)'),
});

/** A summary of an image's config blob (OpenAPI). */
export const configSummary = z.object({
  os: z.string().nullable(),
  architecture: z.string().nullable(),
  variant: z.string().nullable(),
  created: z.string().nullable(),
  author: z.string().nullable(),
  entrypoint: z.array(z.string()).nullable(),
  cmd: z.array(z.string()).nullable(),
  env: z.array(z.string()),
  workingDir: z.string().nullable(),
  user: z.string().nullable(),
  exposedPorts: z.array(z.string()),
  labels: stringMap,
  history: z.array(z.object({ created: z.string().nullable(), createdBy: z.string().nullable(), emptyLayer: z.boolean(), comment: z.string().nullable() })),
});

export type ManifestSummary = z.output<typeof manifestSummary>;
export type ConfigSummary = z.output<typeof configSummary>;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, MAX_STRING) : null;
}

function texts(value: unknown): string[] | null {
  return Array.isArray(value) ? value.slice(0, MAX_ITEMS).flatMap((v) => (typeof v === 'string' ? [v.slice(0, MAX_STRING)] : [])) : null;
}

/** The string-valued entries of a map, keys and values capped; anything else gives an empty map. */
function strings(value: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  let n = 0;
  for (const [key, v] of Object.entries(record(value) ?? {})) {
    if (n >= MAX_ITEMS) break;
    if (typeof v !== 'string') continue;
    result[key.slice(0, MAX_STRING)] = v.slice(0, MAX_STRING);
    n++;
  }
  return result;
}

function descriptorOf(d: Descriptor) {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: strings(d.annotations) } : {}) };
}

/** The detail's view of a manifest parsed by `parseManifest` (the push's own validation). */
export function summarise(parsed: ParsedManifest): ManifestSummary {
  return {
    config: parsed.config ? { mediaType: parsed.config.mediaType, digest: parsed.config.digest, size: parsed.config.size } : null,
    layers: (parsed.layers ?? []).slice(0, MAX_ITEMS).map(descriptorOf),
    manifests: parsed.manifests.slice(0, MAX_ITEMS).map((m) => ({
      digest: m.digest,
      mediaType: m.mediaType,
      size: m.size,
      platform: m.platform ? { os: m.platform.os.slice(0, MAX_STRING), architecture: m.platform.architecture.slice(0, MAX_STRING), ...(m.platform.variant !== undefined ? { variant: m.platform.variant.slice(0, MAX_STRING) } : {}) } : null,
      ...(m.artifactType ? { artifactType: m.artifactType.slice(0, MAX_STRING) } : {}),
    })),
    annotations: strings(parsed.annotations),
    subject: parsed.subject?.digest ?? null,
  };
}

/**
 * The summary of an image config, read from `store` (at most MAX_CONFIG_BYTES); null when the
 * descriptor is not an image config, or the blob is missing, too large, not JSON or not an object.
 * Never rejects for the blob's content; rejects only when the store itself fails.
 */
export async function readConfig(store: BlobStore, config: Descriptor | undefined): Promise<ConfigSummary | null> {
  if (!config || !IMAGE_CONFIG_TYPES.has(config.mediaType) || config.size > MAX_CONFIG_BYTES) return null;
  const size = await store.stat(config.digest);
  if (size === undefined || size > MAX_CONFIG_BYTES) return null;
  let json: unknown;
  try {
    json = JSON.parse((await store.readAll(config.digest)).toString('utf8'));
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
  return configOf(json);
}

/** The summary of a parsed image config; null when it is not an object. Wrong types read as absent. */
export function configOf(json: unknown): ConfigSummary | null {
  const top = record(json);
  if (!top) return null;
  const inner = record(top.config) ?? {};
  const history = Array.isArray(top.history) ? top.history.slice(0, MAX_ITEMS) : [];
  return {
    os: text(top.os),
    architecture: text(top.architecture),
    variant: text(top.variant),
    created: text(top.created),
    author: text(top.author),
    entrypoint: texts(inner.Entrypoint),
    cmd: texts(inner.Cmd),
    env: texts(inner.Env) ?? [],
    workingDir: text(inner.WorkingDir),
    user: text(inner.User),
    exposedPorts: Object.keys(record(inner.ExposedPorts) ?? {}).slice(0, MAX_ITEMS).map((p) => p.slice(0, MAX_STRING)),
    labels: strings(inner.Labels),
    history: history.map((entry) => {
      const h = record(entry) ?? {};
      return { created: text(h.created), createdBy: text(h.created_by), emptyLayer: h.empty_layer === true, comment: text(h.comment) };
    }),
  };
}
