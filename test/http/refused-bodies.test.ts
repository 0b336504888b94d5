// Early refusals of requests that carry a body (401/403/404/413 on PUT, PATCH, POST): the client
// must receive the error envelope, not a broken pipe or a reset. Berth reads and discards the rest
// of a refused body (up to a bound in bytes and time) before it answers, and when the bound is hit
// it answers with `Connection: close` and closes only after the response went out.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createHandler } from '../../src/http/server.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import { AddressSet } from '../../src/domain/cidr.ts';
import type { Route } from '../../src/http/context.ts';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { api, basic, expectStatus } from '../support/api.ts';
import { MEDIA, RawConnection, assertEnvelope, digestOf, startUpload, uniqueName, withDigest } from '../support/oci.ts';

const AUTH = adminBasic();
const PASSWORD = 'refused-bodies-password-1';
const MiB = 1024 * 1024;

/** What a client that keeps writing its body saw. */
interface Outcome {
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: string;
  /** An error on the request (EPIPE, ECONNRESET…), if any. */
  error?: string;
  /** Bytes of the body the client managed to write before it stopped (or finished). */
  written: number;
  ms: number;
}

/**
 * Sends `total` bytes in `piece`-byte writes, `delayMs` apart (with `Content-Length` unless
 * `chunked`), the way a real client streams a body, and reads the response. By default the client
 * writes its whole body before it cares about the response (as many clients do: only then do they
 * read); with `stopOnResponse` it stops writing once the response arrived (as curl does).
 */
