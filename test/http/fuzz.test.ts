// Property tests over what a client controls: manifest bodies, repository names, references,
// headers and ranges. Whatever is sent, Berth answers below 500, keeps serving, wraps every /v2
// error in the OCI envelope with a declared code, and never echoes an invalid input back.
// One real server for the file; a fixed seed and a bounded number of runs keep it repeatable and
// inside a few tens of seconds.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { startTestServer, adminBasic, type TestServer } from '../support/server.ts';
import { MEDIA, pushBlob, pushImage, uniqueName, type PushedImage } from '../support/oci.ts';
import { ERROR_CODES } from '../../src/domain/errors.ts';
import { isDigest } from '../../src/domain/digest.ts';
import { assertRepositoryName, isTag } from '../../src/domain/names.ts';
import { MEDIA_TYPES } from '../../src/domain/media-types.ts';

const SEED = 42;
const AUTH = adminBasic();

/** A response as read off the wire. */
interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

interface Probe {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** A new connection that closes after this request (for a Content-Length that lies). */
  fresh?: boolean;
  /** What the client made up for this request, which must not come back in an error. */
  inputs?: readonly string[];
  /** Bytes Node's HTTP parser may refuse before Berth sees them (a bodiless 400, or a reset). */
  refusable?: boolean;
}

// ---- what counts as an echo ------------------------------------------------------------------

function validName(s: string): boolean {
  try {
    assertRepositoryName(s);
    return true;
  } catch {
    return false;
  }
}

/** Text Berth may legitimately put in an error (media types it knows, digest shapes), so not an echo. */
const VOCABULARY = [...Object.values(MEDIA_TYPES), 'lower-case hex characters', 'bytes=<start>-<end>'].join('\n');

/** An input whose appearance in an error would be an echo: long enough, and not a value that passed validation. */
function echoCandidate(s: string): boolean {
  return s.length > 8 && !isTag(s) && !validName(s) && !isDigest(s) && !VOCABULARY.includes(s);
}

// ---- generators ----------------------------------------------------------------------------

const TRICKY = [
  '..',
  '../../etc/passwd',
  '%',
  '%zz',
  '%C3',
  '%00',
  '%2e%2e',
  '%2F',
  ':',
  'sha256:',
  'constructor:abc',
  '__proto__',
  'toString',
  `sha256:${'a'.repeat(64)}`,
  `sha256:${'A'.repeat(64)}`,
  `sha512:${'b'.repeat(127)}`,
  `sha256:${'a'.repeat(65)}`,
  'a'.repeat(129),
  'a'.repeat(256),
  'latest',
  '\u0000',
  '\u{1F600}',
  '\uD800',
  'é',
];

/** Strings of every kind: ASCII, full unicode (lone surrogates too), long, and known-tricky values. */
const anyString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 200, maxLength: 1200 }) },
  { weight: 2, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...TRICKY), fc.string({ maxLength: 20 })).map(([a, b]) => a + b) },
);

/** A header value Node's client will send (tab, printable ASCII and Latin-1), garbage or near-valid. */
const headerText = fc.string({ unit: fc.mapToConstant({ num: 1, build: () => '\t' }, { num: 95, build: (i) => String.fromCharCode(0x20 + i) }, { num: 128, build: (i) => String.fromCharCode(0x80 + i) }), maxLength: 300 });

