// The OpenAPI 3.1 document at /api/v1/openapi.json: structurally valid, one operation for every
// endpoint of the contract, request schemas present — and generated from the very schemas the
// server validates with (what the document requires, the server refuses when missing).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { adminBasic, api, expectInvalid, expectStatus } from '../support/api.ts';

type Json = Record<string, unknown>;

/** Every endpoint of the API contract (/tmp/api-contract.md, "Endpoints"), written out independently. */
const ENDPOINTS = [
  'POST /auth/session',
  'DELETE /auth/session',
  'GET /auth/whoami',
  'GET /auth/config',
  'GET /auth/oidc/login',
  'GET /auth/oidc/callback',
  'POST /auth/oidc/cli/exchange',
  'POST /auth/oidc/device',
  'POST /auth/oidc/device/poll',
  'POST /auth/test',
  'GET /system/info',
  'GET /system/settings',
  'PATCH /system/settings',
  'GET /system/connection',
  'GET /health',
  'GET /users',
  'POST /users',
  'GET /users/{name}',
  'PATCH /users/{name}',
  'DELETE /users/{name}',
  'GET /projects',
  'POST /projects',
  'GET /projects/{project}',
  'PATCH /projects/{project}',
  'DELETE /projects/{project}',
  'GET /projects/{project}/members',
  'POST /projects/{project}/members',
  'PUT /projects/{project}/members/{username}',
  'DELETE /projects/{project}/members/{username}',
  'PUT /projects/{project}/member-groups/{id}',
  'DELETE /projects/{project}/member-groups/{id}',
  'GET /groups',
  'GET /groups/{id}',
  'GET /projects/{project}/immutability',
  'POST /projects/{project}/immutability',
  'PATCH /projects/{project}/immutability/{id}',
  'DELETE /projects/{project}/immutability/{id}',
  'GET /projects/{project}/retention',
  'PUT /projects/{project}/retention',
  'DELETE /projects/{project}/retention',
  'GET /projects/{project}/retention/runs',
  'POST /projects/{project}/retention/runs',
  'GET /projects/{project}/retention/runs/{id}',
  'GET /projects/{project}/retention/runs/{id}/items',
  'POST /projects/{project}/retention/runs/{id}/cancel',
  'GET /robots',
  'POST /robots',
  'GET /robots/{name}',
  'PATCH /robots/{name}',
  'POST /robots/{name}/refresh',
  'DELETE /robots/{name}',
  'GET /users/me/tokens',
  'POST /users/me/tokens',
  'DELETE /users/me/tokens/{name}',
  'GET /repositories',
  'GET /repositories/{name}/artifacts',
  'GET /repositories/{name}/artifacts/{reference}',
  'DELETE /repositories/{name}/artifacts/{reference}',
  'DELETE /repositories/{name}/tags/{tag}',
  'DELETE /repositories/{name}',
  'GET /audit',
  'GET /jobs',
  'POST /jobs',
  'GET /jobs/{id}',
  'POST /jobs/{id}/cancel',
  'POST /system/gc',
  'GET /system/gc',
  'GET /system/gc/schedule',
  'PUT /system/gc/schedule',
  'GET /system/gc/{id}',
  'GET /system/gc/{id}/log',
  'POST /system/gc/{id}/cancel',
  'GET /registries',
  'POST /registries',
  'POST /registries/test',
  'GET /registries/{name}',
  'PATCH /registries/{name}',
  'DELETE /registries/{name}',
  'POST /registries/{name}/test',
  'GET /projects/{project}/webhooks',
  'POST /projects/{project}/webhooks',
  'GET /projects/{project}/webhooks/{name}',
  'PATCH /projects/{project}/webhooks/{name}',
  'DELETE /projects/{project}/webhooks/{name}',
  'POST /projects/{project}/webhooks/{name}/test',
  'GET /projects/{project}/webhooks/{name}/deliveries',
  'GET /projects/{project}/webhooks/{name}/deliveries/{id}',
  'POST /projects/{project}/webhooks/{name}/deliveries/{id}/redeliver',
  'GET /replication/rules',
  'POST /replication/rules',
  'GET /replication/rules/{name}',
  'PATCH /replication/rules/{name}',
  'DELETE /replication/rules/{name}',
  'POST /replication/rules/{name}/executions',
  'GET /replication/rules/{name}/executions',
  'GET /replication/executions/{id}',
  'POST /replication/executions/{id}/cancel',
  'GET /replication/executions/{id}/tasks',
  'GET /replication/executions/{id}/log',
  'GET /openapi.json',
];

