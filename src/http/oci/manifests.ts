import type { Route } from '../context.ts';
import { readSmallBody } from '../body.ts';
import { sendEmpty } from '../respond.ts';
import { identityName } from '../../auth/identity.ts';
import { projectOf } from '../../domain/names.ts';
import type { Context } from '../context.ts';
import type { Grant } from './access.ts';
import { admitPull, repositoryAccess, repositoryParam, segmentParam, type OciDeps } from './deps.ts';

/** `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`. */
export function manifestRoutes(deps: OciDeps): Route[] {
  const { registry, access } = deps;
  /** Writes an audit event without delaying or failing the response. */
  const audit = (ctx: Context, grant: Grant, action: string, resourceType: string, repository: string, detail: Record<string, string>) => {
    registry.audit
      .record({ actor: identityName(grant.identity) ?? 'anonymous', action, resourceType, resource: `${repository}${detail.tag ? `:${detail.tag}` : detail.digest ? `@${detail.digest}` : ''}`, project: projectOf(repository), client: ctx.origin.client, success: true, detail })
      .catch((err: unknown) => ctx.log.error({ err }, 'audit write failed'));
  };
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
            const grant = await access.require(ctx, [repositoryAccess(name, 'pull', 'push')]);
            await deps.proxy?.upstreams.refusePush(name);
            const body = await readSmallBody(req, deps.maxManifestBytes);
            const pushed = await registry.manifests.put(name, reference, body, req.headers['content-type'], identityName(grant.identity));
            audit(ctx, grant, 'push', 'artifact', name, { digest: pushed.digest, ...(reference.includes(':') ? {} : { tag: reference }) });
            const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${pushed.digest}`, 'Docker-Content-Digest': pushed.digest };
            if (pushed.subject) headers['OCI-Subject'] = pushed.subject;
            sendEmpty(res, 201, headers);
            return;
          }
          case 'DELETE': {
            const grant = await access.require(ctx, [repositoryAccess(name, 'delete')]);
            await registry.manifests.delete(name, reference, identityName(grant.identity));
            audit(ctx, grant, 'delete', reference.includes(':') ? 'artifact' : 'tag', name, reference.includes(':') ? { digest: reference } : { tag: reference });
            sendEmpty(res, 202);
            return;
          }
          default: {
            const { grant, target } = await admitPull(deps, ctx, name);
            const accept = req.headers.accept;
            const head = req.method === 'HEAD';
            const upstream = deps.proxy && (await deps.proxy.upstreams.of(target));
            const info = upstream
              ? await deps.proxy!.manifests.serve(upstream, target, reference, accept, head)
              : head
                ? await registry.manifests.stat(target, reference, accept)
                : await registry.manifests.get(target, reference, accept);
            if (req.method === 'GET' && registry.audit.recordPulls) audit(ctx, grant, 'pull', 'artifact', target, { digest: info.digest, reference });
            res.writeHead(200, {
              'Content-Type': info.mediaType,
              'Content-Length': info.size,
              'Docker-Content-Digest': info.digest,
              ETag: `"${info.digest}"`,
            });
            res.end('body' in info ? info.body : undefined);
            // After the answer, fire and forget, and only while a webhook wants pulls: never on the pull's path.
            if (req.method === 'GET' && registry.audit.pullEventsWanted()) {
              registry.audit
                .recordEvent({ type: 'artifact.pulled', repository: target, project: projectOf(target), digest: info.digest, tag: reference.includes(':') ? null : reference, actor: identityName(grant.identity) ?? null })
                .catch((err: unknown) => ctx.log.warn({ err }, 'pull event write failed'));
            }
          }
        }
      },
    },
  ];
}
