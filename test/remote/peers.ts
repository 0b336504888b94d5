// Real peers for the outbound client's tests: CNCF Distribution (anonymous or htpasswd), and small
// HTTP / raw TCP servers that answer the way a broken or hostile registry would.
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import type { ProcessRegistry } from '../support/processes.ts';
import { run } from '../support/run.ts';
import { ensurePackages, freePort, tmpDir, waitForHttp } from '../support/system.ts';

/**
 * Starts Debian's `docker-registry` (CNCF Distribution 2.8) on a free 127.0.0.1 port with
 * filesystem storage in a temp dir (added to `scratch`); with `auth`, htpasswd (bcrypt) Basic auth.
 */
export async function startDistribution(registry: ProcessRegistry, scratch: string[], auth?: { username: string; password: string }): Promise<string> {
  await ensurePackages([{ binary: 'docker-registry', pkg: 'docker-registry' }, { binary: 'htpasswd', pkg: 'apache2-utils' }]);
  const dir = await tmpDir('berth-remote-distribution');
  scratch.push(dir);
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } }`,
    `http: { addr: "127.0.0.1:${port}", secret: remote-client-test }`,
  ];
  if (auth) {
    const hashed = await run('htpasswd', ['-Bbn', auth.username, auth.password], { redact: [auth.password] });
    await writeFile(path.join(dir, 'htpasswd'), hashed.stdout.trim() + '\n', { mode: 0o600 });
    lines.push(`auth: { htpasswd: { realm: remote-client-test, path: ${JSON.stringify(path.join(dir, 'htpasswd'))} } }`);
  }
  await writeFile(path.join(dir, 'config.yml'), lines.join('\n') + '\n');
  const child = await registry.start({ name: 'docker-registry', command: 'docker-registry', args: ['serve', path.join(dir, 'config.yml')], logFile: path.join(dir, 'registry.log') });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, { timeoutMs: 20_000, status: auth ? 401 : 200, abortIf: () => child.exitDescription() });
  return url;
}

/** A running test peer. */
export interface Peer {
  url: string;
  /** Every request seen: method, path with query, headers. */
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 answering with `handler` (over TLS with `tls`); records what it saw. */
export async function httpPeer(handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Peer['seen']) => void, tls?: { key: string; cert: string }): Promise<Peer> {
  const seen: Peer['seen'] = [];
  const sockets = new Set<net.Socket>();
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, seen);
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  server.on(tls ? 'secureConnection' : 'connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TCP server that reads each request head and writes `respond(head)` verbatim (any bytes, no
 * HTTP library in the way); `undefined` leaves the connection open and silent, `null` closes it.
 */
export async function rawPeer(respond: (head: string) => string | Buffer | undefined | null): Promise<Peer> {
  const seen: Peer['seen'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (data) => {
      buffered += data.toString('latin1');
      let end;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const [method = '', url = ''] = head.split(' ');
        seen.push({ method, url, headers: {} });
        const answer = respond(head);
        if (answer === null) socket.destroy();
        else if (answer !== undefined) socket.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
