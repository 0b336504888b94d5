/** Media types the registry understands as manifests, and what kind of manifest each is. */
export const MEDIA_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type ManifestKind = 'image' | 'index';

/** The kind of a manifest media type, or undefined when it is not one Berth stores. */
export function manifestKind(mediaType: string): ManifestKind | undefined {
  switch (mediaType) {
    case MEDIA_TYPES.ociManifest:
    case MEDIA_TYPES.dockerManifest:
      return 'image';
    case MEDIA_TYPES.ociIndex:
    case MEDIA_TYPES.dockerManifestList:
      return 'index';
    default:
      return undefined;
  }
}

/**
 * Whether an `Accept` header admits a stored manifest's media type. No header, or a wildcard,
 * admits everything, as Distribution and other registries do.
 */
export function acceptsMediaType(accept: string | undefined, mediaType: string): boolean {
  if (!accept || accept.trim() === '') return true;
  for (const part of accept.split(',')) {
    const type = part.split(';')[0]!.trim().toLowerCase();
    if (type === mediaType || type === '*/*' || type === 'application/*') return true;
  }
  return false;
}
