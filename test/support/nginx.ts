// A private nginx instance: TLS reverse proxy in front of one upstream, config generated per test.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ManagedProcess, type ProcessRegistry, readPidFile, startProcess, stopByPidFile, tailFile } from './processes.ts';
import type { TestNetns } from './netns.ts';
import { run } from './run.ts';
import { ensurePackages, tmpDir, waitForTcp } from './system.ts';

/** Directives every registry proxy needs for big, streamed uploads (PROXIES.md M7/M8). */
export const STREAMING_PROXY_DIRECTIVES: readonly string[] = [
  'client_max_body_size 0;',
  'chunked_transfer_encoding on;',
  'proxy_http_version 1.1;',
  'proxy_request_buffering off;',
  'proxy_buffering off;',
  'proxy_connect_timeout 10s;',
  'proxy_read_timeout 900s;',
  'proxy_send_timeout 900s;',
];

/**
 * The configuration that breaks other registries (PROXIES.md M2): the upstream sees
 * `Host: name:443`, so absolute upload URLs built from Host carry `:443`, which containerd does
 * not match against the host it authenticated to. TLS scheme is forwarded correctly.
 */
export const HOST_WITH_PORT_DIRECTIVES: readonly string[] = [
  ...STREAMING_PROXY_DIRECTIVES,
  'proxy_set_header Host $host:$server_port;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
];

/** The proxy configuration PROXIES.md recommends (Host exactly as the client sent it). */
export const RECOMMENDED_PROXY_DIRECTIVES: readonly string[] = [
  ...STREAMING_PROXY_DIRECTIVES,
  'proxy_set_header Host $http_host;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
];

/** One more `server { … }` on the same listen address (and certificate) as the main one. */
export interface NginxServer {
  readonly serverName: string;
  readonly upstream: string;
  readonly locationDirectives: readonly string[];
  readonly serverDirectives?: readonly string[];
}

/** How to run the proxy. */
export interface NginxOptions {
  /** Address to listen on (use a random 127.x address from hosts.ts for port 443). */
  readonly listenIp: string;
  readonly listenPort: number;
  /** server_name, and the host name in {@link NginxInstance.url}. */
  readonly serverName: string;
  /** Server certificate and key (from tls.ts); without it the server speaks plain HTTP. */
  readonly tls?: { readonly serverCert: string; readonly serverKey: string };
  /** Where to proxy, e.g. `http://127.0.0.1:5000` (no path). */
  readonly upstream: string;
  /** Lines inside `location / { … }` after proxy_pass, e.g. {@link HOST_WITH_PORT_DIRECTIVES}. */
  readonly locationDirectives: readonly string[];
  /** Extra lines inside `server { … }`. */
  readonly serverDirectives?: readonly string[];
  /** Prefix directory (config, logs, temp paths); default a fresh temp dir. */
  readonly prefix?: string;
  /** Registers the started nginx here so after() stops it. */
  readonly registry?: ProcessRegistry;
  /** More virtual hosts on the same listen address, e.g. a second registry behind the same proxy setup. */
  readonly extraServers?: readonly NginxServer[];
  /** Run inside this network namespace (netns.ts); readiness is then probed from inside it. */
  readonly netns?: Pick<TestNetns, 'wrap' | 'waitForTcp'>;
}

/** A running nginx. */
export interface NginxInstance {
  /** `https://serverName[:port]` (`http://` without TLS) as clients address it. */
  readonly url: string;
  readonly prefix: string;
  readonly confFile: string;
  readonly pidFile: string;
  readonly errorLog: string;
  /** One line per request: method, URI, status, Host sent by client, auth kind, Location sent. */
  readonly accessLog: string;
  /** The same requests in nginx's standard `combined` format, as a real deployment logs them. */
  readonly combinedLog: string;
  readonly process: ManagedProcess;
  /** Stops the master by pid (then by pid file, should it still be alive). */
  stop(): Promise<void>;
}

function checkDirectives(lines: readonly string[]): void {
  for (const line of lines) {
    if (!/[;}]\s*$/.test(line)) throw new Error(`nginx directive must end with ';' or '}': ${line}`);
  }
}

/** Renders the nginx.conf for {@link startNginx}; exported so tests can show or check it. */
export function renderNginxConf(options: NginxOptions, prefix: string): string {
  const servers: NginxServer[] = [options, ...(options.extraServers ?? [])];
  for (const server of servers) {
    checkDirectives(server.locationDirectives);
    checkDirectives(server.serverDirectives ?? []);
  }
  const p = (name: string): string => path.join(prefix, name);
  const indent = (lines: readonly string[], depth: number): string =>
    lines.map((l) => `${'    '.repeat(depth)}${l}`).join('\n');
  const tls = options.tls
    ? [`ssl_certificate ${options.tls.serverCert};`, `ssl_certificate_key ${options.tls.serverKey};`]
    : [];
  const renderServer = (server: NginxServer): string => `    server {
        listen ${options.listenIp}:${options.listenPort}${options.tls ? ' ssl' : ''};
        server_name ${server.serverName};
${indent([...tls, ...(server.serverDirectives ?? [])], 2)}
        location / {
            proxy_pass ${server.upstream};
${indent(server.locationDirectives, 3)}
        }
    }`;
  return `# generated by test/support/nginx.ts
daemon off;
master_process on;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} info;
events { worker_connections 512; }
http {
    map $http_authorization $berth_auth_kind { "" none; ~^Basic basic; ~^Bearer bearer; default other; }
    log_format berth '$remote_addr "$request" $status host="$http_host" auth=$berth_auth_kind '
                     'location="$sent_http_location" bytes_in=$request_length bytes_out=$bytes_sent';
    access_log ${p('access.log')} berth;
    access_log ${p('combined.log')} combined;
    client_body_temp_path ${p('tmp/client_body')};
    proxy_temp_path ${p('tmp/proxy')};
    fastcgi_temp_path ${p('tmp/fastcgi')};
    uwsgi_temp_path ${p('tmp/uwsgi')};
    scgi_temp_path ${p('tmp/scgi')};
${servers.map(renderServer).join('\n')}
}
`;
}

