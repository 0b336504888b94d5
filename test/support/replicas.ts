// Berth scaled out on this machine, exactly as deploy/scale-out/ describes it: one PostgreSQL
// database and one S3 bucket (the shared test servers of postgres.ts and s3.ts), one signing key
// file, N `berth serve` processes reading the same berth.yaml, and nginx round robin in front of
// them with the configuration test/support/scale-out-config.ts renders for the README.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { type BerthServer, startBerth } from './berth.ts';
import { addHostsEntry, randomLoopbackIp } from './hosts.ts';
import { startGeneratedNginx } from './nginx.ts';
import { type PostgresServer, sharedPostgres } from './postgres.ts';
import type { ProcessRegistry } from './processes.ts';
import { type S3Server, sharedS3, uniqueBucket } from './s3.ts';
import { rememberSecret } from './secrets.ts';
import {
  EXAMPLE_DEPLOYMENT,
  externalUrlOf,
  renderReplicaYaml,
  renderScaleOutNginx,
  replicaEnv,
  type ScaleOutSettings,
} from './scale-out-config.ts';
import { freePort, tmpDir } from './system.ts';
import { createTlsMaterial, type TlsMaterial } from './tls.ts';

/** How to run the replicas. */
export interface ReplicaSetOptions {
  /** How many Berth processes; default 3. */
  readonly replicas?: number;
  /** Everything started is registered here (stopped by pid in after()). */
  readonly registry: ProcessRegistry;
  /**
   * TLS at nginx on `hostname`:443, mapped in /etc/hosts to a random loopback address (root only),
   * as the deployment runs. Unset: plain HTTP on 127.0.0.1:<free port> (the benchmark's setup).
   */
  readonly tlsHostname?: string;
  /** `jobs.lease` of every replica; default the deployment's `60s`. */
  readonly jobsLease?: string;
  /** More environment for every replica (e.g. BERTH_JOBS_CONCURRENCY). */
  readonly env?: Readonly<Record<string, string>>;
  /** Berth's log level; default `info` (one access-log line per request, which the tests read). */
  readonly logLevel?: string;
  /** The PostgreSQL and S3 servers to use; default the shared test servers (postgres.ts, s3.ts). */
  readonly backend?: { readonly postgres: PostgresServer; readonly s3: S3Server };
}

/** One request as nginx logged it (log format `berth_replicas`). */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly uri: string;
  readonly status: number;
  /** nginx's `$request_id`, also the replica's `reqId` (X-Request-Id). */
  readonly requestId: string;
  /** Index into {@link ReplicaSet.replicas} of every replica nginx tried, in order (one unless a connect failed). */
  readonly replicas: readonly number[];
  /** When nginx received it (its log time less the request time; millisecond resolution). */
  readonly startedMs: number;
  /** The Location header of the response ('' when none), e.g. an upload's URL. */
  readonly location: string;
}

