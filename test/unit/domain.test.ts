import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDigest, digestOf } from '../../src/domain/digest.ts';
import { assertRepositoryName, isTag } from '../../src/domain/names.ts';
import { RegistryError } from '../../src/domain/errors.ts';
import { parseManifest } from '../../src/domain/manifest.ts';
import { acceptsMediaType, MEDIA_TYPES } from '../../src/domain/media-types.ts';

const code = (c: string) => (err: unknown) => err instanceof RegistryError && err.code === c;
const D = `sha256:${'a'.repeat(64)}`;

test('digests: sha256 and sha512 accepted, everything else refused with DIGEST_INVALID', () => {
  assert.equal(parseDigest(D).algorithm, 'sha256');
  assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm, 'sha512');
  for (const bad of ['', 'sha256', `sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`, `sha256:${'g'.repeat(64)}`, 'sha256:../x']) {
    assert.throws(() => parseDigest(bad), code('DIGEST_INVALID'), bad);
  }
  assert.equal(digestOf(Buffer.alloc(0)), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('repository names follow the spec grammar', () => {
  for (const ok of ['a', 'team/app', 'a/b/c/d', 'a.b_c__d--e', 'x0/y-1']) assert.equal(assertRepositoryName(ok), ok);
  for (const bad of ['', 'A', 'a//b', '/a', 'a/', '-a', 'a-', 'a___b', '..', 'a/../b', 'a b', 'x'.repeat(256)]) {
    assert.throws(() => assertRepositoryName(bad), code('NAME_INVALID'), bad);
  }
});

test('tags follow the spec grammar', () => {
  assert.ok(isTag('latest') && isTag('v1.2.3-rc_1') && isTag('_x') && isTag('a'.repeat(128)));
  assert.ok(!isTag('-x') && !isTag('.x') && !isTag('a'.repeat(129)) && !isTag('a/b') && !isTag(''));
});

const image = (extra: Record<string, unknown> = {}) =>
  Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'c'.repeat(64)}`, size: 10 }],
    ...extra,
  }));

test('manifests: references, subject and artifact type are extracted', () => {
  const m = parseManifest(image({ subject: { mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${'d'.repeat(64)}`, size: 5 } }), MEDIA_TYPES.ociManifest);
  assert.equal(m.kind, 'image');
  assert.deepEqual(m.blobs.map((b) => b.digest), [D, `sha256:${'c'.repeat(64)}`]);
  assert.equal(m.subject?.digest, `sha256:${'d'.repeat(64)}`);
  assert.equal(m.artifactType, 'application/vnd.oci.image.config.v1+json', 'falls back to the config media type');
  assert.equal(parseManifest(image({ artifactType: 'application/x.sbom' }), undefined).artifactType, 'application/x.sbom');
});

test('manifests: foreign layers with URLs are not required to exist', () => {
  const m = parseManifest(image({ layers: [{ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar', digest: `sha256:${'e'.repeat(64)}`, size: 1, urls: ['https://x'] }] }), undefined);
  assert.deepEqual(m.blobs.map((b) => b.digest), [D]);
});

test('manifests: invalid bodies are MANIFEST_INVALID naming the problem', () => {
  const cases: [Buffer, string | undefined, RegExp][] = [
    [Buffer.from('{"schemaVersion":2'), MEDIA_TYPES.ociManifest, /not valid JSON/],
    [Buffer.from('[]'), MEDIA_TYPES.ociManifest, /JSON object/],
    [image({ schemaVersion: 1 }), undefined, /schemaVersion/],
    [image(), MEDIA_TYPES.dockerManifest, /does not match/],
    [image({ mediaType: undefined }), undefined, /no media type/],
    [image({ mediaType: 'text/plain' }), undefined, /unsupported/],
    [image({ mediaType: MEDIA_TYPES.dockerSchema1Signed }), undefined, /schema 1/],
    [image({ config: { mediaType: 'x', digest: 'sha256:zz', size: 1 } }), undefined, /config.digest/],
    [image({ config: { mediaType: 'x', digest: D, size: -1 } }), undefined, /config.size/],
    [image({ layers: 'x' }), undefined, /layers must be an array/],
    [image({ annotations: { a: 1 } }), undefined, /annotations/],
  ];
  for (const [body, type, reason] of cases) {
    assert.throws(() => parseManifest(body, type), (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_INVALID' && reason.test(err.message), String(reason));
  }
});

test('errors name the field and the shape it needs, never the value sent', () => {
  const marker = 'ZQXJmarkerZQXJ';
  const detailOf = (fn: () => unknown): Record<string, unknown> => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof RegistryError);
      assert.ok(!JSON.stringify([err.message, err.detail]).includes(marker), `echoed: ${err.message} ${JSON.stringify(err.detail)}`);
      return err.detail as Record<string, unknown>;
    }
    assert.fail('did not throw');
  };
  assert.deepEqual(detailOf(() => parseManifest(image({ schemaVersion: marker }), undefined)), { reason: 'schemaVersion must be 2', field: 'schemaVersion', expected: 'the number 2' });
  assert.equal(detailOf(() => parseManifest(image({ config: { mediaType: 'x', digest: marker, size: 1 } }), undefined)).field, 'config.digest');
  assert.equal(detailOf(() => parseManifest(image({ mediaType: marker }), undefined)).field, 'mediaType');
  assert.equal(detailOf(() => parseManifest(image({ mediaType: marker }), MEDIA_TYPES.ociManifest)).field, 'mediaType');
  assert.deepEqual(detailOf(() => parseManifest(Buffer.from(`{"${marker}`), undefined)), { reason: 'body is not valid JSON', field: 'body', expected: 'a JSON object', position: 16 });
  assert.deepEqual(detailOf(() => parseManifest(Buffer.from(marker), undefined)), { reason: 'body is not valid JSON', field: 'body', expected: 'a JSON object' });
  // Known media types may be shown back: they are Berth's own vocabulary.
  assert.deepEqual(detailOf(() => parseManifest(image(), MEDIA_TYPES.dockerManifest)), {
    reason: 'Content-Type does not match the manifest mediaType field',
    field: 'mediaType',
    expected: 'the same media type as the Content-Type header',
    contentType: MEDIA_TYPES.dockerManifest,
    mediaType: MEDIA_TYPES.ociManifest,
  });
  assert.equal(detailOf(() => parseDigest(`sha256:${marker}`)).field, 'digest');
  assert.equal(detailOf(() => parseDigest(`${marker.toLowerCase()}:abc`, 'reference')).field, 'reference');
  assert.equal(detailOf(() => assertRepositoryName(marker)).field, 'name');
});

test('a digest algorithm named like an Object property is unsupported, not half-recognised', () => {
  for (const alg of ['constructor', 'tostring', 'valueof']) {
    assert.throws(() => parseDigest(`${alg}:abc`), (err: unknown) => err instanceof RegistryError && err.message === 'unsupported digest algorithm', alg);
  }
});

test('Accept negotiation', () => {
  assert.ok(acceptsMediaType(undefined, MEDIA_TYPES.ociIndex));
  assert.ok(acceptsMediaType('application/vnd.oci.image.index.v1+json, application/json;q=0.5', MEDIA_TYPES.ociIndex));
  assert.ok(acceptsMediaType('*/*', MEDIA_TYPES.ociIndex));
  assert.ok(!acceptsMediaType(MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociIndex));
});