function slowBody(
  url: string,
  options: { method: string; path: string; headers?: Record<string, string>; total: number; piece?: number; delayMs?: number; chunked?: boolean; declared?: number; stopOnResponse?: boolean },
): Promise<Outcome> {
  const target = new URL(url);
  const piece = options.piece ?? 64 * 1024;
  const started = Date.now();
  return new Promise((resolve) => {
    const outcome: Outcome = { written: 0, ms: 0 };
    let settled = false;
    let responded = false;
    let sent = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      outcome.ms = Date.now() - started;
      resolve(outcome);
    };
    const headers: Record<string, string> = { ...options.headers };
    if (!options.chunked) headers['Content-Length'] = String(options.declared ?? options.total);
    const req = httpRequest({ host: target.hostname, port: target.port, method: options.method, path: options.path, headers, agent: false }, (res) => {
      outcome.status = res.statusCode;
      outcome.headers = res.headers;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        outcome.body = Buffer.concat(chunks).toString('utf8');
        responded = true;
        if (sent || options.stopOnResponse) {
          req.destroy();
          finish();
        }
      });
      res.on('error', (err) => {
        outcome.error ??= `response: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
        finish();
      });
    });
    req.on('error', (err) => {
      outcome.error ??= (err as NodeJS.ErrnoException).code ?? err.message;
      setTimeout(finish, 200);
    });
    req.on('finish', () => {
      sent = true;
      if (responded) finish();
    });
    // The whole body may have arrived (and been answered, and the connection closed) before the
    // client got round to ending its request: then 'finish' never comes.
    req.on('close', () => setTimeout(finish, responded ? 0 : 200));
    const data = Buffer.alloc(piece, 0x20);
    const pump = () => {
      if (settled || req.destroyed || (options.stopOnResponse && outcome.status !== undefined)) return;
      if (outcome.written >= options.total) {
        req.end();
        return;
      }
      const n = Math.min(piece, options.total - outcome.written);
      outcome.written += n;
      const more = req.write(n === piece ? data : data.subarray(0, n));
      if (options.delayMs) setTimeout(pump, options.delayMs);
      else if (more) setImmediate(pump);
      else req.once('drain', pump);
    };
    req.flushHeaders();
    pump();
  });
}

/**
 * Asserts the client received the error envelope without a failure of its own; with `whole`, also
 * that it could send its whole body (a client that reads the answer only once its body is sent).
 */
function assertRefused(outcome: Outcome, status: number, code: string, what: string, whole?: number): void {
  assert.equal(outcome.error, undefined, `${what}: the client saw ${outcome.error} (status ${outcome.status}, after writing ${outcome.written} bytes)`);
  if (whole !== undefined) assert.equal(outcome.written, whole, `${what}: the client could send its whole body (the connection closed after ${outcome.written} bytes)`);
  assert.equal(outcome.status, status, `${what}: ${outcome.body}`);
  assert.match(String(outcome.headers?.['content-type']), /^application\/json/);
  assert.equal(assertEnvelope(outcome.body ?? '').errors[0]!.code, code, `${what}: ${outcome.body}`);
}

describe('refused request bodies are drained, then answered', { timeout: 120_000 }, () => {
  let server: TestServer;
  let url: string;
  const project = uniqueName('locked');

  before(async () => {
    server = await startTestServer();
    url = server.url;
    await expectStatus(await api(url, 'POST', '/users', { auth: AUTH, body: { username: 'outsider', password: PASSWORD } }), 201);
    await expectStatus(await api(url, 'POST', '/projects', { auth: AUTH, body: { name: project } }), 201);
  });
  after(async () => {
    await server.close();
  });

  async function healthy(): Promise<void> {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }

  test('a 6 MiB manifest (limit 4 MiB) written slowly: the client reads 413 SIZE_INVALID, no EPIPE', async () => {
    const outcome = await slowBody(url, {
      method: 'PUT',
      path: `/v2/${uniqueName('big')}/manifests/v1`,
      headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest },
      total: 6 * MiB,
      delayMs: 1,
    });
    assertRefused(outcome, 413, 'SIZE_INVALID', 'manifest PUT', 6 * MiB);
  });

  test('the same manifest sent chunked (no Content-Length): 413 received', async () => {
    const outcome = await slowBody(url, {
      method: 'PUT',
      path: `/v2/${uniqueName('big')}/manifests/v1`,
      headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest },
      total: 6 * MiB,
      chunked: true,
      delayMs: 1,
    });
    assertRefused(outcome, 413, 'SIZE_INVALID', 'chunked manifest PUT', 6 * MiB);
  });

  test('a drained refusal keeps the connection: the next request on it is answered', async () => {
    const conn = await RawConnection.open(url);
    try {
      const body = Buffer.alloc(6 * MiB, 0x20);
      conn.write(`PUT /v2/${uniqueName('keep')}/manifests/v1 HTTP/1.1\r\nHost: berth.test\r\nAuthorization: ${AUTH}\r\nContent-Type: ${MEDIA.ociManifest}\r\nContent-Length: ${body.length}\r\n\r\n`);
      conn.write(body);
      const first = await conn.readResponse(10_000);
      assert.ok(typeof first === 'object', String(first));
      assert.equal(first.status, 413);
      assert.notEqual((first.headers.connection ?? '').toLowerCase(), 'close', 'the body was read whole: no reason to close');
      conn.write('GET /healthz HTTP/1.1\r\nHost: berth.test\r\n\r\n');
      const next = await conn.readResponse(3000);
      assert.ok(typeof next === 'object' && next.status === 200, `next request on the connection: ${typeof next === 'object' ? next.status : next}`);
    } finally {
      conn.close();
    }
  });

  test('a 2 MiB PATCH to an upload without credentials: the client reads the 401 envelope', async () => {
    const name = uniqueName('patch');
    const location = new URL(await startUpload(url, name));
    const outcome = await slowBody(url, { method: 'PATCH', path: location.pathname + location.search, headers: { 'Content-Type': 'application/octet-stream' }, total: 2 * MiB, piece: 32 * 1024, delayMs: 2 });
    assertRefused(outcome, 401, 'UNAUTHORIZED', 'PATCH without credentials', 2 * MiB);
    assert.ok(outcome.headers?.['www-authenticate'], 'with its challenge');
  });

  test('a blob PUT to a repository the user may not push: the client reads the 403 envelope', async () => {
    const name = `${project}/app`;
    const location = new URL(await startUpload(url, name));
    const bytes = Buffer.alloc(2 * MiB, 0x20);
    const target = new URL(withDigest(location.toString(), digestOf(bytes)));
    const outcome = await slowBody(url, {
      method: 'PUT',
      path: target.pathname + target.search,
      headers: { Authorization: basic('outsider', PASSWORD), 'Content-Type': 'application/octet-stream' },
      total: bytes.length,
      piece: 32 * 1024,
      delayMs: 2,
    });
    assertRefused(outcome, 403, 'DENIED', 'blob PUT without push permission', bytes.length);
  });

  test('a monolithic POST of 3 MiB to an unknown endpoint: 404 received', async () => {
    const outcome = await slowBody(url, { method: 'POST', path: `/v2/${uniqueName('x')}/nothing/here`, headers: { Authorization: AUTH }, total: 3 * MiB, delayMs: 1 });
    assertRefused(outcome, 404, 'NOT_FOUND', 'POST to no route', 3 * MiB);
  });

  test('a body far above the drain bound (chunked, 256 MiB): the error arrives or the connection closes cleanly; no hang', { timeout: 30_000 }, async () => {
    const location = new URL(await startUpload(url, uniqueName('huge')));
    const outcome = await slowBody(url, { method: 'PATCH', path: location.pathname + location.search, headers: { 'Content-Type': 'application/octet-stream' }, total: 256 * MiB, chunked: true, piece: 256 * 1024, stopOnResponse: true });
    assert.ok(outcome.ms < 15_000, `answered in ${outcome.ms} ms`);
    assert.ok(outcome.written < 256 * MiB, `the server did not read all of it (${outcome.written} bytes written)`);
    if (outcome.status !== undefined) {
      assert.equal(outcome.status, 401, outcome.body);
      assert.equal(String(outcome.headers?.connection).toLowerCase(), 'close', 'a body not read whole closes the connection');
      assert.equal(assertEnvelope(outcome.body ?? '').errors[0]!.code, 'UNAUTHORIZED');
    } else {
      assert.match(String(outcome.error), /ECONNRESET|EPIPE/, 'a clean close otherwise');
    }
    await healthy();
  });

  test('a declared Content-Length far above the bound is answered at once, with Connection: close', { timeout: 30_000 }, async () => {
    const location = new URL(await startUpload(url, uniqueName('declared')));
    const outcome = await slowBody(url, {
      method: 'PATCH',
      path: location.pathname + location.search,
      headers: { 'Content-Type': 'application/octet-stream' },
      declared: 10 * 1024 * MiB,
      total: 10 * 1024 * MiB,
      piece: 256 * 1024,
      stopOnResponse: true,
    });
    assertRefused(outcome, 401, 'UNAUTHORIZED', '10 GiB PATCH without credentials');
    assert.equal(String(outcome.headers?.connection).toLowerCase(), 'close');
    assert.ok(outcome.written < 200 * MiB, `not read whole: ${outcome.written} bytes written`);
    assert.ok(outcome.ms < 10_000, `answered in ${outcome.ms} ms`);
    await healthy();
  });

  test('past the bound, the connection lingers after the refusal: a client that writes on for a moment is not reset', { timeout: 30_000 }, async () => {
    const location = new URL(await startUpload(url, uniqueName('linger')));
    const target = new URL(url);
    const socket = connect({ port: Number(target.port), host: target.hostname, allowHalfOpen: true });
    await once(socket, 'connect');
    let received = Buffer.alloc(0);
    let failure: string | undefined;
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    socket.on('error', (err: NodeJS.ErrnoException) => (failure ??= err.code ?? err.message));
    try {
      socket.write(`PATCH ${location.pathname} HTTP/1.1\r\nHost: berth.test\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * 1024 * MiB}\r\n\r\n`);
      const piece = Buffer.alloc(64 * 1024, 0x20);
      // Keeps writing for 600 ms after the response began to arrive, as a client busy sending does.
      let respondedAt: number | undefined;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !failure) {
        if (respondedAt === undefined && received.includes('\r\n\r\n')) respondedAt = Date.now();
        if (respondedAt !== undefined && Date.now() - respondedAt > 600) break;
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(respondedAt !== undefined, `a response arrived: ${received.toString('latin1').slice(0, 200)}`);
      assert.equal(failure, undefined, 'the connection was not reset while the client was still writing');
      const text = received.toString('utf8');
      assert.match(text, /^HTTP\/1\.1 401 /);
      assert.match(text, /\r\nconnection: close\r\n/i);
      assertEnvelope(text.slice(text.indexOf('\r\n\r\n') + 4));
    } finally {
      socket.destroy();
    }
    await healthy();
  });

  test('a client too slow for the time bound still gets the 413, with Connection: close', { timeout: 30_000 }, async () => {
    // 6 MiB at ~1 MiB/s: the drain gives up after its time bound and answers anyway.
    const outcome = await slowBody(url, {
      method: 'PUT',
      path: `/v2/${uniqueName('slow')}/manifests/v1`,
      headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest },
      total: 6 * MiB,
      piece: 16 * 1024,
      delayMs: 15,
      stopOnResponse: true,
    });
    assertRefused(outcome, 413, 'SIZE_INVALID', 'slow manifest PUT');
    assert.equal(String(outcome.headers?.connection).toLowerCase(), 'close');
    assert.ok(outcome.written < 6 * MiB, `answered before the body ended (${outcome.written} bytes written)`);
    await healthy();
  });

  test('curl -T of a file over the manifest limit prints the 413 envelope', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-curl-'));
    try {
      for (const size of [6 * MiB, 64 * MiB]) {
        const file = join(dir, `big-${size}`);
        writeFileSync(file, Buffer.alloc(size, 0x20));
        const { code, stdout, stderr } = await run('curl', ['-sS', '-T', file, '-H', `Authorization: ${AUTH}`, '-H', `Content-Type: ${MEDIA.ociManifest}`, '-w', '\n%{http_code}', `${url}/v2/${uniqueName('curl')}/manifests/v1`]);
        assert.equal(code, 0, `curl (${size} bytes) failed: ${stderr}`);
        const lines = stdout.trim().split('\n');
        assert.equal(lines.at(-1), '413', stdout);
        assert.equal(assertEnvelope(lines.slice(0, -1).join('\n')).errors[0]!.code, 'SIZE_INVALID');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Handlers that stop reading part-way, as the upload routes do when storing a chunk fails: the
// request is left paused, or unpiped from a destination that failed. The error path still drains it.
describe('a body partly read by the handler is drained from where the handler stopped', () => {
  let server: Server;
  let base: string;
  const MIB_READ = MiB;

  before(async () => {
    const routes: Route[] = [
      {
        name: 'paused',
        methods: ['PATCH'],
        pattern: /^\/paused$/,
        handler: (ctx) =>
          new Promise((_, reject) => {
            let seen = 0;
            const onData = (chunk: Buffer) => {
              seen += chunk.length;
              if (seen < MIB_READ) return;
              ctx.req.off('data', onData);
              ctx.req.pause();
              reject(new RegistryError('DENIED', 'refused part-way'));
            };
            ctx.req.on('data', onData);
          }),
      },
      {
        name: 'piped',
        methods: ['PATCH'],
        pattern: /^\/piped$/,
        handler: (ctx) =>
          new Promise((_, reject) => {
            let seen = 0;
            const sink = new Writable({
              write(chunk: Buffer, _encoding, callback) {
                seen += chunk.length;
                callback(seen >= MIB_READ ? new Error('disk full') : null);
              },
            });
            sink.on('error', () => reject(new RegistryError('BLOB_UPLOAD_INVALID', 'storing the chunk failed')));
            ctx.req.pipe(sink);
          }),
      },
    ];
    server = createServer(createHandler(routes, { log: pino({ level: 'silent' }), metrics: createMetrics(), secure: false, trustedProxies: new AddressSet([]) }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  for (const [path, status, code] of [['/paused', 403, 'DENIED'], ['/piped', 400, 'BLOB_UPLOAD_INVALID']] as const) {
    test(`${path.slice(1)}: the client sends its whole body and reads the ${status}; the connection is kept`, async () => {
      const outcome = await slowBody(base, { method: 'PATCH', path, headers: { Connection: 'keep-alive' }, total: 8 * MiB, piece: 64 * 1024, delayMs: 1 });
      assertRefused(outcome, status, code, path, 8 * MiB);
      assert.notEqual(String(outcome.headers?.connection).toLowerCase(), 'close', 'read whole: the connection may stay');
    });
  }
});

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
