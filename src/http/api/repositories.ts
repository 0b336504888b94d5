import { z } from 'zod';
import { isDigest } from '../../domain/digest.ts';
import { parseManifest, type ParsedManifest } from '../../domain/manifest.ts';
import { manifestKind } from '../../domain/media-types.ts';
import { MAX_NAME_LENGTH, assertRepositoryName, isTag, projectOf } from '../../domain/names.ts';
import { identityName, type Identity } from '../../auth/identity.ts';
import type { Permission } from '../../auth/roles.ts';
import type { ManifestRow } from '../../metadata/schema.ts';
import { ARTIFACT_SORTS } from '../../metadata/artifacts.ts';
import { REPOSITORY_SORTS } from '../../metadata/repositories.ts';
import { configSummary, manifestSummary, readConfig, summarise } from './artifact-detail.ts';
import type { Context } from '../context.ts';
import { audit, iso, isoTime, notFound, pageOf, pageQuery, paged, projectAccess, projectName, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

const repositoryName = z
  .string()
  .max(MAX_NAME_LENGTH)
  .refine((name) => {
    try {
      assertRepositoryName(name);
      return true;
    } catch {
      return false;
    }
  }, 'a repository name: lower-case path components joined by "/"')
  .describe('the repository name; its "/" may be sent as is or as %2F (use %2F when a component is "artifacts" or "tags")');
const reference = z.string().refine((r) => isDigest(r) || isTag(r), 'a digest (sha256:…) or a tag').describe('a digest or a tag');
const digestOnly = z.string().refine(isDigest, 'a digest such as sha256:… (delete tags with DELETE …/tags/{tag})').describe('the digest of the artifact');

/** Tags shown per artifact in a list (an artifact may carry 100,000); `tagCount` says how many it has. */
const LIST_TAGS = 20;
/** Tags shown in an artifact's detail. */
const DETAIL_TAGS = 100;

const platform = z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() });
const artifact = z.object({
  digest: z.string(),
  mediaType: z.string(),
  artifactType: z.string().nullable(),
  size: z.number().int().describe('bytes: the manifest and, each counted once, the blobs and child manifests it references'),
  tags: z.array(z.string()).describe(`its first tags by name: at most ${LIST_TAGS} in a list, ${DETAIL_TAGS} in the detail (see tagCount)`),
  tagCount: z.number().int().describe('how many tags it has'),
  platforms: z.array(platform).describe("an index's platforms; empty for single images"),
  pushedBy: z.string().nullable(),
  pushedAt: isoTime,
  lastPulledAt: isoTime.nullable(),
  subject: z.string().nullable().describe('the artifact this one refers to (a signature, an SBOM: its subject), null for most'),
});
const referrer = z.object({
  digest: z.string(),
  mediaType: z.string(),
  artifactType: z.string().nullable(),
  size: z.number().int().describe("the referrer manifest's bytes"),
  annotations: z.record(z.string(), z.string()),
  pushedAt: isoTime,
});
const artifactDetail = artifact.extend({
  manifest: manifestSummary.nullable().describe('the manifest as parsed (null if its content cannot be read)'),
  config: configSummary.nullable().describe(`an image config's summary; null for other config types, indexes, and configs that are missing, over 4 MiB or not JSON`),
  referrers: z.array(referrer).describe('artifacts whose subject is this one (signatures, SBOMs…), oldest first, as /v2/{name}/referrers/{digest} lists them'),
});
const repository = z.object({ name: z.string(), project: z.string(), artifactCount: z.number().int(), createdAt: isoTime });

type Platform = z.infer<typeof platform>;

/** Indexes' platforms by digest (content-addressed, so never stale), so a list page reads storage once per index. */
const PLATFORMS_CACHED = 10_000;

