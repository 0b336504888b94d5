// Small helpers for tests of the management API (/api/v1): requests with JSON bodies, status
// assertions that show the body on failure, Basic credentials, and following Link pagination.
import assert from 'node:assert/strict';
import { adminBasic } from './server.ts';
import { expectError, type ErrorEnvelope } from './oci.ts';
import { rememberSecret, rememberSecretsIn } from './secrets.ts';

export { adminBasic };

/** `Authorization: Basic` for any name and secret (password, personal token, robot secret). */
export function basic(name: string, secret: string): string {
  rememberSecret(secret, name);
  return `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
}

export interface ApiRequest {
  /** `Authorization` value; undefined: none (anonymous). */
  auth?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One API request; `path` is below /api/v1. */
export function api(url: string, method: string, path: string, options: ApiRequest = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) headers.Authorization = options.auth;
  if (options.body !== undefined) headers['Content-Type'] ??= 'application/json';
  rememberSecretsIn(options.body);
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  return fetch(`${url}/api/v1${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
}

/** Asserts the status (showing the body when it differs) and returns the parsed JSON body, if any. */
export async function expectStatus<T = Record<string, unknown>>(res: Response, status: number, what = ''): Promise<T> {
  const text = await res.text();
  assert.equal(res.status, status, `${what} ${res.url}: expected ${status}, got ${res.status}: ${text}`);
  const body = (text ? JSON.parse(text) : undefined) as T;
  rememberSecretsIn(body);
  return body;
}

/** Asserts a 400 INVALID whose detail names `field` (and whose message does too); returns the envelope. */
export async function expectInvalid(res: Response, field: string): Promise<ErrorEnvelope> {
  const env = await expectError(res, 400, 'INVALID');
  const error = env.errors[0]!;
  const fields = (error.detail as { fields?: { path: string; message: string }[] } | undefined)?.fields ?? [];
  assert.ok(fields.some((f) => f.path === field), `detail.fields names "${field}": ${JSON.stringify(error)}`);
  assert.ok(error.message.includes(field), `the message names "${field}": ${error.message}`);
  return env;
}

/** Parses `Link: <…>; rel="next"`, asserting that exact form; undefined when absent. */
export function nextLink(res: Response): string | undefined {
  const link = res.headers.get('link');
  if (link === null) return undefined;
  const m = /^<([^>]+)>; rel="next"$/.exec(link);
  assert.ok(m, `Link header has the form <url>; rel="next": ${link}`);
  return m[1];
}

export interface ListPage<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}
