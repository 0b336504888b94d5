// Shapes of /api/v1/repositories (src/http/api/repositories.ts and artifact-detail.ts).

/** GET /repositories?project=…: one repository. */
export interface Repository {
  /** The full name, project first (`team/app`). */
  name: string;
  project: string;
  artifactCount: number;
  createdAt: string | null;
}

export type RepositorySort = 'name' | '-name' | 'createdAt' | '-createdAt';
export type ArtifactSort = 'pushedAt' | '-pushedAt' | 'tag' | '-tag' | 'lastPulledAt' | '-lastPulledAt';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** GET /repositories/{name}/artifacts: one artifact (platform images show under their index). */
export interface Artifact {
  digest: string;
  mediaType: string;
  /** `artifactType`, else an image's config media type; null for an index without one. */
  artifactType: string | null;
  /** Bytes: the manifest and each blob or child it references, counted once. */
  size: number;
  /** Its first tags by name (at most 20 in a list, 100 in the detail); `tagCount` says how many. */
  tags: string[];
  tagCount: number;
  /** An index's platforms; empty for a single image. */
  platforms: Platform[];
  pushedBy: string | null;
  pushedAt: string | null;
  lastPulledAt: string | null;
  /** The artifact this one refers to (a signature's or an SBOM's subject); null for most. */
  subject: string | null;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The manifest as parsed on push. */
export interface ManifestSummary {
  /** An image's config descriptor; null for an index. */
  config: Omit<Descriptor, 'annotations'> | null;
  layers: Descriptor[];
  /** An index's entries. */
  manifests: { digest: string; mediaType: string; size: number; platform: Platform | null; artifactType?: string }[];
  annotations: Record<string, string>;
  /** Digest of the manifest this one refers to (a signature or SBOM of it). */
  subject: string | null;
}

/** A summary of an image's config blob. */
export interface ConfigSummary {
  os: string | null;
  architecture: string | null;
  variant: string | null;
  created: string | null;
  author: string | null;
  entrypoint: string[] | null;
  cmd: string[] | null;
  env: string[];
  workingDir: string | null;
  user: string | null;
  exposedPorts: string[];
  labels: Record<string, string>;
  history: { created: string | null; createdBy: string | null; emptyLayer: boolean; comment: string | null }[];
}

/** An artifact whose subject is this one (a signature, an SBOM…). */
export interface Referrer {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  annotations: Record<string, string>;
  pushedAt: string | null;
}

/** GET /repositories/{name}/artifacts/{reference}. */
export interface ArtifactDetail extends Artifact {
  /** Null when the stored manifest cannot be read. */
  manifest: ManifestSummary | null;
  /** Null for indexes, non-image artifacts, and configs that cannot be read. */
  config: ConfigSummary | null;
  referrers: Referrer[];
}
