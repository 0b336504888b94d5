// The OpenAPI 3.1 document of the management API, generated from the operations' own zod schemas
// (OpenAPI 3.1 schemas are JSON Schema 2020-12, which `z.toJSONSchema` writes).
import { z } from 'zod';
import { ERROR_CODES } from '../../domain/errors.ts';
import { API_PREFIX, type Operation } from './route.ts';

type JSONSchema = Record<string, unknown>;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No content',
  400: 'INVALID: a field failed validation (detail.fields names each)',
  401: 'UNAUTHORIZED: no or invalid credentials',
  403: 'DENIED: the caller lacks the permission named in the message',
  404: 'NOT_FOUND: no such resource, or one the caller may not see',
  409: 'CONFLICT: the change conflicts with what exists',
  429: 'TOOMANYREQUESTS: too many failed logins from this address or for this user; Retry-After says when to try again',
  503: 'Unavailable',
};

/** A zod schema as an embeddable JSON Schema (no `$schema` key). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JSONSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JSONSchema;
  return rest;
}

/** Path or query parameters from an object schema, one per property. */
function parameters(schema: z.ZodType | undefined, location: 'path' | 'query'): JSONSchema[] {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input');
  const properties = (object.properties ?? {}) as Record<string, JSONSchema>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    const parameter: JSONSchema = { name, in: location, required: location === 'path' || required.has(name), schema: rest };
    if (typeof description === 'string') parameter.description = description;
    return parameter;
  });
}

function errorResponse(status: number): JSONSchema {
  return { description: STATUS_TEXT[status] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
}

function operationObject(op: Operation): JSONSchema {
  const object: JSONSchema = { operationId: op.id, tags: [op.tag], summary: op.summary };
  if (op.description) object.description = op.description;
  const params = [...parameters(op.params, 'path'), ...parameters(op.query, 'query')];
  if (params.length > 0) object.parameters = params;
  if (op.body) object.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(op.body, 'input') } } };
  const success: JSONSchema = { description: STATUS_TEXT[op.status] ?? 'OK' };
  if (op.response) success.content = { 'application/json': { schema: jsonSchema(op.response, 'output') } };
  const responses: Record<string, JSONSchema> = { [String(op.status)]: success };
  const errors = new Set([...(op.params || op.query || op.body ? [400] : []), ...(op.auth === 'none' ? [] : [401, 429]), ...op.errors]);
  for (const status of [...errors].sort()) responses[String(status)] = errorResponse(status);
  object.responses = responses;
  if (op.auth === 'none') object.security = [];
  return object;
}

/** The whole document for `operations`, served at /api/v1/openapi.json. */
export function openAPIDocument(operations: readonly Operation[], version: string): JSONSchema {
  const paths: Record<string, Record<string, JSONSchema>> = {};
  for (const op of operations) {
    const path = `${API_PREFIX}${op.path.replace(/\{(\w+)\+\}/g, '{$1}')}`;
    (paths[path] ??= {})[op.method.toLowerCase()] = operationObject(op);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth management API',
      version,
      description:
        'Projects, members, robot accounts, personal access tokens, repositories, artifacts, registry endpoints and the audit log of a Berth registry. ' +
        'Errors use the registry error envelope {"errors":[{"code","message","detail"}]}. Lists take page/pageSize and answer ' +
        '{items,total,page,pageSize} with a Link rel="next" header while more follow. Times are ISO 8601. Path parameters may be ' +
        'percent-encoded; repository names keep their "/".',
    },
    servers: [{ url: '/' }],
    security: [{ basicAuth: [] }, { bearerAuth: [] }, { sessionCookie: [] }, {}],
    paths,
    components: {
      securitySchemes: {
        basicAuth: { type: 'http', scheme: 'basic', description: 'user:password, user:personal access token, or robot$name:secret' },
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'a personal access token (berth_pat_…)' },
        sessionCookie: { type: 'apiKey', in: 'cookie', name: 'berth_session', description: 'from POST /api/v1/auth/session' },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['errors'],
          properties: {
            errors: {
              type: 'array',
              items: {
                type: 'object',
                required: ['code', 'message'],
                properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' }, detail: {} },
              },
            },
          },
        },
      },
    },
  };
}