/** Request bodies and the fields each must require. */
const REQUIRED_BODY_FIELDS: Record<string, string[]> = {
  'POST /auth/session': ['username', 'password'],
  'POST /auth/oidc/cli/exchange': ['code', 'verifier', 'tokenName'],
  'POST /auth/oidc/device/poll': ['flow', 'tokenName'],
  'POST /users': ['username'],
  'PATCH /users/{name}': [],
  'POST /projects': ['name'],
  'PATCH /projects/{project}': [],
  // Either `username` or `group` (refused unless exactly one is given).
  'POST /projects/{project}/members': ['role'],
  'PUT /projects/{project}/members/{username}': ['role'],
  'PUT /projects/{project}/member-groups/{id}': ['role'],
  'POST /projects/{project}/immutability': ['tags'],
  'PATCH /projects/{project}/immutability/{id}': [],
  'PUT /projects/{project}/retention': ['rules'],
  'POST /robots': ['name', 'permissions'],
  'PATCH /robots/{name}': [],
  'POST /users/me/tokens': ['name'],
  'POST /system/gc': [],
  'PATCH /system/settings': [],
  'PUT /system/gc/schedule': ['cron'],
  'POST /registries': ['name', 'type'],
  'PATCH /registries/{name}': [],
  'POST /registries/test': ['type'],
  'POST /registries/{name}/test': [],
  'POST /projects/{project}/webhooks': ['name', 'url', 'events'],
  'PATCH /projects/{project}/webhooks/{name}': [],
  'POST /replication/rules': ['name', 'registry', 'direction'],
  'PATCH /replication/rules/{name}': [],
};

/** Query parameters each list must document. */
const QUERY_PARAMETERS: Record<string, string[]> = {
  'GET /projects': ['q', 'sort', 'page', 'pageSize'],
  'GET /registries': ['q', 'page', 'pageSize'],
  'GET /projects/{project}/webhooks/{name}/deliveries': ['state', 'page', 'pageSize'],
  'GET /replication/executions/{id}/tasks': ['outcome', 'page', 'pageSize'],
  'GET /robots': ['project', 'page', 'pageSize'],
  'GET /groups': ['q', 'source', 'page', 'pageSize'],
  'GET /users': ['q', 'source', 'sort', 'page', 'pageSize'],
  'GET /repositories/{name}/artifacts': ['q', 'sort', 'page', 'pageSize'],
  'GET /repositories': ['project', 'q', 'sort', 'page', 'pageSize'],
  'GET /audit': ['actor', 'action', 'project', 'resource', 'from', 'to', 'page', 'pageSize'],
};

