// What the repository and artifact pages (and a project's repositories tab) show about artifacts:
// their kind in words, short digests, their addresses.
import { repoPath, seg } from '../../api/client';
import type { MessageKey } from '../../i18n/index';
import type { Platform } from '../../api/repositories';

/** Words for an artifact's kind; `other` shows its artifact type as is. */
export type ArtifactKind = 'index' | 'image' | 'helm' | 'signature' | 'sbom' | 'attestation' | 'wasm' | 'other';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * The kind of an artifact from its manifest media type and artifact type (an image's config media
 * type when it has no artifactType). Matched on well-known fragments, since signers and SBOM tools
 * each use their own vendor types.
 */
export function artifactKind(mediaType: string, artifactType: string | null | undefined): ArtifactKind {
  const type = (artifactType ?? '').toLowerCase();
  if (INDEX_TYPES.has(mediaType) && !type) return 'index';
  if (type.includes('helm')) return 'helm';
  if (type.includes('signature') || type.includes('cosign') || type.includes('sigstore') || type.includes('notary')) return 'signature';
  if (type.includes('spdx') || type.includes('cyclonedx') || type.includes('sbom') || type.includes('syft')) return 'sbom';
  if (type.includes('in-toto') || type.includes('attestation') || type.includes('provenance')) return 'attestation';
  if (type.includes('wasm')) return 'wasm';
  if (INDEX_TYPES.has(mediaType)) return 'index';
  if (!type || IMAGE_CONFIGS.has(type) || mediaType === 'application/vnd.docker.distribution.manifest.v2+json') return 'image';
  return 'other';
}

/** The catalogue key naming each kind. */
export const KIND_LABEL: Record<ArtifactKind, MessageKey> = {
  index: 'artifact.kind.index',
  image: 'artifact.kind.image',
  helm: 'artifact.kind.helm',
  signature: 'artifact.kind.signature',
  sbom: 'artifact.kind.sbom',
  attestation: 'artifact.kind.attestation',
  wasm: 'artifact.kind.wasm',
  other: 'artifact.kind.other',
};

/** `sha256:` and the first 12 hex digits: enough to tell artifacts apart on a page. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 12) : digest.slice(0, colon + 13);
}

/** `linux/arm64/v8`. */
export function platformLabel(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}


/** A time from pushed content (an image config's `created`) in the user's locale; shown as is when it does not parse. */
export function contentTime(dateTime: (iso: string | null) => string, value: string | null): string {
  if (!value) return '—';
  return Number.isNaN(Date.parse(value)) ? value : dateTime(value);
}

/** The portal address of an artifact's page (`reference`: a digest or a tag). */
export const artifactPath = (name: string, reference: string): string => `/repositories/${repoPath(name)}/-/${seg(reference)}`;
