// A real HTTP hop in front of a registry that can cut one request mid-body: the next request of a
// method (a PATCH of a chunked upload) gets its headers and first bytes forwarded, then both
// connections are destroyed, as when a link drops in the middle of a layer. Counts the request
// body bytes that reached it, to tell a resumed upload from one started over.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request the proxy saw. */
export interface BrokenSeen {
  method: string;
  path: string;
  /** Body bytes received from the client. */
  bodyBytes: number;
  status?: number;
  cut?: boolean;
}

/** A forwarding proxy on 127.0.0.1 that can break requests. */
export class BreakProxy {
  readonly seen: BrokenSeen[] = [];
  #cuts: { method: string; after: number; skip: number }[] = [];
  readonly #sockets = new Set<Socket>();

  private constructor(
    readonly target: URL,
    readonly server: Server,
  ) {}

  /** Starts a proxy for `targetUrl` on a free loopback port. */
  static async start(targetUrl: string): Promise<BreakProxy> {
    let proxy: BreakProxy | undefined;
    const server = createServer((req, res) => proxy!.handle(req, res));
    proxy = new BreakProxy(new URL(targetUrl), server);
    server.on('connection', (socket) => {
      proxy!.#sockets.add(socket);
      socket.on('close', () => proxy!.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A request of `method` (the next one, or the one after `skip` others) is cut after `after` body bytes were forwarded. */
  breakNext(method: string, after: number, skip = 0): void {
    this.#cuts.push({ method, after, skip });
  }

  /** Body bytes received for requests of `method` (default every method). */
  bodyBytes(method?: string): number {
    return this.seen.filter((s) => method === undefined || s.method === method).reduce((n, s) => n + s.bodyBytes, 0);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const seen: BrokenSeen = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]!, bodyBytes: 0 };
    this.seen.push(seen);
    const index = this.#cuts.findIndex((c) => c.method === seen.method);
    let cut = index >= 0 ? this.#cuts[index] : undefined;
    if (cut && cut.skip > 0) {
      cut.skip--;
      cut = undefined;
    } else if (cut) this.#cuts.splice(index, 1);
    const upstream = httpRequest({ host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      seen.status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.on('data', (chunk: Buffer) => {
      if (seen.cut) return;
      if (cut && seen.bodyBytes + chunk.length > cut.after) {
        const part = chunk.subarray(0, cut.after - seen.bodyBytes);
        seen.bodyBytes += chunk.length;
        seen.cut = true;
        upstream.write(part, () => {
          // The registry sees its client vanish mid-body; the client sees its connection reset.
          upstream.destroy();
          req.socket.destroy();
        });
        return;
      }
      seen.bodyBytes += chunk.length;
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (!seen.cut) upstream.end();
    });
    req.on('error', () => upstream.destroy());
  }
}
