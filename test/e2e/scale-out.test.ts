// Berth scaled out exactly as deploy/scale-out/ describes it: three replicas on one PostgreSQL
// database and one S3 bucket, behind nginx round robin with TLS. Real clients (docker, ctr,
// skopeo) push and pull while consecutive requests land on different replicas; a replica is
// killed with SIGKILL in the middle of a large layer's upload — docker retries by itself and
// succeeds; skopeo stops on the proxy's 502 and a second skopeo copy succeeds — with no partial
// blob ever served; a long job claimed by a replica that dies is finished by another. The
// servers start once and every case shares them (one to two minutes on two cores).
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { type ClientRun, type RegistryTarget, pushPullCtr, pushPullDocker, pushPullSkopeo } from '../support/clients.ts';
import { type Dockerd, startDockerd } from '../support/dockerd.ts';
import { createRandomImage } from '../support/images.ts';
import { ProcessRegistry, tailFile } from '../support/processes.ts';
import { type ReplicaSet, bucketKeys, startReplicaSet } from '../support/replicas.ts';
import { cleanEnv, run } from '../support/run.ts';
import { type PushedImage, adminAuth, assertServesImage, blobDigestOn, getOverOneConnection, replicaReceiving, spreadOf, watchBlob } from '../support/scale-out-checks.ts';
import { jobTakeover } from '../support/scale-out-jobs.ts';
import { E2E_PACKAGES, ensurePackages, tmpDir } from '../support/system.ts';

const DOMAIN = 'berth-scale.test';
const KEEP = process.env['BERTH_E2E_KEEP'] === '1';
const MiB = 1 << 20;
/** The layer uploaded while its replica is killed: big enough to be cut in the middle. */
const BIG_LAYER = 96 * MiB;
/** Kill the receiving replica once it has read this much of the layer. */
const KILL_AFTER = 24 * MiB;