describe('management API: the OpenAPI document', () => {
  let server: TestServer;
  let doc: Json;
  const operations = new Map<string, Json>();
  /** The JSON schema of an operation's request body. */
  const bodySchema = (key: string): Json => {
    const op = operations.get(key);
    assert.ok(op, key);
    assert.ok(op.requestBody, `${key}: a request body`);
    return ((((op.requestBody as Json).content as Json)['application/json'] as Json).schema as Json);
  };

  before(async () => {
    server = await startTestServer();
    const res = await fetch(`${server.url}/api/v1/openapi.json`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    doc = await expectStatus<Json>(res, 200);
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
      for (const [method, op] of Object.entries(item)) operations.set(`${method.toUpperCase()} ${path.replace(/^\/api\/v1/, '')}`, op);
    }
  });
  after(() => server.close());

  test('is an OpenAPI 3.1 document with info, security schemes and the error envelope', () => {
    assert.equal(doc.openapi, '3.1.0');
    const info = doc.info as Json;
    assert.equal(typeof info.title, 'string');
    assert.match(String(info.version), /^\d+\.\d+\.\d+/);
    const components = doc.components as { securitySchemes: Json; schemas: Json };
    assert.deepEqual(Object.keys(components.securitySchemes).sort(), ['basicAuth', 'bearerAuth', 'sessionCookie']);
    const error = components.schemas.Error as Json;
    assert.deepEqual(error.required, ['errors']);
    const codes = ((((error.properties as Json).errors as Json).items as Json).properties as { code: { enum: string[] } }).code.enum;
    for (const code of ['UNAUTHORIZED', 'DENIED', 'NOT_FOUND', 'INVALID', 'CONFLICT']) assert.ok(codes.includes(code), code);
  });

  test('has an operation for every endpoint, and nothing undocumented', () => {
    assert.deepEqual([...operations.keys()].sort(), [...ENDPOINTS].sort());
    for (const path of Object.keys(doc.paths as Json)) assert.ok(path.startsWith('/api/v1/'), path);
  });

  test('every operation: unique operationId, a success response, declared path parameters, resolvable $refs', () => {
    const ids = new Set<string>();
    for (const [key, op] of operations) {
      const id = String(op.operationId);
      assert.ok(/^[a-zA-Z]+$/.test(id) && !ids.has(id), `${key}: operationId ${id}`);
      ids.add(id);
      assert.equal(typeof op.summary, 'string', `${key}: summary`);
      const responses = op.responses as Record<string, Json>;
      // The sign-in redirects (GET /auth/oidc/login, /callback) answer 302.
      assert.ok(Object.keys(responses).some((s) => /^[23]\d\d$/.test(s)), `${key}: a 2xx (or redirect) response`);
      for (const [status, response] of Object.entries(responses)) assert.equal(typeof response.description, 'string', `${key} ${status}: description`);
      const params = (op.parameters ?? []) as { name: string; in: string; required: boolean; schema: Json }[];
      const templated = [...key.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      assert.deepEqual(params.filter((p) => p.in === 'path').map((p) => p.name).sort(), [...templated].sort(), `${key}: path parameters`);
      for (const p of params) {
        assert.ok(p.in === 'path' || p.in === 'query', `${key}: ${p.name} in ${p.in}`);
        assert.ok(p.in !== 'path' || p.required === true, `${key}: path parameter ${p.name} is required`);
        assert.equal(typeof p.schema, 'object', `${key}: ${p.name} has a schema`);
      }
      if (key.startsWith('GET ') && key !== 'GET /openapi.json') assert.equal(op.requestBody, undefined, `${key}: no body`);
    }
    // Every $ref points at something that exists.
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) return value.forEach(walk);
      if (value === null || typeof value !== 'object') return;
      for (const [k, v] of Object.entries(value)) {
        if (k === '$ref') {
          assert.match(String(v), /^#\//);
          const target = String(v).slice(2).split('/').reduce<unknown>((node, part) => (node as Json | undefined)?.[part], doc);
          assert.ok(target !== undefined, `$ref ${v} resolves`);
        } else walk(v);
      }
    };
    walk(doc);
  });

  test('request schemas are present, with their required fields; list queries document their parameters', () => {
    for (const [key, required] of Object.entries(REQUIRED_BODY_FIELDS)) {
      const schema = bodySchema(key);
      assert.equal(schema.type, 'object', `${key}: an object body`);
      assert.equal(schema.additionalProperties, false, `${key}: unknown fields are refused`);
      assert.deepEqual([...((schema.required ?? []) as string[])].sort(), [...required].sort(), `${key}: required fields`);
      for (const field of required) assert.ok((schema.properties as Json)[field], `${key}: ${field} described`);
    }
    for (const [key, names] of Object.entries(QUERY_PARAMETERS)) {
      const params = (operations.get(key)!.parameters as { name: string; in: string }[]).filter((p) => p.in === 'query').map((p) => p.name);
      assert.deepEqual([...params].sort(), [...names].sort(), key);
    }
    const pageSize = ((operations.get('GET /projects')!.parameters as { name: string; schema: Json }[]).find((p) => p.name === 'pageSize')!).schema;
    assert.equal(pageSize.maximum, 500);
    const roles = ((bodySchema('POST /projects/{project}/members').properties as Json).role as Json).enum;
    assert.deepEqual(roles, ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest']);
  });

  test('the documented schemas are the ones the server enforces', async () => {
    // Each required field the document lists is refused, by name, when left out.
    const admin = adminBasic();
    const cases: [string, string, Json, string][] = [
      ['POST', '/projects', {}, 'name'],
      ['POST', '/robots', { name: 'x' }, 'permissions'],
      ['POST', '/users/me/tokens', {}, 'name'],
      ['POST', '/users', {}, 'username'],
    ];
    for (const [method, path, body, field] of cases) {
      const schema = bodySchema(`${method} ${path}`);
      assert.ok(((schema.required ?? []) as string[]).includes(field), `${method} ${path}: ${field} documented as required`);
      await expectInvalid(await api(server.url, method, path, { auth: admin, body }), field);
    }
    // The documented pattern of a project name is the one applied.
    const pattern = new RegExp(String(((bodySchema('POST /projects').properties as Json).name as Json).pattern));
    for (const name of ['ok-name', 'a.b_c', 'Upper', 'trailing-', 'two/parts']) {
      const res = await api(server.url, 'POST', '/projects', { auth: admin, body: { name } });
      assert.equal(res.status, pattern.test(name) ? 201 : 400, `${name}: ${await res.text()}`);
    }
  });
});
