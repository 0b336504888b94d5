// The management API's one way of declaring an endpoint: method, path template and zod schemas in,
// a validated, authenticated `Route` and an OpenAPI operation out — so the document can never
// describe a request the server would validate differently.
import { z } from 'zod';
import { invalid, RegistryError, type FieldError } from '../../domain/errors.ts';
import { ANONYMOUS, type Identity } from '../../auth/identity.ts';
import { readSmallBody } from '../body.ts';
import type { Context, Route } from '../context.ts';
import { sendEmpty, sendJSON } from '../respond.ts';

/** Everything below this prefix is the management API. */
export const API_PREFIX = '/api/v1';

const BODY_LIMIT = 64 * 1024;

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a handler receives: the request, the caller, and its validated parameters. */
export interface ApiCall<P, Q, B> {
  ctx: Context;
  identity: Identity;
  params: P;
  query: Q;
  body: B;
}

/** What a handler answers: JSON `body` (none: an empty response, 204 unless `status` says otherwise). */
export interface ApiResult {
  status?: number;
  body?: unknown;
  /** A list sends the header once per value (several Set-Cookie). */
  headers?: Record<string, string | string[]>;
}

/** An endpoint as a module declares it. */
export interface OperationSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  /** The OpenAPI operationId, e.g. `createProject`. */
  id: string;
  method: Method;
  /** Below /api/v1. `{x}` is one path segment; `{x+}` one or more (repository names contain `/`). */
  path: string;
  /** The OpenAPI tag (resource group). */
  tag: string;
  summary: string;
  description?: string;
  /** `none`: the caller is not authenticated at all (health, the login itself); default: optional. */
  auth?: 'optional' | 'none';
  params?: P;
  query?: Q;
  body?: B;
  /** The success status (default 200) and, when it has a body, its schema (documentation only). */
  status?: number;
  response?: z.ZodType;
  /** Error statuses the operation answers besides 400/401 (documentation only). */
  errors?: number[];
  handler(call: ApiCall<z.output<P>, z.output<Q>, z.output<B>>): Promise<ApiResult>;
}

/** An endpoint with its types erased, as the router and the OpenAPI builder see it. */
export interface Operation {
  id: string;
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  auth: 'optional' | 'none';
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  status: number;
  response?: z.ZodType;
  errors: number[];
  run(call: ApiCall<unknown, unknown, unknown>): Promise<ApiResult>;
}

/** Declares an endpoint; the handler's parameter types follow from the schemas. */
export function operation<P extends z.ZodType = z.ZodNever, Q extends z.ZodType = z.ZodNever, B extends z.ZodType = z.ZodNever>(spec: OperationSpec<P, Q, B>): Operation {
  const { handler, ...rest } = spec;
  return {
    ...rest,
    auth: spec.auth ?? 'optional',
    status: spec.status ?? 200,
    errors: spec.errors ?? [],
    run: (call) => handler(call as ApiCall<z.output<P>, z.output<Q>, z.output<B>>),
  };
}

/** Refused input: see `invalid` in src/domain/errors.ts (re-exported for the API's modules). */
export { invalid, type FieldError };

/** Validates `input` against `schema`; INVALID naming each offending field otherwise. */
export function validate<T extends z.ZodType>(schema: T, input: unknown, where: string): z.output<T> {
  const result = schema.safeParse(input, { error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined) });
  if (result.success) return result.data;
  const fields: FieldError[] = [];
  for (const issue of result.error.issues) {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) fields.push({ path: base ? `${base}.${key}` : key, message: 'unknown field' });
    } else {
      fields.push({ path: base || where, message: issue.message });
    }
  }
  throw invalid(fields);
}

/** The regular expression of a path template, and its parameter names in order. */
export function compilePath(path: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = path.replace(/[.*?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)(\+?)\}/g, (_, name: string, greedy: string) => {
    names.push(name);
    return greedy ? '(.+)' : '([^/]+)';
  });
  return { pattern: new RegExp(`^${API_PREFIX.replace(/\//g, '\\/')}${source}$`), names };
}

/** Identifies the caller of an API request (see ApiAuthenticator). */
export interface CallerIdentifier {
  identify(ctx: Context): Promise<Identity>;
  /** The `WWW-Authenticate` value for a 401 on this request, or undefined to send none. */
  challenge(ctx: Context): string | undefined;
}

/** The router's route for an operation: authenticate, validate, run, answer. */
export function toRoute(op: Operation, callers: CallerIdentifier): Route {
  const { pattern, names } = compilePath(op.path);
  return {
    name: `api.${op.id}`,
    methods: [op.method],
    pattern,
    handler: async (ctx, raw) => {
      try {
        const identity = op.auth === 'none' ? ANONYMOUS : await callers.identify(ctx);
        ctx.auth.identity = identity;
        const params = op.params ? validate(op.params, decodeParams(names, raw), 'path') : undefined;
        const query = op.query ? validate(op.query, Object.fromEntries(ctx.query), 'query') : undefined;
        const body = await readJSON(ctx, op.body !== undefined);
        const validBody = op.body ? validate(op.body, body ?? {}, 'body') : undefined;
        const result = await op.run({ ctx, identity, params, query, body: validBody });
        const headers = { 'Cache-Control': 'no-store', ...result.headers };
        if (result.body === undefined) sendEmpty(ctx.res, result.status ?? 204, headers);
        else sendJSON(ctx.res, result.status ?? op.status, result.body, headers);
      } catch (err) {
        throw withChallenge(err, callers.challenge(ctx));
      }
    },
  };
}

/** Adds the Basic challenge to a 401 that has none (clients and people learn how to authenticate). */
function withChallenge(err: unknown, challenge: string | undefined): unknown {
  if (!(err instanceof RegistryError) || err.code !== 'UNAUTHORIZED' || !challenge || err.headers['WWW-Authenticate']) return err;
  return new RegistryError(err.code, err.message, err.detail, { headers: { ...err.headers, 'WWW-Authenticate': challenge } });
}

function decodeParams(names: string[], raw: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  names.forEach((name, i) => {
    try {
      params[name] = decodeURIComponent(raw[i] ?? '');
    } catch {
      throw invalid([{ path: name, message: 'malformed percent-encoding' }]);
    }
  });
  return params;
}

/**
 * The JSON body, or undefined when there is none. A body must be declared JSON: besides being
 * honest, that keeps cross-site HTML forms (which cannot send application/json) out.
 */
async function readJSON(ctx: Context, wanted: boolean): Promise<unknown> {
  const data = await readSmallBody(ctx.req, BODY_LIMIT);
  if (data.length === 0 || !wanted) return undefined;
  const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw invalid([{ path: 'body', message: 'must be JSON sent with Content-Type: application/json' }]);
  }
  try {
    return JSON.parse(data.toString('utf8')) as unknown;
  } catch {
    throw invalid([{ path: 'body', message: 'is not valid JSON' }]);
  }
}
