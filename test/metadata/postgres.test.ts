// What differs on PostgreSQL: numbers as on SQLite, connection failures that name database.url
// but never its password, pooled connections that fail without taking the process down, TLS as
// libpq users expect, relaxed transactions, and one signing key for replicas starting together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { loadSigningKey } from '../../src/auth/keys.ts';
import { TokenService } from '../../src/auth/tokens.ts';
import { configSchema } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/config/overrides.ts';
import { openMetadataFor } from '../../src/metadata/index.ts';
import { postgresClientConfig } from '../../src/metadata/postgres.ts';
import { completeUpload, metadataPlace, putManifest, withMetadataOn } from '../support/metadata.ts';
import { sharedPostgres, startPostgres } from '../support/postgres.ts';
import { freePort } from '../support/system.ts';
import { createTlsMaterial } from '../support/tls.ts';

const PASSWORD = 'Hunter2-do-not-print';
const digest = (c: string) => `sha256:${c.repeat(64)}`;

/** Runs `open` and returns the ConfigError it rejects with. */
async function configErrorOf(open: () => Promise<unknown>): Promise<ConfigError> {
  try {
    await open();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err;
  }
  assert.fail('the database opened');
}

test('bigint and numeric results are numbers, as on SQLite; beyond 2^53 a query fails instead of rounding', async () => {
  await withMetadataOn('postgres', async (meta, place) => {
    await meta.users.create('alice', 'hash', false);
    const projectId = await meta.projects.ensure('team', undefined);
    await meta.projects.charge(projectId, digest('a'), 3_000_000_000);
    const row = await meta.db
      .selectFrom('project_usage')
      .select((eb) => [eb.fn.sum<number>('bytes').as('sum'), eb.fn.countAll<number>().as('count'), eb.fn.max('bytes').as('max')])
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { sum: 3_000_000_000, count: 1, max: 3_000_000_000 });
    const user = await meta.users.find('alice');
    assert.equal(typeof user?.created_at, 'number');
    assert.equal(await meta.projects.usage(projectId), 3_000_000_000);

    // Two shards whose sum is 2^53: not representable exactly, so not returned at all.
    await place.query('INSERT INTO project_usage (project_id, shard, bytes) VALUES ($1, 99, $2)', [projectId, 2 ** 53 - 3_000_000_000]);
    await assert.rejects(meta.projects.usage(projectId), (err: unknown) => err instanceof RangeError && /9007199254740992, beyond/.test(err.message));
    await place.query('UPDATE project_usage SET bytes = 9007199254740993 WHERE shard = 99');
    await assert.rejects(meta.db.selectFrom('project_usage').select('bytes').execute(), RangeError);
  });
});

test('a failed connection is a ConfigError naming database.url and the host, never the password', async () => {
  const server = await sharedPostgres();
  const closed = await freePort();
  const refused = await configErrorOf(() => openMetadataFor(configSchema.parse({ database: { url: `postgres://berth:${PASSWORD}@127.0.0.1:${closed}/berth` } })));
  assert.match(refused.message, new RegExp(`^database\\.url postgres://berth@127\\.0\\.0\\.1:${closed}/berth: cannot connect to PostgreSQL: connection refused by 127\\.0\\.0\\.1:${closed}`));

  const missing = await configErrorOf(() => openMetadataFor(configSchema.parse({ database: { url: `postgres://postgres:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/no_such_db` } })));
  assert.match(missing.message, /^database\.url postgres:\/\/postgres@127\.0\.0\.1:\d+\/no_such_db: .*database "no_such_db" does not exist; create it/);

  const badFile = await configErrorOf(async () => postgresClientConfig(configSchema.parse({ database: { url: `postgres://u:${PASSWORD}@127.0.0.1/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem` } })));
  assert.match(badFile.message, /^database\.url: ENOENT/);

  for (const err of [refused, missing, badFile]) {
    assert.ok(!err.message.includes(PASSWORD) && !err.message.includes(encodeURIComponent(PASSWORD)), `no password in: ${err.message}`);
    assert.ok(!String(err.stack).includes(PASSWORD));
  }
});

test('a pooled connection that dies — idle, or held between two queries of a transaction — is reported, and the pool recovers', async () => {
  const reported: Error[] = [];
  await withMetadataOn('postgres', async (meta, place) => {
    const pidOf = async (on = meta.db) => (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(on)).rows[0]!.pid;
    const idle = await pidOf();
    await place.query('SELECT pg_terminate_backend($1)', [idle]);
    for (let i = 0; i < 50 && reported.length === 0; i++) await sleep(100);
    assert.ok(reported.length > 0, 'the idle connection’s failure was reported');

    // Without a listener of its own, a client that fails while checked out would crash the process.
    const before = reported.length;
    await assert.rejects(
      meta.db.transaction().execute(async (tx) => {
        await place.query('SELECT pg_terminate_backend($1)', [await pidOf(tx)]);
        for (let i = 0; i < 50 && reported.length === before; i++) await sleep(100);
        await sql`select 1`.execute(tx);
      }),
    );
    assert.ok(reported.length > before, 'the held connection’s failure was reported');

    await meta.users.create('after', 'hash', false);
    assert.equal(await meta.users.count(), 1, 'new connections serve what follows');
  }, { onConnectionError: (err) => reported.push(err) });
});

