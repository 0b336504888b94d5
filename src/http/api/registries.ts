import { z } from 'zod';
import type { RegistryRow } from '../../metadata/schema.ts';
import { ENDPOINT_NAME, ENDPOINT_NAME_RULE, type EndpointSettings } from '../../remote/endpoints.ts';
import { REGISTRY_TYPES } from '../../remote/types.ts';
import { audit, iso, isoTime, notFound, pageOf, pageQuery, paged, requireAdmin, window, type ApiServices } from './common.ts';
import { operation, type Operation } from './route.ts';

/** A registry endpoint's name (as in `berth registry add NAME`). */
export const registryName = z.string().regex(ENDPOINT_NAME, ENDPOINT_NAME_RULE);

const TYPE_HELP = 'berth, distribution (CNCF Distribution or any OCI registry), harbor, dockerhub, ghcr, quay or generic';

/** The settings fields, as creation takes them (all optional on a change). */
const fields = {
  type: z.enum(REGISTRY_TYPES).describe(TYPE_HELP),
  url: z.string().max(2048).describe('http(s)://host[:port], no path; default for dockerhub, ghcr and quay: their public registry'),
  username: z.string().max(255).describe('with password; absent: anonymous access'),
  password: z.string().max(4096).describe('password or access token, with username; write-only: stored sealed, never returned'),
  caFile: z.string().max(1024).nullable().describe('absolute path on the server of a PEM file of CA certificates trusted for this registry (beside the system ones)'),
  insecure: z.boolean().describe('do not verify the TLS certificate (test setups only)'),
  description: z.string().max(1024).nullable(),
};

const createBody = z.strictObject({
  name: registryName,
  type: fields.type,
  url: fields.url.optional(),
  username: fields.username.optional(),
  password: fields.password.optional(),
  caFile: fields.caFile.optional(),
  insecure: fields.insecure.optional(),
  description: fields.description.optional(),
});

const updateBody = z.strictObject({
  type: fields.type.optional(),
  url: fields.url.optional(),
  username: fields.username.nullable().optional().describe('a new username needs its password; null: no credentials any more'),
  password: fields.password.optional(),
  caFile: fields.caFile.optional(),
  insecure: fields.insecure.optional(),
  description: fields.description.optional(),
});

const testBody = createBody.extend({ name: registryName.optional().describe('ignored: the settings are tested, not saved') });

const registry = z.object({
  name: z.string(),
  type: z.enum(REGISTRY_TYPES),
  url: z.string(),
  username: z.string().nullable(),
  hasCredential: z.boolean().describe('whether a password or token is saved (it is never returned)'),
  caFile: z.string().nullable(),
  insecure: z.boolean(),
  description: z.string().nullable(),
  createdBy: z.string().nullable(),
  createdAt: isoTime,
  updatedAt: isoTime,
});
const registryDetail = registry.extend({
  usedBy: z.array(z.string()).describe('the proxy-cache projects pulling through it'),
  usedByRules: z.array(z.string()).describe('the replication rules copying to or from it'),
});

const testResult = z.object({
  ok: z.boolean().describe('the registry answered as a registry and accepted the credentials (or needs none)'),
  auth: z.enum(['none', 'basic', 'bearer']).nullable().describe('how the registry asks to be authenticated; null when it was not reached'),
  realm: z.string().nullable().describe('the token realm of a Bearer registry'),
  authenticated: z.boolean(),
  elapsedMs: z.number().int(),
  error: z
    .string()
    .optional()
    .describe('what failed, beginning with unreachable, TLS, timeout, credentials refused, authentication required, not a registry, registry error or unusable'),
});

const nameParam = z.object({ name: registryName });

function view(row: RegistryRow) {
  return {
    name: row.name,
    type: row.type as (typeof REGISTRY_TYPES)[number],
    url: row.url,
    username: row.username,
    hasCredential: row.credential !== null,
    caFile: row.ca_file,
    insecure: row.insecure === 1,
    description: row.description,
    createdBy: row.created_by,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
  };
}

/** The settings of a validated body (absent fields left out: unchanged, or defaulted). */
function settingsOf(body: object): EndpointSettings {
  const settings: EndpointSettings = {};
  for (const [key, value] of Object.entries(body)) if (value !== undefined && key !== 'name') (settings as Record<string, unknown>)[key] = value;
  return settings;
}

/**
 * `/registries`: registry endpoints — the upstreams of proxy-cache projects and the peers of
 * replication — for system administrators only. Credentials go in and never come out (`hasCredential`).
 */