describe('three Berth replicas behind nginx round robin (deploy/scale-out)', { timeout: 12 * 60_000 }, () => {
  const registry = new ProcessRegistry();
  const scratch: string[] = [];
  const pushed: PushedImage[] = [];
  /** Upload sessions of the client pushes, and those whose requests more than one replica served. */
  const sessions = { total: 0, across: 0 };
  let failed = false;
  let set: ReplicaSet;
  let dockerd: Dockerd;

  before(
    async () => {
      failed = true; // until setup completes: keep the scratch dirs for a look
      if (process.getuid?.() !== 0) throw new Error('the scale-out e2e suite must run as root: it edits /etc/hosts, runs dockerd and binds port 443');
      await ensurePackages(E2E_PACKAGES);
      // A short lease, so a dead replica's job is taken over within seconds (the deployment says 60s).
      set = await startReplicaSet({ replicas: 3, registry, tlsHostname: DOMAIN, jobsLease: '5s' });
      scratch.push(...set.scratch);
      dockerd = await startDockerd({ registry, keepDir: KEEP });
      failed = false;
    },
    { timeout: 10 * 60_000 },
  );

  after(async () => registry.stopAllAndClean(scratch, KEEP || failed), { timeout: 3 * 60_000 });

  /** Runs a case; on failure keeps the scratch dirs and adds the ends of the logs to the error. */
  async function explained<T>(what: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      failed = true;
      if (!set) throw error;
      const logs = await Promise.all(set.replicas.map(async (r, i) => `--- replica ${i} (${r.logFile}) ---\n${await tailFile(r.logFile, 25)}`));
      logs.push(`--- nginx (${set.accessLog}) ---\n${await tailFile(set.accessLog, 30)}`);
      throw new Error(`${what}: ${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    }
  }

  function target(client: string): RegistryTarget {
    return {
      registryHost: set.registryHost,
      username: 'admin',
      password: set.adminPassword,
      repository: `scale/${client}`,
      tag: `t${Date.now()}`,
      tls: { caFile: set.tls!.caCert },
    };
  }

  test('nginx alternates consecutive requests over the three replicas, one keep-alive connection or not', () =>
    explained('round robin', async () => {
      const mark = (await set.proxiedRequests()).length;
      // One keep-alive connection to nginx for all nine: nginx still picks a replica per request.
      const statuses = await getOverOneConnection(set, '/v2/', 9);
      assert.deepEqual(statuses, Array(9).fill(200));
      await sleep(200);
      const requests = (await set.proxiedRequests()).slice(mark);
      assert.equal(requests.length, 9);
      const spread = await spreadOf(set, requests);
      assert.deepEqual(spread.perReplica, [3, 3, 3], `requests per replica: ${spread.perReplica}`);
      assert.equal(spread.alternating, 8, 'every request went to another replica than the one before');
    }),
  );

  for (const client of ['docker', 'ctr', 'skopeo'] as const) {
    test(`${client} pushes and pulls a fresh three-layer image; its requests are spread over every replica`, { timeout: 5 * 60_000 }, () =>
      explained(client, async () => {
        const image = await createRandomImage({ layerSizes: [1_600_000, 300_000, 48_000] });
        try {
          const to = target(client);
          const mark = (await set.proxiedRequests()).length;
          let done: ClientRun;
          if (client === 'docker') done = await pushPullDocker(to, image, { dockerEnv: dockerd.env });
          else if (client === 'ctr') done = await pushPullCtr(to, image, { containerdSocket: dockerd.containerdSocket });
          else done = await pushPullSkopeo(to, image);
          pushed.push({ repository: to.repository, tag: to.tag, manifestDigest: done.manifestDigest });
          assert.ok((await bucketKeys(set)).length >= 4, 'the blobs are in the shared bucket');
          await sleep(200);
          const requests = (await set.proxiedRequests()).slice(mark);
          const spread = await spreadOf(set, requests);
          const summary = `${spread.requests} requests, per replica ${spread.perReplica.join('/')}, ${spread.alternating} of ${spread.requests - 1} consecutive pairs on different replicas, ${spread.sessionsAcrossReplicas} of ${spread.sessions} upload sessions across replicas`;
          console.log(`# ${client}: ${summary}`);
          for (const [replica, n] of spread.perReplica.entries()) assert.ok(n >= spread.requests / 6, `replica ${replica} served ${n} requests: ${summary}`);
          assert.ok(spread.alternating >= (spread.requests - 1) / 2, `consecutive requests mostly on different replicas: ${summary}`);
          sessions.total += spread.sessions;
          sessions.across += spread.sessionsAcrossReplicas;
          // Every replica serves what went through all of them.
          for (const replica of set.replicas) await assertServesImage(replica.url, adminAuth(set), pushed.at(-1)!);
        } finally {
          await rm(image.dir, { recursive: true, force: true });
        }
      }),
    );
  }

  test('uploads begun on one replica continued and completed on others', () => {
    assert.ok(sessions.total >= 6, `the three pushes opened upload sessions of several requests: ${JSON.stringify(sessions)}`);
    // Round robin sends a session's next request elsewhere unless a multiple of three requests came
    // between; a client with three uploads in lockstep (ctr) can stay on one replica per upload.
    assert.ok(sessions.across >= 2, `sessions served by more than one replica: ${JSON.stringify(sessions)}`);
  });

  test('a replica killed with SIGKILL in the middle of skopeo pushing a 96 MiB layer: a second push completes, nothing partial is ever served, the replica comes back', { timeout: 5 * 60_000 }, () =>
    explained('kill during push', async () => {
      const image = await createRandomImage({ layerSizes: [BIG_LAYER, 200_000] });
      const work = await tmpDir('berth-scale-kill');
      try {
        // Compressed once beforehand, so the layer digests are known while the push runs (skopeo
        // sends gzip layers from a dir: as they are).
        const source = path.join(work, 'image');
        const registriesConf = path.join(work, 'registries.conf');
        await run('touch', [registriesConf]);
        const env = cleanEnv({ CONTAINERS_REGISTRIES_CONF: registriesConf, REGISTRY_AUTH_FILE: path.join(work, 'auth.json') });
        await run('skopeo', ['--insecure-policy', 'copy', '--dest-compress', `docker-archive:${image.archivePath}`, `dir:${source}`], { env, timeoutMs: 120_000 });
        const manifest = JSON.parse(await readFile(path.join(source, 'manifest.json'), 'utf8')) as { layers: { digest: string; size: number }[] };
        const big = manifest.layers.reduce((a, b) => (b.size > a.size ? b : a));
        const certDir = path.join(work, 'certs');
        await mkdir(certDir);
        await copyFile(set.tls!.caCert, path.join(certDir, 'ca.crt'));
        const to = target('killed');
        const push = ['--insecure-policy', 'copy', '--retry-times', '3', '--dest-creds', `${to.username}:${to.password}`, '--dest-cert-dir', certDir, '--digestfile', path.join(work, 'digest'), `dir:${source}`, `docker://${to.registryHost}/${to.repository}:${to.tag}`];

        const down = new Set<number>();
        const watch = watchBlob(set, to.repository, big.digest, big.size, down);
        const first = run('skopeo', push, { env, redact: [to.password], allowFailure: true, timeoutMs: 240_000 });
        const receiving = await replicaReceiving(set, KILL_AFTER, first, 120_000);
        assert.ok(receiving, 'no replica received the big layer: the push ended before the kill');
        down.add(receiving.index);
        await set.kill(receiving.index);
        const firstResult = await first;
        let how = 'skopeo retried by itself (--retry-times) and succeeded';
        if (firstResult.code !== 0) {
          // containers/image retries only errors it deems transient; a 502 from the proxy is not one.
          how = `skopeo's first command failed (${firstResult.stderr.trim().split('\n').at(-1)}); a second skopeo copy succeeded`;
          await run('skopeo', push, { env, redact: [to.password], timeoutMs: 240_000 });
        } else if (!/retrying|attempt/i.test(firstResult.stderr)) how = 'skopeo succeeded without reporting a retry';
        console.log(`# replica ${receiving.index} killed after reading ${(receiving.read / MiB).toFixed(0)} MiB; ${how}`);
        const report = await watch.stop();
        console.log(`# watch: HEAD statuses ${JSON.stringify(report.statuses)}, ${report.fullReads} full reads`);
        assert.deepEqual(report.violations, [], 'no replica ever served the layer partially');
        assert.ok((report.statuses['404'] ?? 0) > 0, 'the watch asked while the layer was not there yet');
        assert.ok((report.statuses['200'] ?? 0) >= 2 && report.fullReads >= 2, 'the watch saw the whole layer on the live replicas at the end');

        const manifestDigest = (await readFile(path.join(work, 'digest'), 'utf8')).trim();
        pushed.push({ repository: to.repository, tag: to.tag, manifestDigest });
        // The killed replica is dead: the two others serve everything, every image pushed so far.
        const live = set.replicas.filter((_, i) => i !== receiving.index);
        for (const replica of live) for (const image of pushed) await assertServesImage(replica.url, adminAuth(set), image);
        // Back again, the killed replica serves everything too, the big layer byte for byte.
        await set.restart(receiving.index);
        down.delete(receiving.index);
        const revived = set.replicas[receiving.index]!;
        for (const image of pushed) await assertServesImage(revived.url, adminAuth(set), image);
        assert.deepEqual(await blobDigestOn(revived.url, adminAuth(set), to.repository, big.digest), { status: 200, size: big.size, digest: big.digest });
      } finally {
        await rm(work, { recursive: true, force: true });
        await rm(image.dir, { recursive: true, force: true });
      }
    }),
  );

  test('a replica killed with SIGKILL in the middle of docker pushing a 96 MiB layer: docker retries by itself, the image pulls whole', { timeout: 5 * 60_000 }, () =>
    explained('kill during docker push', async () => {
      const image = await createRandomImage({ layerSizes: [BIG_LAYER, 200_000] });
      try {
        const to = target('killed-docker');
        // docker compresses the layer while it uploads it: its digest is known only at the end, so
        // this case checks the client's own retry and the result; the skopeo case watches a digest.
        const pushPull = pushPullDocker(to, image, { dockerEnv: dockerd.env, timeoutMs: 240_000 });
        const receiving = await replicaReceiving(set, KILL_AFTER, pushPull, 120_000);
        assert.ok(receiving, 'no replica received the big layer: the push ended before the kill');
        await set.kill(receiving.index);
        const done = await pushPull;
        const push = done.transcript.find((r) => r.commandLine.includes(' push '));
        const retried = /Retrying in \d+ seconds?/.test(`${push?.stdout}${push?.stderr}`);
        console.log(`# replica ${receiving.index} killed after reading ${(receiving.read / MiB).toFixed(0)} MiB; docker push ${retried ? 'retried the layer by itself and succeeded' : 'succeeded without a visible retry'}`);
        assert.ok(retried, `docker retried the layer upload cut by the kill:\n${push?.stdout}`);
        pushed.push({ repository: to.repository, tag: to.tag, manifestDigest: done.manifestDigest });
        for (const [index, replica] of set.replicas.entries()) {
          if (index !== receiving.index) for (const image of pushed) await assertServesImage(replica.url, adminAuth(set), image);
        }
        await set.restart(receiving.index);
        for (const image of pushed) await assertServesImage(set.replicas[receiving.index]!.url, adminAuth(set), image);
      } finally {
        await rm(image.dir, { recursive: true, force: true });
      }
    }),
  );

  test('a verify-blobs job claimed by a replica that dies is taken over and finished by another', { timeout: 4 * 60_000 }, () =>
    explained('job takeover', () => jobTakeover(set)),
  );
});
