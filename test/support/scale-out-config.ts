// The scale-out deployment as files: nginx round-robin over several Berth replicas, and the
// configuration every replica shares. One template for both uses, so they cannot drift:
// deploy/scale-out/ holds it rendered for placeholder values (the README's "Scaling out"), and
// test/support/replicas.ts renders it for the replicas a test starts on this machine.
//
//   node --import tsx test/support/scale-out-config.ts     rewrites deploy/scale-out/{nginx.conf,berth.yaml,berth.env}
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commented } from '../../src/diagnose/proxy-config/nginx.ts';
import { STREAMING_PROXY_DIRECTIVES } from './nginx.ts';

/** Everything that differs between one scale-out deployment and another. */
export interface ScaleOutSettings {
  /** The host name clients use (server_name, and the external URL's host). */
  readonly hostname: string;
  /** nginx's `listen` address: `443`, or `ip:port`. */
  readonly listen: string;
  /** Certificate and key paths where TLS ends at nginx; undefined: plain HTTP (a test or benchmark on loopback). */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** `host:port` of each replica, as nginx reaches it. */
  readonly replicas: readonly string[];
  /** nginx's access log for the registry, one line per request naming the replica that served it. */
  readonly accessLog: string;
  /** Where Berth listens on each replica's host (BERTH_ADDR overrides it per process). */
  readonly addr: string;
  readonly dataDir: string;
  /** The address nginx connects to the replicas from, as the replicas see it. */
  readonly trustedProxies: readonly string[];
  readonly s3: { readonly endpoint: string; readonly region: string; readonly bucket: string; readonly prefix: string };
  /** PEM file holding the one signing key of every replica. */
  readonly signingKey: string;
  /** `jobs.lease`: how soon a dead replica's job is taken over, e.g. `60s`. */
  readonly jobsLease: string;
  /** What berth.env holds: the secrets, kept out of the YAML file. */
  readonly secrets: { readonly databaseUrl: string; readonly s3AccessKeyId: string; readonly s3SecretAccessKey: string };
}

/** The placeholder deployment of deploy/scale-out/: three replica hosts and one nginx host on 10.0.0.0/24. */
export const EXAMPLE_DEPLOYMENT: ScaleOutSettings = {
  hostname: 'registry.example.com',
  listen: '443',
  tls: { cert: '/etc/ssl/berth/fullchain.pem', key: '/etc/ssl/berth/privkey.pem' },
  replicas: ['10.0.0.11:5000', '10.0.0.12:5000', '10.0.0.13:5000'],
  accessLog: '/var/log/nginx/berth-access.log',
  addr: '0.0.0.0:5000',
  dataDir: '/var/lib/berth',
  trustedProxies: ['10.0.0.10'],
  s3: { endpoint: 'https://s3.example.com', region: 'us-east-1', bucket: 'berth-registry', prefix: 'berth/' },
  signingKey: '/etc/berth/signing-key.pem',
  jobsLease: '60s',
  secrets: {
    databaseUrl: 'postgres://berth:CHANGE-ME@db.example.com:5432/berth?sslmode=verify-full',
    s3AccessKeyId: 'CHANGE-ME',
    s3SecretAccessKey: 'CHANGE-ME',
  },
};

/** The nginx `log_format` name the access log uses; `upstream=` names the replica of each request. */
export const REPLICA_LOG_FORMAT = 'berth_replicas';

/** The external URL clients use: `https://hostname` (with the port when it is not the scheme's default). */
export function externalUrlOf(settings: ScaleOutSettings): string {
  const port = Number(/(?:^|:)(\d+)$/.exec(settings.listen)?.[1] ?? (settings.tls ? 443 : 80));
  const scheme = settings.tls ? 'https' : 'http';
  const defaultPort = settings.tls ? 443 : 80;
  return `${scheme}://${settings.hostname}${port === defaultPort ? '' : `:${port}`}`;
}

/** Why each of STREAMING_PROXY_DIRECTIVES is there, by directive name. */
const STREAMING_REASONS: Readonly<Record<string, string>> = {
  client_max_body_size: 'no body limit: layers are gigabytes (the 1m default gives 413)',
  chunked_transfer_encoding: 'clients stream uploads in chunks',
  proxy_http_version: 'HTTP/1.1 to the replicas: chunked bodies, keep-alive',
  proxy_request_buffering: 'stream uploads, never spool them (and never resend them)',
  proxy_buffering: 'stream downloads too',
  proxy_connect_timeout: 'a replica that does not accept soon is skipped',
  proxy_read_timeout: 'a big layer takes minutes',
  proxy_send_timeout: 'same, towards the replica',
};