/** `/repositories`: repositories, their artifacts (with tags, platforms, who pushed and when), and deletion. */
export function repositoryOperations(services: ApiServices): Operation[] {
  const { meta, registry, store } = services;

  /** The repository's id, if the caller has `needed` in its project (404 for invisible projects). */
  async function repositoryFor(identity: Identity, name: string, needed: Permission): Promise<number> {
    await projectAccess(services, identity, projectOf(name), needed);
    const id = await meta.repositories.currentId(name);
    if (id === undefined) throw notFound(`repository "${name}" not found`);
    return id;
  }

  const platformCache = new Map<string, Platform[]>();

  /** The stored manifest, parsed as its push was; undefined (logged) when it cannot be read or parsed. */
  async function parsedManifest(ctx: Context, row: ManifestRow): Promise<ParsedManifest | undefined> {
    try {
      return parseManifest(await store.readAll(row.digest), row.media_type);
    } catch (err) {
      ctx.log.warn({ err, digest: row.digest }, 'cannot read stored manifest');
      return undefined;
    }
  }

  /** The platforms an index lists (attestation entries, "unknown/unknown", left out). */
  async function platforms(ctx: Context, row: ManifestRow, parsed?: ParsedManifest): Promise<Platform[]> {
    if (manifestKind(row.media_type) !== 'index') return [];
    const cached = platformCache.get(row.digest);
    if (cached) return cached;
    const index = parsed ?? (await parsedManifest(ctx, row));
    if (!index) return [];
    const found = index.manifests.flatMap(({ platform: p }) => (p && p.os !== 'unknown' ? [p] : []));
    if (platformCache.size >= PLATFORMS_CACHED) platformCache.clear();
    platformCache.set(row.digest, found);
    return found;
  }

  /** List entries of `rows`: their tags and their sizes each read in one query for the page. */
  async function views(ctx: Context, repositoryId: number, rows: ManifestRow[], maxTags = LIST_TAGS, parsed?: ParsedManifest) {
    const digests = rows.map((r) => r.digest);
    const [tags, sizes] = await Promise.all([meta.artifacts.tagPreviews(repositoryId, digests, maxTags), meta.artifacts.totalSizes(repositoryId, digests)]);
    return Promise.all(
      rows.map(async (row) => ({
        digest: row.digest,
        mediaType: row.media_type,
        artifactType: row.artifact_type,
        size: sizes.get(row.digest) ?? Number(row.size),
        tags: tags.get(row.digest)?.tags ?? [],
        tagCount: tags.get(row.digest)?.count ?? 0,
        platforms: await platforms(ctx, row, parsed),
        pushedBy: row.pushed_by,
        pushedAt: iso(row.created_at),
        lastPulledAt: iso(row.last_pulled_at),
        subject: row.subject_digest,
      })),
    );
  }

  async function findArtifact(repositoryId: number, name: string, ref: string): Promise<ManifestRow> {
    const row = isDigest(ref) ? await meta.manifests.byDigest(repositoryId, ref) : await meta.manifests.byTag(repositoryId, ref);
    if (!row) throw notFound(`artifact "${ref}" not found in repository "${name}"`);
    return row;
  }

  return [
    operation({
      id: 'listRepositories',
      method: 'GET',
      path: '/repositories',
      tag: 'repositories',
      summary: "Repositories of a project (repository.list), or of every project the caller may see",
      query: z.object({
        project: projectName.optional(),
        q: z.string().max(255).optional().describe('substring of the repository name'),
        sort: z.enum(REPOSITORY_SORTS).default('name').describe('order: name or createdAt, descending with a leading "-"'),
        ...pageQuery,
      }),
      response: pageOf(repository),
      errors: [403, 404],
      handler: async ({ ctx, identity, query }) => {
        let projectIds: number[] | undefined;
        if (query.project !== undefined) projectIds = [(await projectAccess(services, identity, query.project, 'repository.list')).project.id];
        else {
          const visible = await services.authorizer.visibility(identity);
          projectIds = visible.all ? undefined : visible.projectIds;
        }
        const found = await meta.repositories.list({ ...(projectIds ? { projectIds } : {}), ...window(query), sort: query.sort, ...(query.q ? { nameLike: query.q } : {}) });
        const counts = await meta.artifacts.artifactCounts(found.items.map((r) => r.id));
        const items = found.items.map((r) => ({ name: r.name, project: projectOf(r.name), artifactCount: counts.get(r.id) ?? 0, createdAt: iso(r.created_at) }));
        return paged(ctx, query, items, found.total);
      },
    }),
    operation({
      id: 'listArtifacts',
      method: 'GET',
      path: '/repositories/{name+}/artifacts',
      tag: 'repositories',
      summary: "A repository's artifacts, newest first unless sorted otherwise (platform images show under their index) (repository.list)",
      params: z.object({ name: repositoryName }),
      query: z.object({
        q: z.string().max(150).optional().describe('only artifacts with a tag containing this text (ASCII case ignored), or whose digest starts with it ("sha256:" optional)'),
        sort: z
          .enum(ARTIFACT_SORTS)
          .default('-pushedAt')
          .describe('order, descending with a leading "-": pushedAt; tag (each artifact\'s first tag by name, untagged artifacts last); lastPulledAt (never pulled counts as longest ago)'),
        ...pageQuery,
      }),
      response: pageOf(artifact),
      errors: [403, 404],
      handler: async ({ ctx, identity, params, query }) => {
        const id = await repositoryFor(identity, params.name, 'repository.list');
        const found = await meta.artifacts.artifacts(id, { ...window(query), sort: query.sort, ...(query.q ? { q: query.q } : {}) });
        return paged(ctx, query, await views(ctx, id, found.items), found.total);
      },
    }),
    operation({
      id: 'getArtifact',
      method: 'GET',
      path: '/repositories/{name+}/artifacts/{reference}',
      tag: 'repositories',
      summary: 'One artifact by digest or tag, with its manifest, config summary and referrers (repository.list)',
      params: z.object({ name: repositoryName, reference }),
      response: artifactDetail,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const id = await repositoryFor(identity, params.name, 'repository.list');
        const row = await findArtifact(id, params.name, params.reference);
        const parsed = await parsedManifest(ctx, row);
        const [[view], config, referrers] = await Promise.all([
          views(ctx, id, [row], DETAIL_TAGS, parsed),
          readConfig(store, parsed?.config).catch((err: unknown) => {
            ctx.log.warn({ err, digest: row.digest }, 'cannot read image config');
            return null;
          }),
          // The referrers API's own query, so both list the same artifacts.
          meta.artifacts.referrersPushed(id, row.digest),
        ]);
        return {
          body: {
            ...view!,
            manifest: parsed ? summarise(parsed) : null,
            config,
            referrers: referrers.map((r) => ({ digest: r.digest, mediaType: r.mediaType, artifactType: r.artifactType ?? null, size: r.size, annotations: r.annotations ?? {}, pushedAt: iso(r.pushedAt) })),
          },
        };
      },
    }),
    operation({
      id: 'deleteArtifact',
      method: 'DELETE',
      path: '/repositories/{name+}/artifacts/{reference}',
      tag: 'repositories',
      summary: 'Delete an artifact and every tag on it (repository.delete); 403 when one of its tags is immutable',
      params: z.object({ name: repositoryName, reference: digestOnly }),
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const id = await repositoryFor(identity, params.name, 'repository.delete');
        const digest = params.reference;
        await findArtifact(id, params.name, digest);
        const tags = (await meta.artifacts.tagsOf(id, [digest])).get(digest) ?? [];
        await registry.manifests.delete(params.name, digest, identityName(identity));
        await audit(services, ctx, identity, {
          action: 'delete',
          resourceType: 'artifact',
          resource: `${params.name}@${digest}`,
          project: projectOf(params.name),
          detail: { digest, tags },
        });
        return { status: 204 };
      },
    }),
    operation({
      id: 'deleteTag',
      method: 'DELETE',
      path: '/repositories/{name+}/tags/{tag}',
      tag: 'repositories',
      summary: 'Delete a tag; the artifact stays, reachable by digest (repository.delete); 403 when the tag is immutable',
      params: z.object({ name: repositoryName, tag: z.string().refine(isTag, 'a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}') }),
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        const id = await repositoryFor(identity, params.name, 'repository.delete');
        const row = await meta.manifests.byTag(id, params.tag);
        const immutable = await meta.immutability.checkFor(params.name);
        if (!row || !(await meta.manifests.deleteTag(id, params.tag, identityName(identity), immutable))) throw notFound(`tag "${params.tag}" not found in repository "${params.name}"`);
        await audit(services, ctx, identity, {
          action: 'delete',
          resourceType: 'tag',
          resource: `${params.name}:${params.tag}`,
          project: projectOf(params.name),
          detail: { tag: params.tag, digest: row.digest },
        });
        return { status: 204 };
      },
    }),
    operation({
      id: 'deleteRepository',
      method: 'DELETE',
      path: '/repositories/{name+}',
      tag: 'repositories',
      summary: 'Delete a repository with all its artifacts and tags (repository.delete); 403 while it holds an immutable tag',
      params: z.object({ name: repositoryName }),
      status: 204,
      errors: [403, 404],
      handler: async ({ ctx, identity, params }) => {
        await repositoryFor(identity, params.name, 'repository.delete');
        if (!(await meta.repositories.delete(params.name, await meta.immutability.checkFor(params.name)))) throw notFound(`repository "${params.name}" not found`);
        await audit(services, ctx, identity, { action: 'delete', resourceType: 'repository', resource: params.name, project: projectOf(params.name) });
        return { status: 204 };
      },
    }),
  ];
}
