// The replica-kill case of test/e2e/webhooks.test.ts: two Berth processes on one PostgreSQL
// database (and one data directory for blobs), a webhook, a push to the replica that holds the
// `webhooks` consumer lease, SIGKILL to it as soon as the push is acknowledged — before it can
// have read the event (its poll interval is long) — and the event still arrives, delivered by the
// other replica once the lease lapsed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { basic, expectStatus, api } from '../support/api.ts';
import { startBerth, type BerthServer } from '../support/berth.ts';
import { pushImage, uniqueName } from '../support/oci.ts';
import { sharedPostgres } from '../support/postgres.ts';
import { ProcessRegistry } from '../support/processes.ts';
import { tmpDir } from '../support/system.ts';
import { Receiver, verifyStandardWebhook } from '../webhooks/receiver.ts';

/** Owner (replica name) of the consumer lease `events:webhooks`, polled until some replica holds it. */
async function leaseOwner(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let i = 0; i < 100; i++) {
      const { rows } = await client.query<{ owner: string; expires_at: string }>("select owner, expires_at from leases where key = 'events:webhooks'");
      if (rows[0] && Number(rows[0].expires_at) > Date.now()) return rows[0].owner;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('no replica took the webhooks consumer lease');
  } finally {
    await client.end();
  }
}

export async function killedReplicaCase(): Promise<void> {
  const registry = new ProcessRegistry();
  const receiver = new Receiver();
  const postgres = await sharedPostgres();
  const database = `hooks_${randomBytes(4).toString('hex')}`;
  await postgres.createDatabase(database);
  const databaseUrl = postgres.url(database);
  const dataDir = await tmpDir('berth-hooks-replicas');
  const adminPassword = randomBytes(12).toString('base64url');
  try {
    await receiver.start();
    const env = {
      BERTH_DATABASE_URL: databaseUrl,
      // A short lease: the survivor takes the consumer over within seconds. A long poll: the
      // killed replica cannot have read the event between the push's answer and the kill.
      BERTH_EVENTS_LEASE: '2s',
      BERTH_EVENTS_POLL_INTERVAL: '1500ms',
      BERTH_JOBS_LEASE: '3s',
      BERTH_WEBHOOKS_RETRY_DELAY: '300ms',
    };
    const start = () => startBerth({ dataDir, adminPassword, registry, env });
    const first = await start();
    const second = await start();
    const replicas: BerthServer[] = [first, second];
    const admin = basic('admin', adminPassword);
    const project = uniqueName('killed');
    await expectStatus(await api(first.url, 'POST', '/projects', { auth: admin, body: { name: project } }), 201);
    const created = await expectStatus<{ secret: string }>(
      await api(first.url, 'POST', `/projects/${project}/webhooks`, { auth: admin, body: { name: 'sink', url: receiver.url('/sink'), events: ['artifact.pushed'], generateSecret: true } }),
      201,
    );
    const owner = await leaseOwner(databaseUrl);
    const holder = replicas.find((r) => r.process && owner.includes(`-${r.process.pid}-`));
    assert.ok(holder, `the lease owner ${owner} is one of the replicas`);
    const survivor = replicas.find((r) => r !== holder)!;
    // Wait out the change of the policy cache on the holder (a new policy counts within a second).
    await new Promise((r) => setTimeout(r, 1200));
    const image = await pushImage(holder.url, `${project}/app`, 'v1', { auth: admin });
    process.kill(holder.process!.pid, 'SIGKILL');
    await holder.process!.exited;
    const got = await receiver.waitFor((r) => r.body.includes(image.digest), 30_000);
    verifyStandardWebhook(created.secret, got.headers, got.body);
    // The survivor's delivery log shows it.
    const page = await expectStatus<{ items: { state: string; messageId: string }[] }>(await api(survivor.url, 'GET', `/projects/${project}/webhooks/sink/deliveries`, { auth: admin }), 200);
    assert.ok(page.items.some((d) => d.messageId === got.headers['webhook-id']));
    // And it was the survivor that took the outbox reader over.
    const log = await readFile(survivor.logFile, 'utf8');
    assert.ok(log.split('\n').some((line) => line.includes('took the event consumer lease') && line.includes('"consumer":"webhooks"')), 'the survivor took the webhooks consumer over');
  } finally {
    await registry.stopAll();
    await receiver.stop();
    await postgres.dropDatabase(database).catch(() => undefined);
    await postgres.stop();
  }
}