/** One access-log line of a replica (Berth's `request` log line). */
export interface ReplicaRequest {
  readonly replica: number;
  readonly reqId: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

/** The running deployment. */
export interface ReplicaSet {
  /** The URL clients use: nginx (`https://hostname` or `http://127.0.0.1:port`). */
  readonly url: string;
  /** Host[:port] as clients address the registry (no scheme). */
  readonly registryHost: string;
  readonly replicas: readonly BerthServer[];
  readonly adminPassword: string;
  /** The CA clients must trust (TLS only). */
  readonly tls: TlsMaterial | undefined;
  /** The settings the nginx and Berth configuration were rendered from. */
  readonly settings: ScaleOutSettings;
  /** Where nginx logs each request with the replica that served it. */
  readonly accessLog: string;
  /** nginx's master and worker pids now (for CPU accounting: the workers do the proxying). */
  nginxPids(): number[];
  /** The database every replica uses. */
  readonly databaseUrl: string;
  /** The bucket and prefix every replica uses, and how to reach the S3 server. */
  readonly s3: { readonly endpoint: string; readonly region: string; readonly bucket: string; readonly prefix: string; readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Directories to remove when done (data, logs, nginx prefix, key, CA). */
  readonly scratch: readonly string[];
  /** Every request nginx has logged so far, in the order they completed. */
  proxiedRequests(): Promise<ProxiedRequest[]>;
  /** Every request the replicas have logged so far, per replica in the order each completed them. */
  replicaRequests(): Promise<ReplicaRequest[]>;
  /** SIGKILL to replica `index` (no shutdown of any kind); resolves once it has exited. */
  kill(index: number): Promise<void>;
  /** Starts replica `index` again (same port, config and data dir) and waits until it is ready. */
  restart(index: number): Promise<void>;
}

/** A fresh Ed25519 signing key as a PKCS#8 PEM file (mode 0600) in `dir`. */
async function writeSigningKey(dir: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const file = path.join(dir, 'signing-key.pem');
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return file;
}

/** `pid` and its children (from /proc; Linux only). */
function withChildren(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return [pid, ...(children ? children.split(/\s+/).map(Number) : [])];
  } catch {
    return [pid];
  }
}

/**
 * Throws unless a Berth has migrated the PostgreSQL database at `url` and created its admin user
 * there: a Berth that ignored `database.url` would run on SQLite and pass any scale-out test alone.
 */
export async function assertUsesDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Berth answers /readyz as soon as it listens, and creates the admin user right after.
    for (let attempt = 0; ; attempt++) {
      const { rows } = await client.query<{ n: string }>('select count(*) as n from users');
      if (Number(rows[0]?.n) >= 1) return;
      if (attempt >= 100) throw new Error('no user in it after 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (err) {
    throw new Error(`Berth did not keep its metadata in PostgreSQL (${url}): ${(err as Error).message}`, { cause: err });
  } finally {
    await client.end();
  }
}

/** The keys under `prefix` in the set's bucket (at most 1,000): what the replicas stored in S3. */
export async function bucketKeys(set: Pick<ReplicaSet, 's3'>): Promise<string[]> {
  const client = new S3Client({
    endpoint: set.s3.endpoint,
    region: set.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: set.s3.accessKeyId, secretAccessKey: set.s3.secretAccessKey },
  });
  try {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: set.s3.bucket, Prefix: set.s3.prefix }));
    return (listed.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    client.destroy();
  }
}

