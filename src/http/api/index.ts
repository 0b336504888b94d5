import { z } from 'zod';
import { VERSION } from '../../version.ts';
import type { Route } from '../context.ts';
import { ApiAuthenticator } from './authenticate.ts';
import { auditOperations } from './audit.ts';
import { jobOperations } from './jobs.ts';
import { jobStartOperations } from './job-start.ts';
import { gcOperations } from './gc.ts';
import { groupOperations } from './groups.ts';
import type { ApiDeps, ApiServices } from './common.ts';
import { immutabilityOperations } from './immutability.ts';
import { memberOperations } from './members.ts';
import { openAPIDocument } from './openapi.ts';
import { projectOperations } from './projects.ts';
import { registryOperations } from './registries.ts';
import { replicationOperations } from './replication.ts';
import { repositoryOperations } from './repositories.ts';
import { retentionOperations } from './retention.ts';
import { robotOperations } from './robots.ts';
import { operation, toRoute, type ApiResult, type Operation } from './route.ts';
import { sessionOperations } from './session.ts';
import { settingsOperations } from './settings.ts';
import { connectionOperations } from './connection.ts';
import { ssoOperations } from './sso.ts';
import { systemOperations } from './system.ts';
import { tokenOperations } from './tokens.ts';
import { userOperations } from './users.ts';
import { webhookOperations } from './webhooks.ts';

export type { ApiDeps } from './common.ts';

/** Every operation of the management API, including the document that describes them all. */
export function apiOperations(services: ApiServices): Operation[] {
  // Order matters where paths overlap: /users/me/tokens before /users/{name}; a repository's
  // artifacts and tags before the repository itself.
  const operations = [
    ...systemOperations(services),
    ...settingsOperations(services),
    ...connectionOperations(services),
    ...sessionOperations(services),
    ...ssoOperations(services),
    ...tokenOperations(services),
    ...userOperations(services),
    ...projectOperations(services),
    ...memberOperations(services),
    ...groupOperations(services),
    ...immutabilityOperations(services),
    ...retentionOperations(services),
    ...robotOperations(services),
    ...repositoryOperations(services),
    ...auditOperations(services),
    ...jobOperations(services),
    ...jobStartOperations(services),
    ...gcOperations(services),
    ...registryOperations(services),
    ...replicationOperations(services),
    ...webhookOperations(services),
  ];
  let document: Record<string, unknown> | undefined;
  const openapi: Operation = operation({
    id: 'openapi',
    method: 'GET',
    path: '/openapi.json',
    tag: 'system',
    summary: 'This OpenAPI 3.1 document, generated from the schemas that validate requests',
    auth: 'none',
    response: z.object({ openapi: z.string() }).loose(),
    handler: async (): Promise<ApiResult> => ({ body: (document ??= openAPIDocument(all, VERSION)) }),
  });
  const all: Operation[] = [...operations, openapi];
  return all;
}

/** The routes of `/api/v1` for the server's router. */
export function apiRoutes(deps: ApiDeps): Route[] {
  const sessions = new ApiAuthenticator(deps.meta, deps.passwords, deps.credentials, { sessionTTL: deps.config.api.sessionTTL, externalURLs: deps.config.externalURL });
  return apiOperations({ ...deps, sessions }).map((op) => toRoute(op, sessions));
}