/** Percent-encodes a string for a URL path, keeping a random set of safe characters raw (and `/` when `slashes`). */
function encodeSegment(s: string, slashes: boolean): string {
  let out = '';
  for (const ch of s) {
    if (/^[A-Za-z0-9._~!$&'()*+,;=:@-]$/.test(ch) || (slashes && ch === '/')) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-encodes a query value byte by byte (a lone surrogate becomes U+FFFD's bytes, as UTF-8 does). */
function encodeQuery(s: string): string {
  return encodeSegment(s, false).replace(/[&=+;]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A path segment: encoded, or with raw percent signs and broken escapes left in. */
function pathPart(slashes: boolean) {
  return fc.tuple(anyString, fc.constantFrom('encode', 'encode', 'raw-percent')).map(([raw, how]) => {
    const encoded = encodeSegment(raw, slashes);
    return { raw, encoded: how === 'raw-percent' ? encoded.replace(/%25/g, '%') : encoded };
  });
}

const name = pathPart(true);
const reference = fc.oneof(
  pathPart(false),
  fc.tuple(fc.constantFrom('sha256', 'sha512', 'md5', 'SHA256', 'constructor', 'a+b'), fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFg=_-'), maxLength: 140 })).map(([alg, hex]) => {
    const raw = `${alg}:${hex}`;
    return { raw, encoded: raw };
  }),
);

/** JSON numbers JavaScript cannot hold exactly, or at all. */
const hugeNumber = fc.constantFrom('1e400', '-1e400', '123456789012345678901234567890', '-0', '0.0000000001', '9007199254740993', '2.0', '2e0', '1E1', '-1');

/** Raw JSON text nested `depth` arrays or objects deep. */
const deepJSON = fc.tuple(fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 5_000, max: 150_000 })), fc.boolean()).map(([depth, arrays]) =>
  arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
);

/** A JSON value as raw text: any JSON, a hostile string, a huge number, or deep nesting. */
const hostileValue = fc.oneof(
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 2, arbitrary: anyString.map((s) => JSON.stringify(s)) },
  { weight: 1, arbitrary: hugeNumber },
  { weight: 2, arbitrary: deepJSON },
);

// ---- the server ------------------------------------------------------------------------------