test('replicas starting together on a fresh database migrate once and share one signing key', async () => {
  const place = await metadataPlace('postgres');
  try {
    const replicas = await Promise.all([0, 1, 2].map(async () => {
      const meta = await place.open();
      return { meta, key: await loadSigningKey(place.config, meta) };
    }));
    try {
      assert.equal(new Set(replicas.map((r) => r.key.kid)).size, 1, 'one kid');
      assert.equal((await place.query('SELECT name FROM signing_keys')).length, 1);
      // Racing stores of one name directly: everyone reads back the first.
      const raced = await Promise.all(replicas.flatMap((r, i) => [0, 1, 2].map((j) => r.meta.signingKeys.ensure('race', () => `pem ${i}.${j}`))));
      assert.equal(new Set(raced).size, 1);

      const settings = { issuer: 'berth', service: 'berth', ttl: 300, refreshTTL: 3600 };
      const [one, two] = replicas.map((r) => new TokenService(r.key, settings));
      const token = await one!.issueAccess('alice', [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
      assert.equal((await two!.verifyAccess(token.token)).subject, 'alice', 'a token issued by one replica is accepted by another');
      const refresh = await two!.issueRefresh('alice', { cred: 'pw:0' });
      assert.equal((await one!.verifyRefresh(refresh)).subject, 'alice');

      // A replica restarting later reads the same key; auth.signingKey, when given, takes precedence.
      const again = await loadSigningKey(place.config, replicas[0]!.meta);
      assert.equal(again.kid, replicas[0]!.key.kid);
    } finally {
      for (const r of replicas) await r.meta.close();
    }
  } finally {
    await place.remove();
  }
});

test('a transaction of relaxed writes commits without waiting for its WAL flush; other writes wait', async () => {
  const seen: string[] = [];
  const query = pg.Client.prototype.query;
  // Records what reaches the server (the real one still runs every statement).
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    if (typeof args[0] === 'string') seen.push(args[0]);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  try {
    await withMetadataOn('postgres', async (meta) => {
      const relaxedCommits = () => seen.filter((s) => s === 'set local synchronous_commit = off').length;
      await meta.audit.record({ actor: 'alice', action: 'login', resourceType: 'user', resource: 'alice', success: true });
      await meta.audit.flush();
      assert.equal(relaxedCommits(), 1, 'the audit batch');
      const repositoryId = await meta.repositories.ensure('team/app');
      const projectId = (await meta.projects.find('team'))!.id;
      await meta.uploads.create('s1', 'team/app', null, null);
      await completeUpload(meta, 's1', { repositoryId, projectId, digest: digest('c'), size: 10 });
      await meta.users.create('bob', 'hash', false);
      assert.equal(relaxedCommits(), 1, 'a durable transaction and single statements commit as usual');
    });
  } finally {
    pg.Client.prototype.query = query;
  }
});

test('text with U+0000, which PostgreSQL cannot store, finds nothing and is stored without it', async () => {
  await withMetadataOn('postgres', async (meta, place) => {
    assert.equal(await meta.users.find('ad\u0000min'), undefined);
    await meta.audit.record({ actor: 'evil\u0000name', action: 'login.failed', resourceType: 'user', resource: 'x', success: false });
    await meta.audit.flush();
    assert.deepEqual(await place.query('SELECT actor FROM audit_log'), [{ actor: 'evil\uFFFDname' }]);
  });
});

test('concurrent pushes listing shared blobs in different orders do not deadlock', async () => {
  await withMetadataOn('postgres', async (meta) => {
    const repositoryId = await meta.repositories.ensure('team/app');
    const projectId = (await meta.projects.find('team'))!.id;
    const blobs = Array.from({ length: 20 }, (_, i) => `sha256:${String(i).padStart(64, '0')}`);
    for (const blob of blobs) await completeUpload(meta, undefined, { repositoryId, projectId, digest: blob, size: 10 });
    const pushes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => {
      const references = (i % 2 ? [...blobs].reverse() : blobs).map((d) => ({ digest: d, kind: 'blob' as const }));
      return putManifest(meta, { repositoryId, digest: `sha256:f${String(i).padStart(63, '0')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 5, references });
    }));
    assert.deepEqual(pushes.filter((p) => p.status === 'rejected').map((p) => String((p as PromiseRejectedResult).reason)), []);
    assert.equal(await meta.projects.usage(projectId), 20 * 10 + 30 * 5);
  });
});

test('a server with TLS and passwords: sslmode=require encrypts, database.tls.ca verifies, a bad certificate or password is a clear ConfigError', async () => {
  // A server of its own, with ssl turned on (its key must belong to the user it runs as) and a
  // password required of the user berth.
  const server = await startPostgres();
  const material = await createTlsMaterial({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const password = 'p@ss:w/rd%20 it';
  try {
    execFileSync('chown', ['-R', 'postgres:', material.dir]);
    const withAdmin = async <T>(body: (client: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: server.url('postgres') });
      await client.connect();
      try {
        return await body(client);
      } finally {
        await client.end();
      }
    };
    await withAdmin(async (admin) => {
      await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${material.serverCert}'`);
      await admin.query(`ALTER SYSTEM SET ssl_key_file = '${material.serverKey}'`);
      await admin.query('ALTER SYSTEM SET ssl = on');
      await admin.query(`CREATE ROLE berth LOGIN PASSWORD '${password}'`);
      const hba = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      writeFileSync(hba, 'local all all trust\nhost all berth 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n');
      await admin.query('SELECT pg_reload_conf()');
    });
    await server.createDatabase('tls_test');
    const base = server.url('tls_test');
    const encrypted = async (database: Record<string, unknown>) => {
      const meta = await openMetadataFor(configSchema.parse({ database }));
      try {
        return (await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(meta.db)).rows[0]?.ssl;
      } finally {
        await meta.close();
      }
    };
    // The reload reaches new connections shortly.
    for (let i = 0; i < 50 && (await encrypted({ url: `${base}?sslmode=require` }).catch(() => false)) !== true; i++) await sleep(100);

    assert.equal(await encrypted({ url: base }), false, 'no sslmode, no database.tls: plain, as libpq would not insist');
    assert.equal(await encrypted({ url: `${base}?sslmode=require` }), true, 'require: encrypted without verifying (libpq)');
    assert.equal(await encrypted({ url: base, tls: { ca: material.caCert } }), true, 'database.tls with the CA: verified');
    assert.equal(await encrypted({ url: `${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(material.caCert)}` }), true, 'libpq parameters alone');
    assert.equal(await encrypted({ url: base, tls: { verify: false } }), true, 'verify: false encrypts without verifying');

    const unverified = await configErrorOf(() => openMetadataFor(configSchema.parse({ database: { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${server.port}/tls_test`, tls: {} } })));
    assert.match(unverified.message, /^database\.url postgres:\/\/postgres@127\.0\.0\.1:\d+\/tls_test: cannot connect to PostgreSQL: the server's TLS certificate was not accepted/);
    assert.ok(!unverified.message.includes(PASSWORD));

    const asBerth = (secret: string) => `postgres://berth:${encodeURIComponent(secret)}@127.0.0.1:${server.port}/tls_test`;
    const wrong = await configErrorOf(() => openMetadataFor(configSchema.parse({ database: { url: asBerth(PASSWORD) } })));
    assert.match(wrong.message, /^database\.url postgres:\/\/berth@127\.0\.0\.1:\d+\/tls_test: cannot connect to PostgreSQL: password authentication failed for user "berth"; check the user and password in the URL$/);
    // Berth's user must be allowed to create its tables: a clear ConfigError says so.
    const denied = await configErrorOf(() => openMetadataFor(configSchema.parse({ database: { url: asBerth(password) } })));
    assert.match(denied.message, /^database\.url postgres:\/\/berth@127\.0\.0\.1:\d+\/tls_test: the user may not change the schema \(permission denied for table kysely_migration_lock\): make it the owner of the database/);
    await server.createDatabase('owned');
    await withAdmin((client) => client.query('ALTER DATABASE owned OWNER TO berth'));
    const meta = await openMetadataFor(configSchema.parse({ database: { url: asBerth(password).replace('/tls_test', '/owned') } }));
    assert.equal(await meta.users.count(), 0, 'the right password, URL-encoded, opens it');
    await meta.close();

    const conflicting = await configErrorOf(async () => postgresClientConfig(configSchema.parse({ database: { url: `${base}?sslmode=disable`, tls: { ca: material.caCert } } })));
    assert.match(conflicting.message, /database\.tls is set but database\.url .* says sslmode=disable/);
    const unreadable = await configErrorOf(async () => postgresClientConfig(configSchema.parse({ database: { url: base, tls: { ca: join(material.dir, 'missing.pem') } } })));
    assert.match(unreadable.message, /^database\.tls\.ca .*missing\.pem: cannot be read \(ENOENT\)/);
  } finally {
    await server.stop();
    rmSync(material.dir, { recursive: true, force: true });
  }
});
