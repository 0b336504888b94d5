import type { Route } from '../context.ts';
import { readSmallBody } from '../body.ts';
import { sendEmpty } from '../respond.ts';
import { repositoryAccess, repositoryParam, segmentParam, type OciDeps } from './deps.ts';

/** `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`. */
export function manifestRoutes(deps: OciDeps): Route[] {
  const { registry, access } = deps;
  return [
    {
      name: 'manifest',
      methods: ['GET', 'HEAD', 'PUT', 'DELETE'],
      pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
      handler: async (ctx, [rawName, rawReference]) => {
        const name = repositoryParam(rawName);
        const reference = segmentParam(rawReference);
        const { req, res } = ctx;
        switch (req.method) {
          case 'PUT': {
            await access.require(ctx, [repositoryAccess(name, 'pull', 'push')]);
            const body = await readSmallBody(req, deps.maxManifestBytes);
            const pushed = await registry.manifests.put(name, reference, body, req.headers['content-type']);
            const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${pushed.digest}`, 'Docker-Content-Digest': pushed.digest };
            if (pushed.subject) headers['OCI-Subject'] = pushed.subject;
            sendEmpty(res, 201, headers);
            return;
          }
          case 'DELETE':
            await access.require(ctx, [repositoryAccess(name, 'delete')]);
            await registry.manifests.delete(name, reference);
            sendEmpty(res, 202);
            return;
          default: {
            await access.require(ctx, [repositoryAccess(name, 'pull')]);
            const accept = req.headers.accept;
            const info = req.method === 'HEAD' ? await registry.manifests.stat(name, reference, accept) : await registry.manifests.get(name, reference, accept);
            res.writeHead(200, {
              'Content-Type': info.mediaType,
              'Content-Length': info.size,
              'Docker-Content-Digest': info.digest,
              ETag: `"${info.digest}"`,
            });
            res.end('body' in info ? info.body : undefined);
          }
        }
      },
    },
  ];
}