/**
 * Writes the config, checks it with `nginx -t`, starts nginx in the foreground (`daemon off;`) as a
 * child process and waits until it accepts connections.
 */
export async function startNginx(options: NginxOptions): Promise<NginxInstance> {
  await ensurePackages([{ binary: 'nginx', pkg: 'nginx' }]);
  const prefix = options.prefix ?? (await tmpDir('berth-nginx'));
  // Workers drop root privileges (to nobody) and must still reach the temp paths.
  await chmod(prefix, 0o755);
  for (const dir of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    await mkdir(path.join(prefix, 'tmp', dir), { recursive: true, mode: 0o777 });
    await chmod(path.join(prefix, 'tmp', dir), 0o777);
  }
  const confFile = path.join(prefix, 'nginx.conf');
  const errorLog = path.join(prefix, 'error.log');
  const pidFile = path.join(prefix, 'nginx.pid');
  await writeFile(confFile, renderNginxConf(options, prefix));
  const args = ['-c', confFile, '-p', prefix, '-e', errorLog];
  const inPlace = (argv: string[]): { command: string; args: string[] } =>
    options.netns ? options.netns.wrap('nginx', argv) : { command: 'nginx', args: argv };
  const check = inPlace(['-t', ...args]);
  await run(check.command, check.args, { timeoutMs: 30_000 });

  const command = inPlace(args);
  const child = await startProcess({ name: 'nginx', ...command, logFile: path.join(prefix, 'nginx.out.log') });
  const stop = async (): Promise<void> => {
    await child.stop();
    // With `daemon off;` the pid file names the child itself; anything else is a stray master.
    const pid = await readPidFile(pidFile);
    if (pid !== undefined && pid !== child.pid) await stopByPidFile(pidFile);
  };
  options.registry?.add({ name: 'nginx', stop });
  try {
    const wait = { timeoutMs: 15_000, abortIf: () => child.exitDescription() };
    if (options.netns) await options.netns.waitForTcp(options.listenIp, options.listenPort, wait);
    else await waitForTcp(options.listenIp, options.listenPort, wait);
  } catch (error) {
    await stop();
    throw new Error(`nginx did not start: ${(error as Error).message}\n${await tailFile(errorLog)}`, { cause: error });
  }
  const port = options.listenPort === (options.tls ? 443 : 80) ? '' : `:${options.listenPort}`;
  return {
    url: `${options.tls ? 'https' : 'http'}://${options.serverName}${port}`,
    prefix,
    confFile,
    pidFile,
    errorLog,
    accessLog: path.join(prefix, 'access.log'),
    combinedLog: path.join(prefix, 'combined.log'),
    process: child,
    stop,
  };
}

/**
 * Runs a configuration `berth proxy-config nginx` generated (it belongs in `http { }`) in nginx of
 * its own under `prefix`: a wrapper adds only private pid, log and temp paths and an access log in
 * `logFormat`. Checks it with `nginx -t`, starts it through `registry` (stopped by pid), and waits
 * until it listens on `ip:port`. Returns the access and error log paths.
 */
export async function startGeneratedNginx(options: {
  prefix: string;
  config: string;
  ip: string;
  port: number;
  logFormat: string;
  registry: ProcessRegistry;
  name?: string;
}): Promise<{ logs: string[] }> {
  const { prefix, config, registry } = options;
  // Workers drop root privileges (to nobody) and must still reach the temp paths.
  await chmod(prefix, 0o755);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
  for (const dir of temp) {
    await mkdir(path.join(prefix, 'tmp', dir), { recursive: true });
    await chmod(path.join(prefix, 'tmp', dir), 0o777);
  }
  const p = (name: string): string => path.join(prefix, name);
  await writeFile(p('berth.conf'), config);
  await writeFile(
    p('nginx.conf'),
    [
      'daemon off;',
      `pid ${p('nginx.pid')};`,
      `error_log ${p('error.log')} info;`,
      'events { worker_connections 256; }',
      'http {',
      `    log_format berth '${options.logFormat}';`,
      `    access_log ${p('access.log')} berth;`,
      ...temp.map((t) => `    ${t}_temp_path ${p(`tmp/${t}`)};`),
      `    include ${p('berth.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-c', p('nginx.conf'), '-p', prefix, '-e', p('error.log')];
  await run('nginx', ['-t', ...args], { timeoutMs: 30_000 });
  const child = await registry.start({ name: options.name ?? 'nginx (generated config)', command: 'nginx', args, logFile: p('nginx.out.log') });
  await waitForTcp(options.ip, options.port, { timeoutMs: 15_000, abortIf: () => child.exitDescription() });
  return { logs: [p('access.log'), p('error.log')] };
}
