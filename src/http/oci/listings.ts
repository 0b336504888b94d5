import type { Route } from '../context.ts';
import { sendJSON } from '../respond.ts';
import { parsePageSize, MAX_PAGE, type Page } from '../../registry/listings.ts';
import { parseDigest } from '../../domain/digest.ts';
import { repositoryAccess, repositoryParam, segmentParam, type OciDeps } from './deps.ts';

/** The `Link` header pointing at the next page, relative like every URL Berth hands out. */
function linkHeader(path: string, page: Pick<Page<string>, 'next' | 'n'>): Record<string, string> {
  if (page.next === undefined) return {};
  return { Link: `<${path}?n=${page.n}&last=${encodeURIComponent(page.next)}>; rel="next"` };
}

/** Tags list, catalog and referrers. */
export function listingRoutes(deps: OciDeps): Route[] {
  const { registry, access } = deps;
  return [
    {
      name: 'tags',
      methods: ['GET'],
      pattern: /^\/v2\/(.+)\/tags\/list$/,
      handler: async (ctx, [rawName]) => {
        const name = repositoryParam(rawName);
        await access.require(ctx, [repositoryAccess(name, 'pull')]);
        const n = parsePageSize(ctx.query.get('n'), MAX_PAGE);
        const page = await registry.listings.tags(name, n, ctx.query.get('last') ?? undefined);
        // The body comes serialised (and, for first pages, cached) from the listing service.
        ctx.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': page.body.length, ...linkHeader(`/v2/${name}/tags/list`, page) });
        ctx.res.end(page.body);
      },
    },
    {
      name: 'catalog',
      methods: ['GET'],
      pattern: /^\/v2\/_catalog$/,
      handler: async (ctx) => {
        const grant = await access.require(ctx, [{ type: 'registry', name: 'catalog', actions: ['*'] }]);
        const n = parsePageSize(ctx.query.get('n'), 1000);
        const visible = await deps.authorizer.visibility(grant.identity);
        const page = await registry.listings.catalog(n, ctx.query.get('last') ?? undefined, visible.all ? undefined : visible.projectIds);
        sendJSON(ctx.res, 200, { repositories: page.items }, linkHeader('/v2/_catalog', page));
      },
    },
    {
      name: 'referrers',
      methods: ['GET'],
      pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/,
      handler: async (ctx, [rawName, rawDigest]) => {
        const name = repositoryParam(rawName);
        const digest = parseDigest(segmentParam(rawDigest)).value;
        await access.require(ctx, [repositoryAccess(name, 'pull')]);
        const artifactType = ctx.query.get('artifactType') ?? undefined;
        const upstream = deps.proxy && (await deps.proxy.upstreams.of(name));
        // A proxy-cache project passes the upstream's referrers on (signatures, SBOMs pushed there);
        // when the upstream cannot answer, those it has cached.
        const remote = upstream && (await upstream.client.referrers(upstream.remote, digest).catch(() => undefined));
        if (remote) {
          ctx.res.writeHead(200, { 'Content-Type': remote.mediaType, 'Content-Length': remote.size });
          ctx.res.end(remote.body);
          return;
        }
        const index = await registry.listings.referrers(name, digest, artifactType);
        const body = JSON.stringify(index);
        ctx.res.writeHead(200, {
          'Content-Type': index.mediaType,
          'Content-Length': Buffer.byteLength(body),
          ...(artifactType !== undefined ? { 'OCI-Filters-Applied': 'artifactType' } : {}),
        });
        ctx.res.end(body);
      },
    },
  ];
}