export function registryOperations(services: ApiServices): Operation[] {
  const { meta, endpoints } = services;

  async function find(name: string): Promise<RegistryRow> {
    const row = await meta.registries.find(name);
    if (!row) throw notFound(`registry endpoint "${name}" not found`);
    return row;
  }

  return [
    operation({
      id: 'listRegistries',
      method: 'GET',
      path: '/registries',
      tag: 'registries',
      summary: 'Registry endpoints, by name (system administrators)',
      query: z.object({ q: z.string().max(255).optional().describe('substring of the endpoint name'), ...pageQuery }),
      response: pageOf(registry),
      errors: [403],
      handler: async ({ ctx, identity, query }) => {
        await requireAdmin(services, identity);
        const found = await meta.registries.list({ ...window(query), ...(query.q ? { nameLike: query.q } : {}) });
        return paged(ctx, query, found.items.map(view), found.total);
      },
    }),
    operation({
      id: 'createRegistry',
      method: 'POST',
      path: '/registries',
      tag: 'registries',
      summary: 'Register an upstream registry (system administrators)',
      description: 'The password is sealed at rest (secrets.key, or a key derived from the signing key) and never returned. Test settings first with POST /registries/test.',
      body: createBody,
      status: 201,
      response: registryDetail,
      errors: [403, 409],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const createdBy = identity.kind === 'anonymous' ? null : identity.name;
        const row = await endpoints.create(body.name, settingsOf(body), createdBy);
        await audit(services, ctx, identity, {
          action: 'registry.create',
          resourceType: 'registry',
          resource: row.name,
          detail: { type: row.type, url: row.url, username: row.username, hasCredential: row.credential !== null, caFile: row.ca_file, insecure: row.insecure === 1 },
        });
        return { status: 201, headers: { Location: `/api/v1/registries/${row.name}` }, body: { ...view(row), usedBy: [], usedByRules: [] } };
      },
    }),
    operation({
      id: 'testRegistrySettings',
      method: 'POST',
      path: '/registries/test',
      tag: 'registries',
      summary: 'Test unsaved settings: the real challenge and token/Basic flow against the registry (system administrators)',
      body: testBody,
      response: testResult,
      errors: [403],
      handler: async ({ ctx, identity, body }) => {
        await requireAdmin(services, identity);
        const result = (await endpoints.test(settingsOf(body)))!;
        ctx.log.info({ ok: result.ok, auth: result.auth, elapsedMs: result.elapsedMs }, 'registry settings tested');
        return { body: result };
      },
    }),
    operation({
      id: 'getRegistry',
      method: 'GET',
      path: '/registries/{name}',
      tag: 'registries',
      summary: 'A registry endpoint and the proxy-cache projects using it (system administrators)',
      params: nameParam,
      response: registryDetail,
      errors: [403, 404],
      handler: async ({ identity, params }) => {
        await requireAdmin(services, identity);
        const row = await find(params.name);
        return { body: { ...view(row), usedBy: await meta.registries.usedBy(row.id), usedByRules: await meta.registries.usedByRules(row.id) } };
      },
    }),
    operation({
      id: 'updateRegistry',
      method: 'PATCH',
      path: '/registries/{name}',
      tag: 'registries',
      summary: 'Change a registry endpoint: URL, type, credentials, TLS options, description (system administrators)',
      description: 'Absent fields are unchanged. A new password alone keeps the username; username null removes the credentials. The name cannot change.',
      params: nameParam,
      body: updateBody,
      response: registryDetail,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        await requireAdmin(services, identity);
        const updated = await endpoints.update(params.name, settingsOf(body));
        if (!updated) throw notFound(`registry endpoint "${params.name}" not found`);
        const { row, changed } = updated;
        if (changed.length > 0) {
          // Which fields changed, and the new values of those that are not secret.
          const detail: Record<string, unknown> = { changed };
          for (const key of ['type', 'url', 'username', 'caFile', 'insecure'] as const) if (body[key] !== undefined) detail[key] = body[key];
          await audit(services, ctx, identity, { action: 'registry.update', resourceType: 'registry', resource: row.name, detail });
        }
        return { body: { ...view(row), usedBy: await meta.registries.usedBy(row.id), usedByRules: await meta.registries.usedByRules(row.id) } };
      },
    }),
    operation({
      id: 'deleteRegistry',
      method: 'DELETE',
      path: '/registries/{name}',
      tag: 'registries',
      summary: 'Delete a registry endpoint (system administrators); 409 while proxy-cache projects use it, naming them',
      params: nameParam,
      status: 204,
      errors: [403, 404, 409],
      handler: async ({ ctx, identity, params }) => {
        await requireAdmin(services, identity);
        if (!(await meta.registries.delete(params.name))) throw notFound(`registry endpoint "${params.name}" not found`);
        await audit(services, ctx, identity, { action: 'registry.delete', resourceType: 'registry', resource: params.name });
        return { status: 204 };
      },
    }),
    operation({
      id: 'testRegistry',
      method: 'POST',
      path: '/registries/{name}/test',
      tag: 'registries',
      summary: 'Test a saved registry endpoint, optionally with unsaved changes laid over it (system administrators)',
      description: 'Runs the real challenge and token/Basic flow with the saved (or given) credentials. Always 200 once the settings are valid: `ok` and `error` say what happened.',
      params: nameParam,
      body: updateBody,
      response: testResult,
      errors: [403, 404],
      handler: async ({ ctx, identity, params, body }) => {
        await requireAdmin(services, identity);
        const result = await endpoints.test(params.name, settingsOf(body));
        if (!result) throw notFound(`registry endpoint "${params.name}" not found`);
        ctx.log.info({ registry: params.name, ok: result.ok, auth: result.auth, elapsedMs: result.elapsedMs }, 'registry endpoint tested');
        return { body: result };
      },
    }),
  ];
}