describe('fuzz: no 5xx, no crash, always the error envelope', () => {
  let server: TestServer;
  let url: string;
  let agent: Agent;
  let repo: string;
  let image: PushedImage;
  let blob: string;
  let runs = 0;

  before(async () => {
    server = await startTestServer();
    url = server.url;
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    repo = uniqueName('fuzz');
    image = await pushImage(url, repo, 'v1', { layerCount: 2 });
    blob = await pushBlob(url, repo, Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'));
  });
  after(async () => {
    agent.destroy();
    await server.close();
  });

  function send(p: Probe): Promise<Reply> {
    const target = new URL(url);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...p.headers };
      if (p.body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) headers['Content-Length'] = String(p.body.length);
      const req = httpRequest(
        { host: target.hostname, port: target.port, method: p.method, path: p.path, headers, agent: p.fresh ? false : agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error(`no answer within 10 s: ${p.method} ${p.path.slice(0, 200)}`)));
      req.on('error', reject);
      req.end(p.body);
    });
  }

  /** Sends `p` and checks the answer: below 500, an envelope when it is a /v2 error, no echo; then that the server still answers. */
  async function probe(p: Probe): Promise<Reply | undefined> {
    runs++;
    const what = `${p.method} ${p.path.slice(0, 200)} ${JSON.stringify(p.headers ?? {}).slice(0, 300)}`;
    let reply: Reply | undefined;
    try {
      reply = await send(p);
    } catch (err) {
      // Node's parser refuses some bytes with a bodiless 400 and a closed connection, which may
      // reach the client as a reset; anything else that gets no answer is a finding.
      if (!p.refusable) throw new Error(`${what}: ${(err as Error).message}`);
    }
    if (reply) check(p, what, reply);
    const alive = await send({ method: 'GET', path: '/v2/', headers: { Authorization: AUTH } });
    assert.equal(alive.status, 200, `after ${what}: the server stopped answering`);
    return reply;
  }

  function check(p: Probe, what: string, reply: Reply): void {
    assert.ok(reply.status < 500, `${what}: ${reply.status} ${reply.text.slice(0, 500)}`);
    if (p.path.startsWith('/v2') && reply.status >= 300 && reply.text.length > 0) {
      assert.match(String(reply.headers['content-type']), /^application\/json/, `${what}: error Content-Type`);
      let body: unknown;
      try {
        body = JSON.parse(reply.text);
      } catch {
        assert.fail(`${what}: error body is not JSON: ${reply.text.slice(0, 300)}`);
      }
      const errors = (body as { errors?: unknown }).errors;
      assert.ok(Array.isArray(errors) && errors.length > 0, `${what}: not an error envelope: ${reply.text.slice(0, 300)}`);
      for (const e of errors as { code?: unknown; message?: unknown; detail?: unknown }[]) {
        assert.ok(typeof e.code === 'string' && Object.hasOwn(ERROR_CODES, e.code), `${what}: undeclared code ${String(e.code)}`);
        assert.equal(typeof e.message, 'string', `${what}: message`);
        const shown = JSON.stringify([e.message, e.detail ?? null]);
        for (const input of p.inputs ?? []) {
          if (!echoCandidate(input)) continue;
          assert.ok(!shown.includes(input) && !shown.includes(JSON.stringify(input).slice(1, -1)), `${what}: the error echoes the input ${JSON.stringify(input.slice(0, 80))}: ${reply.text.slice(0, 500)}`);
        }
      }
    }
  }

  const options = (numRuns: number) => ({ seed: SEED, numRuns, endOnFailure: true });

  test('manifest bodies: wrong types in every field, deep nesting, huge numbers, unicode, invalid UTF-8', async () => {
    const fields = ['schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'subject', 'annotations', 'artifactType', 'config.digest', 'config.size', 'config.mediaType', 'layers.0', 'layers.0.urls', 'layers.0.annotations'] as const;
    const mutated = fc.tuple(fc.uniqueArray(fc.constantFrom(...fields), { minLength: 1, maxLength: 3 }), fc.array(hostileValue, { minLength: 3, maxLength: 3 }), fc.constantFrom(MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest)).map(([which, values, mediaType]) => {
      // The pushed image's manifest, with the chosen fields replaced by raw JSON text.
      const base = JSON.parse(image.bytes.toString('utf8')) as Record<string, unknown>;
      base.mediaType = mediaType;
      const raw = new Map<string, string>();
      which.forEach((field, i) => {
        const marker = `@@${i}@@`;
        const path = field.split('.');
        let at: Record<string, unknown> = base;
        for (const key of path.slice(0, -1)) {
          const next = at[key];
          if (typeof next !== 'object' || next === null) at[key] = {};
          at = at[key] as Record<string, unknown>;
        }
        at[path.at(-1)!] = marker;
        raw.set(`"${marker}"`, values[i]!);
      });
      let text = JSON.stringify(base);
      for (const [marker, value] of raw) text = text.replace(marker, () => value);
      // A JSON string is checked as the string it holds (a known media type may rightly be shown).
      const inputs = [...raw.values()].map((v) => (v.startsWith('"') ? (JSON.parse(v) as string) : v));
      return { text, inputs, mediaType };
    });
    const body = fc.oneof(
      { weight: 5, arbitrary: mutated.map(({ text, inputs, mediaType }) => ({ body: Buffer.from(text), inputs, mediaType })) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => ({ body: Buffer.from(JSON.stringify(v) ?? ''), inputs: [] as string[] })) },
      { weight: 1, arbitrary: deepJSON.map((t) => ({ body: Buffer.from(t), inputs: [] as string[] })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => ({ body: Buffer.from(b), inputs: [] as string[] })) },
      { weight: 1, arbitrary: anyString.map((s) => ({ body: Buffer.from(s), inputs: [s] })) },
      // Valid JSON around bytes that are not UTF-8.
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 50 }).map((b) => ({ body: Buffer.concat([Buffer.from('{"schemaVersion":2,"mediaType":"'), Buffer.from(b).map((x) => x | 0x80), Buffer.from('"}')]), inputs: [] as string[] })) },
    );
    // Mostly the body's own media type, so validation gets past the header to every field.
    const contentType = fc.oneof(
      { weight: 4, arbitrary: fc.constant('same') },
      { weight: 1, arbitrary: fc.constantFrom(undefined, MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerSchema1, 'application/json', `${MEDIA.ociManifest}; charset=utf-8`) },
      { weight: 1, arbitrary: headerText },
    );
    await fc.assert(
      fc.asyncProperty(body, contentType, fc.oneof({ weight: 3, arbitrary: fc.constant({ raw: 'fuzz', encoded: 'fuzz' }) }, { weight: 1, arbitrary: reference }), async (b, chosen, ref) => {
        const headers: Record<string, string> = { Authorization: AUTH };
        const type = chosen === 'same' ? ('mediaType' in b ? b.mediaType : MEDIA.ociManifest) : chosen;
        if (type !== undefined) headers['Content-Type'] = type;
        await probe({ method: 'PUT', path: `/v2/${repo}/manifests/${ref.encoded}`, headers, body: b.body, inputs: [...b.inputs, ...(type ? [type] : []), ref.raw, ref.encoded, b.body.toString('utf8')] });
      }),
      options(700),
    );
  });

  test('repository names, references and upload ids on every endpoint', async () => {
    const endpoint = fc.constantFrom(
      'GET manifests',
      'HEAD manifests',
      'PUT manifests',
      'DELETE manifests',
      'GET blobs',
      'HEAD blobs',
      'DELETE blobs',
      'POST uploads',
      'POST monolithic',
      'POST mount',
      'PATCH upload',
      'PUT upload',
      'GET upload',
      'DELETE upload',
      'GET tags',
      'GET referrers',
    );
    await fc.assert(
      fc.asyncProperty(endpoint, fc.oneof({ weight: 3, arbitrary: name }, { weight: 1, arbitrary: fc.constant({ raw: '', encoded: '' }) }), reference, fc.boolean(), async (e, n, ref, ownRepo) => {
        // Half the runs use the fixture repository, so the reference (not the name) is what fails.
        const repoPart = ownRepo ? repo : n.encoded;
        const [method, kind] = e.split(' ') as [string, string];
        const body = method === 'PUT' || method === 'PATCH' || kind === 'monolithic' ? Buffer.from('{}') : undefined;
        const q = encodeQuery(ref.raw);
        const paths: Record<string, string> = {
          manifests: `/v2/${repoPart}/manifests/${ref.encoded}`,
          blobs: `/v2/${repoPart}/blobs/${ref.encoded}`,
          uploads: `/v2/${repoPart}/blobs/uploads/`,
          monolithic: `/v2/${repoPart}/blobs/uploads/?digest=${q}`,
          mount: `/v2/${repoPart}/blobs/uploads/?mount=${q}&from=${encodeQuery(n.raw)}`,
          upload: `/v2/${repoPart}/blobs/uploads/${ref.encoded}${method === 'PUT' ? `?digest=${q}` : ''}`,
          tags: `/v2/${repoPart}/tags/list`,
          referrers: `/v2/${repoPart}/referrers/${ref.encoded}`,
        };
        await probe({
          method,
          path: paths[kind]!,
          headers: { Authorization: AUTH, ...(body ? { 'Content-Type': method === 'PUT' && kind === 'manifests' ? MEDIA.ociManifest : 'application/octet-stream' } : {}) },
          ...(body ? { body } : {}),
          inputs: [n.raw, n.encoded, ref.raw, ref.encoded],
        });
      }),
      options(600),
    );
  });

  test('headers: Accept, Content-Type, Content-Length, Content-Range, X-Request-Id', async () => {
    const number = fc.oneof(fc.nat({ max: 100 }), fc.constantFrom(2 ** 53, 2 ** 64, 1e21)).map((n) => BigInt(Math.trunc(n)).toString());
    const contentRange = fc.oneof(
      headerText,
      fc.tuple(fc.constantFrom('', 'bytes ', 'bytes='), number, number, fc.constantFrom('', '/*', '/10', '/x')).map(([unit, a, b, total]) => `${unit}${a}-${b}${total}`),
      // Starting where an empty upload ends, so the chunk is written and its length compared.
      fc.tuple(fc.constantFrom('', 'bytes '), fc.nat({ max: 80 })).map(([unit, end]) => `${unit}0-${end}`),
    );
    // Lengths that are not numbers (Node's parser refuses them), the true one, or one too large for a manifest.
    const contentLength = fc.oneof(
      fc.tuple(fc.stringMatching(/^[0-9]{0,4}$/), fc.constantFrom('a', 'x', 'e3', '0x', 'z9')).map(([d, x]) => d + x),
      fc.constant('exact'),
      fc.constant('99999999'),
    );
    const scenario = fc.constantFrom('GET manifest', 'PUT manifest', 'PATCH upload', 'PUT upload');
    await fc.assert(
      fc.asyncProperty(scenario, headerText, contentRange, contentLength, headerText, fc.uint8Array({ maxLength: 64 }), async (s, text, range, length, requestId, bytes) => {
        const headers: Record<string, string> = { Authorization: AUTH, 'X-Request-Id': requestId };
        const inputs = [text, range, requestId];
        let path: string;
        let method: string;
        let body: Buffer | undefined = Buffer.from(bytes);
        if (s === 'GET manifest') {
          method = 'GET';
          path = `/v2/${repo}/manifests/v1`;
          headers.Accept = text;
          body = undefined;
        } else if (s === 'PUT manifest') {
          method = 'PUT';
          path = `/v2/${repo}/manifests/fuzz-headers`;
          headers['Content-Type'] = text;
          body = image.bytes;
        } else {
          const start = await send({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, headers: { Authorization: AUTH } });
          assert.equal(start.status, 202, start.text);
          const location = String(start.headers.location);
          method = s === 'PATCH upload' ? 'PATCH' : 'PUT';
          path = method === 'PUT' ? `${location}?digest=${encodeURIComponent(`sha256:${'0'.repeat(64)}`)}` : location;
          headers['Content-Range'] = range;
        }
        if (body && length !== 'exact') {
          // A too-large declared length only on a manifest, which is refused before its body is read.
          if (length !== '99999999' || s === 'PUT manifest') headers['Content-Length'] = length;
          inputs.push(length);
        }
        const lies = headers['Content-Length'] !== undefined;
        const reply = await probe({ method, path, headers, ...(body ? { body } : {}), fresh: lies, refusable: lies, inputs });
        if (reply && !/^[\w.-]{1,64}$/.test(requestId)) assert.notEqual(reply.headers['x-request-id'], requestId, 'an invalid request id is replaced');
      }),
      options(400),
    );
  });

  test('blob Range requests', async () => {
    const number = fc.oneof(fc.nat({ max: 60 }), fc.constantFrom(2 ** 53, 1e21, 2 ** 64)).map((n) => BigInt(Math.trunc(n)).toString());
    const range = fc.oneof(
      headerText,
      fc.tuple(fc.constantFrom('bytes=', 'bytes =', 'BYTES=', 'items=', 'bytes=-', ''), fc.option(number), fc.option(number), fc.constantFrom('', ',0-1', ', 5-', ' ')).map(([unit, a, b, more]) => `${unit}${a ?? ''}-${b ?? ''}${more}`),
    );
    await fc.assert(
      fc.asyncProperty(range, fc.constantFrom('GET', 'HEAD'), fc.boolean(), async (r, method, layer) => {
        const digest = layer ? image.layers[0]!.digest : blob;
        const reply = await probe({ method, path: `/v2/${repo}/blobs/${digest}`, headers: { Authorization: AUTH, Range: r }, inputs: [r] });
        if (reply?.status === 416) assert.match(String(reply.headers['content-range']), /^bytes \*\/\d+$/);
      }),
      options(300),
    );
  });

  test('listing queries and Authorization headers', async () => {
    const scheme = fc.constantFrom('Basic ', 'Bearer ', 'basic ', 'Digest ', '', 'Basic', 'Bearer');
    const authorization = fc.oneof(
      fc.tuple(scheme, headerText).map(([s, v]) => s + v),
      fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 })).map(([u, p]) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`),
      fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.'), maxLength: 400 }).map((t) => `Bearer ${t}`),
    );
    const kind = fc.constantFrom('tags', 'catalog', 'referrers', 'auth', 'auth', 'auth-repo');
    await fc.assert(
      fc.asyncProperty(kind, anyString, anyString, authorization, async (k, a, b, auth) => {
        const n = encodeQuery(a);
        const last = encodeQuery(b);
        const cases: Record<string, Probe> = {
          tags: { method: 'GET', path: `/v2/${repo}/tags/list?n=${n}&last=${last}`, headers: { Authorization: AUTH }, inputs: [a, b] },
          catalog: { method: 'GET', path: `/v2/_catalog?n=${n}&last=${last}`, headers: { Authorization: AUTH }, inputs: [a, b] },
          referrers: { method: 'GET', path: `/v2/${repo}/referrers/${image.digest}?artifactType=${n}`, headers: { Authorization: AUTH }, inputs: [a] },
          auth: { method: 'GET', path: '/v2/', headers: { Authorization: auth }, inputs: [auth, auth.slice(auth.indexOf(' ') + 1)] },
          'auth-repo': { method: 'GET', path: `/v2/${repo}/tags/list`, headers: { Authorization: auth }, inputs: [auth, auth.slice(auth.indexOf(' ') + 1)] },
        };
        await probe(cases[k]!);
      }),
      options(300),
    );
  });

  test('the budget was spent on real requests', () => {
    assert.ok(runs >= 2000, `requests sent: ${runs}`);
  });
});
