import type { Route } from '../context.ts';
import { sendJSON } from '../respond.ts';
import { blobRoutes } from './blobs.ts';
import { echoRoutes } from './echo.ts';
import type { OciDeps } from './deps.ts';
import { listingRoutes } from './listings.ts';
import { manifestRoutes } from './manifests.ts';
import { explainQuotaRefusals } from './quota.ts';
import { uploadRoutes } from './uploads.ts';

/**
 * Every `/v2` route, in matching order (uploads before blobs: `blobs/uploads/` is not a digest).
 * A push refused for its project's quota is explained in the access log and the audit log.
 */
export function ociRoutes(deps: OciDeps): Route[] {
  return explainQuotaRefusals([
    ...echoRoutes(deps),
    {
      name: 'base',
      methods: ['GET', 'HEAD'],
      pattern: /^\/v2\/?$/,
      handler: async (ctx) => {
        await deps.access.require(ctx, []);
        sendJSON(ctx.res, 200, {});
      },
    },
    ...listingRoutes(deps),
    ...uploadRoutes(deps),
    ...blobRoutes(deps),
    ...manifestRoutes(deps),
  ], deps.registry);
}