const NGINX_LINE = /"(\S+) (\S+) [^"]*" (\d{3}) \d+ upstream=(.*?) upstream_status=.*? request_id=([0-9a-f]+) request_time=([\d.]+) msec=([\d.]+) location="([^"]*)"/;

/**
 * Starts the deployment: the shared PostgreSQL and S3 servers (a new database and bucket for this
 * set), the key, replica 0 (which creates the admin user and migrates the database), the other
 * replicas together, then nginx. Rejects with the failing part's log.
 */
export async function startReplicaSet(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const count = options.replicas ?? 3;
  const { registry } = options;
  const scratch: string[] = [];
  const { postgres, s3 } = options.backend ?? { postgres: await sharedPostgres(), s3: await sharedS3() };
  const database = `scale_${randomBytes(5).toString('hex')}`;
  const bucket = uniqueBucket('berth-scale');
  await Promise.all([postgres.createDatabase(database), s3.createBucket(bucket)]);

  const confDir = await tmpDir('berth-scale-conf');
  scratch.push(confDir);
  const signingKey = await writeSigningKey(confDir);
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const tls = options.tlsHostname ? await createTlsMaterial({ dnsNames: [options.tlsHostname] }) : undefined;
  if (tls) scratch.push(tls.dir);
  const listenIp = tls ? randomLoopbackIp() : '127.0.0.1';
  const listenPort = tls ? 443 : await freePort();
  if (tls && options.tlsHostname) {
    const hosts = await addHostsEntry(listenIp, options.tlsHostname);
    registry.defer('hosts entry', () => hosts.remove());
  }
  const nginxPrefix = await tmpDir('berth-scale-nginx');
  scratch.push(nginxPrefix);
  const accessLog = path.join(nginxPrefix, 'replicas.log');
  const settings: ScaleOutSettings = {
    ...EXAMPLE_DEPLOYMENT,
    hostname: options.tlsHostname ?? listenIp,
    listen: `${listenIp}:${listenPort}`,
    tls: tls ? { cert: tls.serverCert, key: tls.serverKey } : undefined,
    replicas: ports.map((port) => `127.0.0.1:${port}`),
    accessLog,
    trustedProxies: ['127.0.0.1'],
    s3: { endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'berth/' },
    signingKey,
    jobsLease: options.jobsLease ?? EXAMPLE_DEPLOYMENT.jobsLease,
    secrets: { databaseUrl: postgres.url(database), s3AccessKeyId: s3.accessKeyId, s3SecretAccessKey: s3.secretAccessKey },
  };
  rememberSecret(s3.secretAccessKey);
  const configFile = path.join(confDir, 'berth.yaml');
  await writeFile(configFile, renderReplicaYaml(settings));

  const adminPassword = randomBytes(12).toString('base64url');
  const start = async (port: number): Promise<BerthServer> => {
    const server = await startBerth({
      port,
      adminPassword,
      logLevel: options.logLevel ?? 'info',
      registry,
      env: { BERTH_CONFIG: configFile, ...replicaEnv(settings), ...options.env },
    });
    scratch.push(server.dataDir, path.dirname(server.logFile));
    return server;
  };
  // The first replica alone: it migrates the database and creates the admin user.
  const first = await start(ports[0]!);
  await assertUsesDatabase(postgres.url(database));
  const others = await Promise.all(ports.slice(1).map(start));
  const replicas = [first, ...others];

  const nginx = await startGeneratedNginx({
    prefix: nginxPrefix,
    config: renderScaleOutNginx(settings),
    ip: listenIp,
    port: listenPort,
    logFormat: '$remote_addr "$request" $status',
    registry,
    name: 'nginx (scale-out)',
  });
  const nginxPid = Number((await readFile(path.join(nginxPrefix, 'nginx.pid'), 'utf8')).trim());
  const byAddress = new Map(settings.replicas.map((address, index) => [address, index]));

  return {
    url: externalUrlOf(settings),
    registryHost: new URL(externalUrlOf(settings)).host,
    replicas,
    adminPassword,
    tls,
    settings,
    accessLog,
    nginxPids: () => withChildren(nginxPid),
    databaseUrl: postgres.url(database),
    s3: { endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'berth/', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    scratch,
    async proxiedRequests() {
      const text = await readFile(accessLog, 'utf8').catch(() => '');
      const out: ProxiedRequest[] = [];
      for (const line of text.split('\n')) {
        const m = NGINX_LINE.exec(line);
        if (!m) continue;
        // Several attempts read `a, b`; internal redirects add ` : ` between groups.
        const tried = m[4]!.split(/\s*,\s*|\s+:\s+/).map((a) => byAddress.get(a.trim())).filter((i): i is number => i !== undefined);
        const ended = Number(m[7]) * 1000;
        out.push({ method: m[1]!, uri: m[2]!, status: Number(m[3]), requestId: m[5]!, replicas: tried, startedMs: ended - Number(m[6]) * 1000, location: m[8] === '-' ? '' : m[8]! });
      }
      return out;
    },
    async replicaRequests() {
      const out: ReplicaRequest[] = [];
      for (const [replica, server] of replicas.entries()) {
        const text = await readFile(server.logFile, 'utf8').catch(() => '');
        for (const line of text.split('\n')) {
          if (!line.startsWith('{')) continue;
          let entry: Record<string, unknown>;
          try {
            entry = JSON.parse(line) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (entry['msg'] !== 'request' || typeof entry['reqId'] !== 'string') continue;
          out.push({ replica, reqId: entry['reqId'], method: String(entry['method']), path: String(entry['path']), status: Number(entry['status']) });
        }
      }
      return out;
    },
    async kill(index) {
      const child = replicas[index]?.process;
      if (!child) throw new Error(`replica ${index} is not running`);
      process.kill(child.pid, 'SIGKILL');
      await child.exited;
    },
    async restart(index) {
      const server = replicas[index];
      if (!server) throw new Error(`no replica ${index}`);
      if (server.process && !server.process.exitDescription()) throw new Error(`replica ${index} is still running`);
      await server.start();
    },
  };
}
