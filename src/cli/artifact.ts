import type { Command } from 'commander';
import { isDigest } from '../domain/digest.ts';
import { MEDIA_TYPES, manifestKind } from '../domain/media-types.ts';
import { isTag } from '../domain/names.ts';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatBytes, formatTime, printFields, printJSON, shortDigest } from './format.ts';
import { CliError, printTable } from './output.ts';

/** One platform of an index. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An artifact (a manifest and what it references) as the API describes it. */
export interface Artifact {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  /** Bytes: the manifest and, each counted once, the blobs and child manifests it references. */
  size: number;
  tags: string[];
  /** An index's platforms; empty for single images. */
  platforms: Platform[];
  pushedBy: string | null;
  pushedAt: string | null;
  lastPulledAt: string | null;
}

/** `team/app:1.0`, `team/app@sha256:…`, or a repository alone. */
export interface Reference {
  repository: string;
  tag?: string;
  digest?: string;
}

/**
 * `team/app:1.0` or `team/app@sha256:…` as people type or paste them. A leading registry host (one
 * with a port, `localhost`, or the server's own host) is dropped, so `localhost:5000/team/app:1.0`
 * copied from a `docker push` works too. A digest may be shortened to a prefix (as tables show it).
 */
export function parseReference(text: string, serverHost?: string): Reference {
  let rest = text.trim();
  const parts = rest.split('/');
  const first = parts[0] ?? '';
  const server = serverHost ? [serverHost, serverHost.replace(/:\d+$/, '')] : [];
  if (parts.length > 1 && (first.includes(':') || first === 'localhost' || server.includes(first))) rest = parts.slice(1).join('/');
  const at = rest.indexOf('@');
  if (at !== -1) {
    const digest = rest.slice(at + 1);
    if (!/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)) throw new CliError(`"${text}": after "@" comes a digest, e.g. sha256:0123456789ab…`);
    return { repository: rest.slice(0, at), digest };
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    const tag = rest.slice(colon + 1);
    if (!isTag(tag)) throw new CliError(`"${text}": "${tag}" is not a tag (A-Z, a-z, 0-9, "_", ".", "-"; at most 128)`);
    return { repository: rest.slice(0, colon), tag };
  }
  return { repository: rest };
}

/** The API path of a repository: its "/" sent as %2F, so a component named "artifacts" or "tags" is no problem. */
export function repositoryPath(repository: string): string {
  return `/repositories/${segment(repository)}`;
}

/** `team/app:1.0` or `team/app@sha256:…` → the reference, or a CliError saying what is missing. */
export function artifactReference(text: string, client: ApiClient): Reference & ({ tag: string } | { digest: string }) {
  const ref = parseReference(text, new URL(client.baseUrl).host);
  if (ref.tag === undefined && ref.digest === undefined) throw new CliError(`"${text}": name the artifact as REPOSITORY:TAG or REPOSITORY@DIGEST`);
  return ref as Reference & ({ tag: string } | { digest: string });
}

/**
 * The artifact a tag or digest names. A digest prefix (`sha256:0123456789ab`, as tables show it)
 * is matched against the repository's artifacts and must name exactly one.
 */
