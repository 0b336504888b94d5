import type { Route } from '../context.ts';
import { sendEmpty } from '../respond.ts';
import { explainRefusal, sessionOrigin } from './diagnosis.ts';
import { contentLength, hasBody, repositoryAccess, repositoryParam, segmentParam, uploadRange, type OciDeps } from './deps.ts';

/** The upload endpoints: start (plain, monolithic, mount), chunk, complete, status, cancel. */
export function uploadRoutes(deps: OciDeps): Route[] {
  const { registry, access } = deps;
  const location = (name: string, id: string) => `/v2/${name}/blobs/uploads/${id}`;
  const sessionHeaders = (name: string, id: string, size: number) => ({
    Location: location(name, id),
    Range: uploadRange(size),
    'Docker-Upload-UUID': id,
  });
  return [
    {
      name: 'upload-start',
      methods: ['POST'],
      pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/,
      handler: async (ctx, [rawName]) => {
        const name = repositoryParam(rawName);
        const grant = await access.require(ctx, [repositoryAccess(name, 'pull', 'push')]);
        await deps.proxy?.upstreams.refusePush(name);
        const createdBy = grant.identity.kind === 'user' ? grant.identity.name : undefined;
        const mount = ctx.query.get('mount');
        const from = ctx.query.get('from');
        if (mount !== null && from !== null && from !== name) {
          const source = repositoryParam(from);
          if (await grant.can('repository', source, 'pull')) {
            const mounted = await registry.blobs.mount(name, mount, source);
            if (mounted) {
              sendEmpty(ctx.res, 201, { Location: `/v2/${name}/blobs/${mounted.digest}`, 'Docker-Content-Digest': mounted.digest });
              return;
            }
          }
        }
        const digest = ctx.query.get('digest');
        if (digest !== null) {
          const blob = await registry.uploads.monolithic(name, digest, ctx.req, createdBy, contentLength(ctx.req));
          sendEmpty(ctx.res, 201, { Location: `/v2/${name}/blobs/${blob.digest}`, 'Docker-Content-Digest': blob.digest });
          return;
        }
        const session = await registry.uploads.start(name, createdBy, sessionOrigin(ctx, access.externalURL(ctx)));
        sendEmpty(ctx.res, 202, sessionHeaders(name, session.id, 0));
      },
    },
    {
      name: 'upload',
      methods: ['GET', 'PATCH', 'PUT', 'DELETE'],
      pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
      handler: async (ctx, [rawName, rawId]) => {
        const name = repositoryParam(rawName);
        const id = segmentParam(rawId);
        try {
          await access.require(ctx, [repositoryAccess(name, 'pull', 'push')]);
        } catch (err) {
          throw await explainRefusal(ctx, err, await registry.uploads.record(name, id), deps);
        }
        const chunk = { contentRange: ctx.req.headers['content-range'], contentLength: contentLength(ctx.req) };
        switch (ctx.req.method) {
          case 'GET': {
            const status = await registry.uploads.status(name, id);
            sendEmpty(ctx.res, 204, sessionHeaders(name, id, status.size));
            return;
          }
          case 'PATCH': {
            const status = await registry.uploads.append(name, id, ctx.req, chunk);
            sendEmpty(ctx.res, 202, sessionHeaders(name, id, status.size));
            return;
          }
          case 'PUT': {
            const blob = await registry.uploads.complete(name, id, ctx.query.get('digest') ?? undefined, hasBody(ctx.req) ? ctx.req : undefined, chunk);
            sendEmpty(ctx.res, 201, { Location: `/v2/${name}/blobs/${blob.digest}`, 'Docker-Content-Digest': blob.digest });
            return;
          }
          default:
            await registry.uploads.cancel(name, id);
            sendEmpty(ctx.res, 204);
        }
      },
    },
  ];
}
