// The GC race suite (issue 14): 32 clients push images that share layers with images being deleted,
// while garbage collection runs in a loop — with a grace period of seconds, so the sweep takes
// content seconds after its last reference went. No push may fail except with a clean, retryable
// error; every manifest acknowledged and not deleted must pull completely afterwards; and once the
// load stops and the grace period passes, storage holds exactly the referenced content.
// Runs on this process's backend (test/postgres-s3/gc-race.test.ts runs it on PostgreSQL + S3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../../src/config/schema.ts';
import { openBlobStore } from '../../src/storage/index.ts';
import { backendConfig, serverQuery, testBackend } from '../support/backend.ts';
import { api, expectStatus } from '../support/api.ts';
import { MEDIA } from '../support/oci.ts';
import { adminBasic, startTestServer } from '../support/server.ts';

const SECONDS = Number(process.env.BERTH_RACE_SECONDS ?? 60);
const CLIENTS = 32;
// Longer than a push takes under this load — seconds on S3 served by moto, which answers the 32
// clients at a few pushes a second even without GC — so content uploaded for a push is not
// collected before its manifest arrives, yet deleted images' content goes seconds later.
const GRACE_SECONDS = testBackend() === 'postgres-s3' ? 15 : 2;
const AUTH = adminBasic();

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

interface Blob {
  digest: string;
  bytes: Buffer<ArrayBuffer>;
}

interface Image {
  repo: string;
  tag: string;
  digest: string;
  blobs: Blob[];
}

/** A push step refused in a way a client retries: the content it relied on was collected meanwhile. */
class Retry extends Error {}

/** Codes a registry client retries the push after (what GC's races may answer, by design). */
function classify(status: number, text: string, what: string): never {
  let code = '';
  try {
    code = (JSON.parse(text) as { errors: { code: string }[] }).errors[0]!.code;
  } catch {
    // Not an envelope: not a clean error.
  }
  if ((status === 404 && (code === 'MANIFEST_BLOB_UNKNOWN' || code === 'BLOB_UNKNOWN')) || (status === 400 && code === 'BLOB_UPLOAD_INVALID') || (status === 503 && code === 'UNAVAILABLE')) {
    throw new Retry(code);
  }
  throw new Error(`${what}: ${status} ${text.slice(0, 300)}`);
}

async function pushBlob(url: string, repo: string, blob: Blob): Promise<void> {
  const head = await fetch(`${url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD', headers: { Authorization: AUTH } });
  if (head.status === 200) return;
  const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: 'POST',
    headers: { Authorization: AUTH, 'Content-Type': 'application/octet-stream' },
    body: blob.bytes,
  });
  const text = await res.text();
  if (res.status !== 201) classify(res.status, text, `push blob ${blob.digest}`);
}

/** Pushes an image as a registry client does (HEAD, upload what is missing, PUT the manifest), retrying clean refusals. */
async function pushImage(url: string, image: Omit<Image, 'digest'>, manifest: Buffer<ArrayBuffer>, retries: Map<string, number>): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      for (const blob of image.blobs) await pushBlob(url, image.repo, blob);
      const res = await fetch(`${url}/v2/${image.repo}/manifests/${image.tag}`, {
        method: 'PUT',
        headers: { Authorization: AUTH, 'Content-Type': MEDIA.ociManifest },
        body: manifest,
      });
      const text = await res.text();
      if (res.status !== 201) classify(res.status, text, `push manifest ${image.repo}:${image.tag}`);
      return res.headers.get('docker-content-digest')!;
    } catch (err) {
      if (!(err instanceof Retry) || attempt >= 25) throw err;
      retries.set(err.message, (retries.get(err.message) ?? 0) + 1);
      await sleep(10 * attempt);
    }
  }
}

function layer(size: number): Blob {
  const bytes = Buffer.from(randomBytes(size));
  return { digest: sha256(bytes), bytes };
}

function manifestOf(config: Blob, layers: Blob[]): Buffer<ArrayBuffer> {
  const descriptor = (mediaType: string, b: Blob) => ({ mediaType, digest: b.digest, size: b.bytes.length });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: descriptor(MEDIA.ociConfig, config), layers: layers.map((l) => descriptor(MEDIA.ociLayer, l)) }));
}

/** Starts a GC and waits for its end; returns its final record. */
async function runGC(url: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  for (;;) {
    const res = await api(url, 'POST', '/system/gc', { auth: AUTH, body });
    if (res.status === 409) {
      await res.text();
      await sleep(50);
      continue;
    }
    const started = await expectStatus<{ id: number }>(res, 201, 'start gc');
    for (;;) {
      const run = await expectStatus<Record<string, unknown>>(await api(url, 'GET', `/system/gc/${started.id}`, { auth: AUTH }), 200);
      if (['succeeded', 'failed', 'cancelled'].includes(run.state as string)) return run;
      await sleep(100);
    }
  }
}

async function pullImage(url: string, image: Image): Promise<void> {
  const res = await fetch(`${url}/v2/${image.repo}/manifests/${image.tag}`, { headers: { Authorization: AUTH, Accept: MEDIA.ociManifest } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${image.repo}:${image.tag} pulls`);
  assert.equal(sha256(body), image.digest, `${image.repo}:${image.tag} is the acknowledged manifest`);
  for (const blob of image.blobs) {
    const b = await fetch(`${url}/v2/${image.repo}/blobs/${blob.digest}`, { headers: { Authorization: AUTH } });
    const bytes = Buffer.from(await b.arrayBuffer());
    assert.equal(b.status, 200, `${image.repo}: blob ${blob.digest} of ${image.tag} pulls`);
    assert.equal(sha256(bytes), blob.digest, `${image.repo}: blob ${blob.digest} is intact`);
  }
}