export async function findArtifact(client: ApiClient, ref: Reference & ({ tag: string } | { digest: string })): Promise<Artifact> {
  const base = repositoryPath(ref.repository);
  if (ref.tag !== undefined || isDigest(ref.digest!)) return client.get<Artifact>(`${base}/artifacts/${segment(ref.tag ?? ref.digest!)}`);
  const prefix = ref.digest!;
  if (!/^sha256:[0-9a-f]{12,}$/.test(prefix)) throw new CliError(`"${prefix}": a digest (sha256: and 64 hex digits) or its first 12 hex digits at least`);
  const { items } = await client.list<Artifact>(`${base}/artifacts`);
  const matches = items.filter((a) => a.digest.startsWith(prefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new CliError(`no artifact ${ref.repository}@${prefix}… (berth artifact list ${ref.repository} shows them)`);
  throw new CliError(`${ref.repository}@${prefix} is ambiguous: ${matches.map((a) => a.digest).join(', ')}`);
}

/** Config media types of plain container images: the API reports them as the artifact type. */
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** The artifact type worth showing: that of a non-image artifact (a Helm chart, a signature…), else null. */
function otherArtifactType(a: Pick<Artifact, 'artifactType'>): string | null {
  return a.artifactType && !IMAGE_CONFIGS.has(a.artifactType) ? a.artifactType : null;
}

/** What kind of artifact: `docker image`, `oci index`…, or the artifact type of anything but an image. */
export function artifactKind(a: Pick<Artifact, 'mediaType' | 'artifactType'>): string {
  const other = otherArtifactType(a);
  if (other) return other;
  switch (a.mediaType) {
    case MEDIA_TYPES.ociManifest:
      return 'oci image';
    case MEDIA_TYPES.ociIndex:
      return 'oci index';
    case MEDIA_TYPES.dockerManifest:
      return 'docker image';
    case MEDIA_TYPES.dockerManifestList:
      return 'docker manifest list';
    default:
      return a.mediaType;
  }
}

const platformText = (p: Platform): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/** `berth artifact list|show|delete`, over /api/v1/repositories/{name}/artifacts. */
export function artifactCommand(program: Command): void {
  const artifact = program.command('artifact').description('the artifacts (images, indexes, other OCI artifacts) of a repository');

  withCommon(artifact.command('list <repository>').description("a repository's artifacts, newest first (platform images show under their index)"))
    .action(async (repository: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const { repository: name } = parseReference(repository, new URL(client.baseUrl).host);
      const { items } = await client.list<Artifact>(`${repositoryPath(name)}/artifacts`);
      if (opts.json) return printJSON(items);
      printTable(
        ['DIGEST', 'TAGS', 'TYPE', 'SIZE', 'PUSHED BY', 'PUSHED', 'LAST PULLED'],
        items.map((a) => [shortDigest(a.digest), a.tags.join(',') || '-', artifactKind(a), formatBytes(a.size), a.pushedBy ?? '-', formatTime(a.pushedAt), formatTime(a.lastPulledAt, 'never')]),
      );
    });

  withCommon(artifact.command('show <reference>').description('one artifact: REPOSITORY:TAG or REPOSITORY@DIGEST'))
    .action(async (text: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const ref = artifactReference(text, client);
      const a = await findArtifact(client, ref);
      if (opts.json) return printJSON(a);
      printFields([
        ['Repository', ref.repository],
        ['Digest', a.digest],
        ['Type', artifactKind(a)],
        ['Media type', a.mediaType],
        ['Tags', a.tags.join(', ') || '-'],
        ...(manifestKind(a.mediaType) === 'index' || a.platforms.length > 0 ? ([['Platforms', a.platforms.map(platformText).join(', ') || '-']] as [string, string][]) : []),
        ['Size', formatBytes(a.size)],
        ['Pushed', `${formatTime(a.pushedAt)}${a.pushedBy ? ` by ${a.pushedBy}` : ''}`],
        ['Last pulled', formatTime(a.lastPulledAt, 'never')],
      ]);
    });

  withCommon(artifact.command('delete <reference>').description('delete an artifact with every tag on it: REPOSITORY@DIGEST (to remove only a tag: berth tag delete)'))
    .action(async (text: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const ref = artifactReference(text, client);
      if (ref.tag !== undefined) {
        throw new CliError(
          `artifact delete takes a digest, REPOSITORY@sha256:…, as it removes the artifact with every tag on it ` +
            `("berth artifact show ${text}" shows the digest; "berth tag delete ${text}" removes only the tag)`,
        );
      }
      const a = await findArtifact(client, ref);
      await client.delete(`${repositoryPath(ref.repository)}/artifacts/${segment(a.digest)}`);
      if (opts.json) return printJSON({ repository: ref.repository, digest: a.digest, tags: a.tags, deleted: true });
      console.log(`deleted artifact ${ref.repository}@${a.digest}${a.tags.length ? ` and its tags ${a.tags.join(', ')}` : ' (it had no tags)'}`);
    });
}
