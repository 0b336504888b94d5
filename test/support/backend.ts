// Which stores the suites run Berth on. `BERTH_TEST_BACKEND=postgres-s3` gives every test server
// a database of its own on a shared PostgreSQL and a key prefix of its own in one bucket of a
// shared S3 server (both started once by test/run.js, or by the first test file that needs them);
// unset, Berth runs embedded (SQLite + filesystem under the server's data directory).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { signingKeyFromPem, type SigningKey } from '../../src/auth/keys.ts';
import { sharedPostgres } from './postgres.ts';
import { sharedS3 } from './s3.ts';

export type Backend = 'sqlite-fs' | 'postgres-s3';

/** The backend of this test process. */
export function testBackend(): Backend {
  return process.env.BERTH_TEST_BACKEND === 'postgres-s3' ? 'postgres-s3' : 'sqlite-fs';
}

/** The bucket every test server shares (each under its own prefix). */
export const TEST_BUCKET = 'berth-test';

let bucket: Promise<void> | undefined;

/** The database name of the server whose data directory is `dataDir` (stable, so a restart finds its data). */
export function databaseName(dataDir: string): string {
  return `b_${createHash('sha256').update(dataDir).digest('hex').slice(0, 20)}`;
}

/**
 * Configuration that puts the server of `dataDir` on this process's backend: nothing for the
 * embedded one; `database` and `storage` sections for PostgreSQL + S3.
 */
export async function backendConfig(dataDir: string): Promise<Record<string, unknown>> {
  if (testBackend() === 'sqlite-fs') return {};
  const [postgres, s3] = await Promise.all([sharedPostgres(), sharedS3()]);
  const name = databaseName(dataDir);
  bucket ??= s3.createBucket(TEST_BUCKET);
  await Promise.all([postgres.createDatabase(name), bucket]);
  return {
    database: { url: postgres.url(name), poolSize: 4 },
    storage: {
      s3: {
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: TEST_BUCKET,
        prefix: `${name}/`,
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: true,
        partSize: 5 * 1024 * 1024,
      },
    },
  };
}

/**
 * Runs one SQL statement on the database of the server of `dataDir`, whichever the backend (for
 * tests that set up what no API can, such as an expiry in the past). Parameters are written `?`.
 */
export async function serverQuery(dataDir: string, text: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
  if (testBackend() === 'sqlite-fs') {
    const { default: SQLite } = await import('better-sqlite3');
    const db = new SQLite(join(dataDir, 'berth.db'));
    try {
      const statement = db.prepare(text);
      return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
    } finally {
      db.close();
    }
  }
  const postgres = await sharedPostgres();
  const client = new pg.Client({ connectionString: postgres.url(databaseName(dataDir)) });
  await client.connect();
  try {
    let n = 0;
    return (await client.query(text.replace(/\?/g, () => `$${++n}`), [...params])).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/** The ids of the upload sessions the database of the server of `dataDir` records. */
export async function uploadSessionIds(dataDir: string): Promise<string[]> {
  return (await serverQuery(dataDir, 'SELECT id FROM upload_sessions ORDER BY id')).map((row) => String(row.id));
}

/**
 * What the blob storage of the server of `dataDir` holds for uploads, one name per upload: the
 * entries of `<dataDir>/storage/uploads` on the filesystem (where small content is also staged
 * briefly), the upload ids under the server's `uploads/` prefix on S3 — whether as objects or as
 * multipart uploads in progress, since either is stored bytes. Sorted.
 */
export async function storedUploads(dataDir: string): Promise<string[]> {
  if (testBackend() === 'sqlite-fs') return readdirSync(join(dataDir, 'storage', 'uploads')).sort();
  const s3 = await sharedS3();
  const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  const prefix = `${databaseName(dataDir)}/uploads/`;
  const ids = new Set<string>();
  const add = (key: string | undefined) => {
    const id = key?.slice(prefix.length).split('/')[0];
    if (id) ids.add(id);
  };
  try {
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: prefix, ContinuationToken: token }));
      for (const o of out.Contents ?? []) add(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: TEST_BUCKET, Prefix: prefix, ...markers }));
      for (const u of out.Uploads ?? []) add(u.Key);
      if (!out.IsTruncated || (!out.NextKeyMarker && !out.NextUploadIdMarker)) break;
      markers = { KeyMarker: out.NextKeyMarker, UploadIdMarker: out.NextUploadIdMarker };
    }
  } finally {
    client.destroy();
  }
  return [...ids].sort();
}

/**
 * The key the server of `dataDir` signs tokens with, read where that server keeps it (its key
 * file on SQLite, table signing_keys on PostgreSQL): for tests that forge tokens the server must
 * accept as its own, such as one already expired. Throws when the server has not stored one yet.
 */
export async function serverSigningKey(dataDir: string): Promise<SigningKey> {
  if (testBackend() === 'sqlite-fs') return signingKeyFromPem(readFileSync(join(dataDir, 'keys', 'token-signing.pem')));
  const [row] = await serverQuery(dataDir, "SELECT pem FROM signing_keys WHERE name = 'token'");
  if (!row) throw new Error(`the server of ${dataDir} has stored no token signing key`);
  return signingKeyFromPem(String(row.pem));
}