/**
 * The nginx configuration for the `http { }` context (e.g. /etc/nginx/conf.d/berth.conf): an
 * upstream of every replica, round robin with state shared by all workers, and one server that
 * streams uploads and downloads. Throws when a setting would break the file's syntax.
 */
export function renderScaleOutNginx(settings: ScaleOutSettings): string {
  for (const value of [settings.hostname, settings.listen, settings.accessLog, ...settings.replicas, settings.tls?.cert ?? '', settings.tls?.key ?? '']) {
    if (/[\s;{}"'#$]/.test(value)) throw new Error(`nginx setting "${value}" holds a character that would break the configuration`);
  }
  const s = '    ';
  const l = '        ';
  const streaming = STREAMING_PROXY_DIRECTIVES.map((directive) => {
    const reason = STREAMING_REASONS[directive.split(' ')[0] ?? ''];
    if (!reason) throw new Error(`no reason written down for "${directive}"`);
    return commented(l, directive, reason, 68);
  });
  const lines = [
    `# Berth behind nginx: round robin over ${settings.replicas.length} replicas that share one PostgreSQL database and one S3 bucket.`,
    '# Generated by test/support/scale-out-config.ts: the end-to-end test (test/e2e/scale-out.test.ts) runs this',
    '# file with its own addresses. Put it in /etc/nginx/conf.d/ (the http { } context), then: nginx -t && nginx -s reload',
    '#',
    '# Any replica serves any request: no sticky sessions (no ip_hash, no cookie). An upload begun on one replica',
    '# continues on the next; tokens, tags and manifests are the same on all of them at once.',
    '',
    `log_format ${REPLICA_LOG_FORMAT} '$remote_addr [$time_local] "$request" $status $body_bytes_sent '`,
    "                          'upstream=$upstream_addr upstream_status=$upstream_status request_id=$request_id '",
    "                          'request_time=$request_time msec=$msec location=\"$sent_http_location\"';",
    '',
    'upstream berth_replicas {',
    commented(s, 'zone berth_replicas 64k;', 'one round-robin state for every worker, so consecutive requests alternate', 68),
    ...settings.replicas.map((replica) =>
      commented(s, `server ${replica} max_fails=1 fail_timeout=10s;`, 'a replica that refuses a connection is skipped for 10 s', 68),
    ),
    commented(s, 'keepalive 32;', 'idle connections kept per worker (pooled per replica: no pinning)', 68),
    '}',
    '',
    'server {',
    commented(s, `listen ${settings.listen}${settings.tls ? ' ssl' : ''};`, settings.tls ? 'TLS ends here' : 'plain HTTP (loopback only)', 68),
    commented(s, `server_name ${settings.hostname};`, `the host name in ${externalUrlOf(settings)}`, 68),
    ...(settings.tls
      ? [
          commented(s, `ssl_certificate ${settings.tls.cert};`, 'certificate with its full chain', 68),
          commented(s, `ssl_certificate_key ${settings.tls.key};`, 'its private key', 68),
        ]
      : []),
    commented(s, `access_log ${settings.accessLog} ${REPLICA_LOG_FORMAT};`, 'which replica served each request', 68),
    '',
    '    location / {',
    commented(l, 'proxy_pass http://berth_replicas;', 'no URI part: paths pass unchanged', 68),
    ...streaming,
    commented(l, 'proxy_set_header Connection "";', 'keep-alive to the replicas (nginx sends close otherwise)', 68),
    commented(l, 'proxy_set_header Host $http_host;', 'Host exactly as the client sent it', 68),
    commented(l, 'proxy_set_header X-Forwarded-Proto $scheme;', 'TLS ends here: tell Berth the scheme', 68),
    commented(l, 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', "the client's address", 68),
    commented(l, 'proxy_set_header X-Real-IP $remote_addr;', 'what this proxy saw, not what the client claims', 68),
    commented(l, 'proxy_set_header Forwarded "";', 'drop a client-sent Forwarded: Berth would believe it', 68),
    commented(l, 'proxy_set_header X-Forwarded-Host "";', 'Host already says it; drop a client-sent one', 68),
    commented(l, 'proxy_set_header X-Forwarded-Port "";', 'likewise', 68),
    commented(l, 'proxy_set_header X-Request-Id $request_id;', "one id in this log and in the replica's", 68),
    `${l}# nginx's default, written out: the next replica gets a request only when connecting to one failed or`,
    `${l}# timed out before the request was sent. nginx never resends a POST or PATCH (non_idempotent is not`,
    `${l}# listed), nor any body it already streamed (proxy_request_buffering off): an upload cut by a replica's`,
    `${l}# death fails to the client, whose retry starts over on a live replica. Never add http_502/http_503 here.`,
    `${l}proxy_next_upstream error timeout;`,
    `${l}# Authorization passes untouched; no return/rewrite: a redirect in the middle of a push breaks it.`,
    '    }',
    '}',
    '',
  ];
  return lines.join('\n');
}

/** A YAML scalar: quoted when it is not a plain word, path or URL. */
function yamlScalar(value: string): string {
  return /^[\w./:@-]+$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value) ? value : JSON.stringify(value);
}

/**
 * The configuration file every replica reads (e.g. /etc/berth/berth.yaml), identical on each.
 * Secrets are not in it: they come from the environment ({@link renderReplicaEnv}).
 */
export function renderReplicaYaml(settings: ScaleOutSettings): string {
  const y = yamlScalar;
  return [
    '# Berth replica configuration: the same file on every replica (generated by test/support/scale-out-config.ts).',
    '# Secrets are not here: the database URL and the S3 keys come from berth.env (BERTH_DATABASE_URL, BERTH_S3_*).',
    `addr: ${y(settings.addr)}`,
    '# Local scratch only: metadata and blobs are shared by every replica.',
    `dataDir: ${y(settings.dataDir)}`,
    'externalURL:',
    `  - ${y(externalUrlOf(settings))}`,
    '# The nginx host, as the replicas see it: only its X-Forwarded-* headers are believed.',
    'trustedProxies:',
    ...settings.trustedProxies.map((p) => `  - ${y(p)}`),
    'log:',
    '  format: json',
    'database:',
    '  # Connections per replica: three replicas hold 30 (PostgreSQL allows 100 by default).',
    '  poolSize: 10',
    'storage:',
    '  s3:',
    `    endpoint: ${y(settings.s3.endpoint)}`,
    `    region: ${y(settings.s3.region)}`,
    `    bucket: ${y(settings.s3.bucket)}`,
    `    prefix: ${y(settings.s3.prefix)}`,
    '    # MinIO, Ceph RGW and most self-hosted S3 servers need path-style URLs.',
    '    forcePathStyle: true',
    '  # Blobs stream through the replicas; true sends clients to pre-signed S3 URLs instead.',
    '  redirect: false',
    'auth:',
    '  # The same key file on every replica, so a token issued by one is accepted by all.',
    `  signingKey: ${y(settings.signingKey)}`,
    'jobs:',
    '  # Background jobs each replica runs at once.',
    '  concurrency: 2',
    "  # A dead replica's job is taken over by another once its lease has run out for this long.",
    `  lease: ${y(settings.jobsLease)}`,
    '',
  ].join('\n');
}

/** The environment file with the replicas' secrets (e.g. /etc/berth/berth.env, mode 0600). */
export function renderReplicaEnv(settings: ScaleOutSettings): string {
  return [
    '# Secrets of every replica (generated by test/support/scale-out-config.ts). systemd: EnvironmentFile=/etc/berth/berth.env',
    '# Keep it mode 0600, owned by root: systemd reads it before dropping to the berth user.',
    `BERTH_DATABASE_URL=${settings.secrets.databaseUrl}`,
    `BERTH_S3_ACCESS_KEY_ID=${settings.secrets.s3AccessKeyId}`,
    `BERTH_S3_SECRET_ACCESS_KEY=${settings.secrets.s3SecretAccessKey}`,
    '',
  ].join('\n');
}

/** The environment variables of {@link renderReplicaEnv}, as a record (what a test passes to each replica). */
export function replicaEnv(settings: ScaleOutSettings): Record<string, string> {
  return {
    BERTH_DATABASE_URL: settings.secrets.databaseUrl,
    BERTH_S3_ACCESS_KEY_ID: settings.secrets.s3AccessKeyId,
    BERTH_S3_SECRET_ACCESS_KEY: settings.secrets.s3SecretAccessKey,
  };
}

/** The files of deploy/scale-out/ that are generated, by name, rendered for {@link EXAMPLE_DEPLOYMENT}. */
export function exampleDeployFiles(): Record<string, string> {
  return {
    'nginx.conf': renderScaleOutNginx(EXAMPLE_DEPLOYMENT),
    'berth.yaml': renderReplicaYaml(EXAMPLE_DEPLOYMENT),
    'berth.env': renderReplicaEnv(EXAMPLE_DEPLOYMENT),
  };
}

/** deploy/scale-out/ in this checkout. */
export const DEPLOY_DIR: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'scale-out');

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [name, text] of Object.entries(exampleDeployFiles())) {
    await writeFile(path.join(DEPLOY_DIR, name), text);
    console.log(`wrote ${path.join(DEPLOY_DIR, name)}`);
  }
}