test(`GC race suite (${testBackend()}): ${CLIENTS} clients push and delete images sharing layers for ${SECONDS} s while GC runs in a loop`, { timeout: (SECONDS + 240) * 1000 }, async () => {
  const server = await startTestServer({ gc: { grace: GRACE_SECONDS }, jobs: { pollInterval: 1 } });
  try {
    const url = server.url;
    const base = Array.from({ length: 8 }, (_, i) => layer(4096 * (i + 1)));
    const live = new Map<string, Image>();
    const retries = new Map<string, number>();
    let pushed = 0;
    let deleted = 0;
    let untagged = 0;
    const deadline = Date.now() + SECONDS * 1000;

    const client = async (n: number): Promise<void> => {
      const repo = `race/r${n % 8}`;
      const mine: Image[] = [];
      for (let i = 0; Date.now() < deadline; i++) {
        const config = layer(64 + (i % 5));
        const blobs = [config, base[(n + i) % 8]!, base[(n * 3 + i) % 8]!, layer(2048 + ((n * 7 + i) % 4096))];
        const unique = blobs.filter((b, j) => blobs.findIndex((c) => c.digest === b.digest) === j);
        const image = { repo, tag: `c${n}-${i}`, blobs: unique };
        const manifest = manifestOf(config, unique.slice(1));
        const digest = await pushImage(url, image, manifest, retries);
        assert.equal(digest, sha256(manifest));
        const acknowledged = { ...image, digest };
        mine.push(acknowledged);
        live.set(`${repo}:${image.tag}`, acknowledged);
        pushed++;
        // Delete an earlier image of this client now and then: its layers are shared with pushes in flight.
        if (i % 3 === 2 && mine.length > 1) {
          const victim = mine.splice(Math.floor(Math.random() * (mine.length - 1)), 1)[0]!;
          live.delete(`${victim.repo}:${victim.tag}`);
          const byTag = i % 6 === 5;
          const res = await fetch(`${url}/v2/${victim.repo}/manifests/${byTag ? victim.tag : victim.digest}`, { method: 'DELETE', headers: { Authorization: AUTH } });
          assert.equal(res.status, 202, `delete ${victim.repo}@${victim.digest}: ${await res.text()}`);
          if (byTag) untagged++;
          else deleted++;
        }
      }
    };

    let gcRuns = 0;
    let gcDeleted = 0;
    const gcLoop = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const run = await runGC(url, { deleteUntagged: gcRuns % 2 === 1 });
        assert.equal(run.state, 'succeeded', `GC run ${JSON.stringify(run)}`);
        gcRuns++;
        gcDeleted += Number((run.figures as { blobsDeleted?: number } | undefined)?.blobsDeleted ?? (run.progress as { blobsDeleted?: number } | undefined)?.blobsDeleted ?? 0);
      }
    };

    const results = await Promise.allSettled([gcLoop(), ...Array.from({ length: CLIENTS }, (_, n) => client(n))]);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
    const retried = Object.fromEntries(retries);
    process.stdout.write(`# race: ${pushed} pushes acknowledged, ${deleted} deleted by digest, ${untagged} by tag, ${gcRuns} GC runs, ${gcDeleted} blobs collected, retries ${JSON.stringify(retried)}\n`);
    assert.deepEqual(failures, [], 'no push failed other than with a clean, retryable error');
    assert.ok(gcRuns >= 3, `GC ran in a loop (${gcRuns} runs)`);
    assert.ok(pushed >= CLIENTS * 3, `pushes went on (${pushed})`);

    // Every acknowledged manifest not deleted pulls completely, byte for byte.
    const images = [...live.values()];
    for (let i = 0; i < images.length; i += 32) await Promise.all(images.slice(i, i + 32).map((image) => pullImage(url, image)));

    // Past the grace period, one more GC leaves exactly the referenced content in storage.
    await sleep((GRACE_SECONDS + 1) * 1000);
    const final = await runGC(url, {});
    assert.equal(final.state, 'succeeded');
    const referenced = new Set<string>();
    for (const row of await serverQuery(server.dataDir, 'SELECT digest FROM manifests')) referenced.add(String(row.digest));
    for (const row of await serverQuery(server.dataDir, "SELECT child_digest FROM manifest_references WHERE kind = 'blob'")) referenced.add(String(row.child_digest));
    const rows = new Set((await serverQuery(server.dataDir, 'SELECT digest FROM blobs')).map((r) => String(r.digest)));
    const store = await openBlobStore(configSchema.parse({ dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) }));
    const stored = new Set<string>();
    try {
      let after: string | undefined;
      for (;;) {
        const page = await store.listBlobs(after, 1000);
        for (const b of page) stored.add(b.digest);
        if (page.length < 1000) break;
        after = page.at(-1)!.digest;
      }
    } finally {
      await store.close();
    }
    const sorted = (s: Set<string>) => [...s].sort();
    assert.deepEqual(sorted(rows), sorted(referenced), 'the metadata knows exactly the referenced content');
    assert.deepEqual(sorted(stored), sorted(referenced), 'storage holds exactly the referenced content');
    for (const image of images) for (const blob of image.blobs) assert.ok(stored.has(blob.digest));
  } finally {
    await server.close();
  }
});
