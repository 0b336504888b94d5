// Helpers of the durability tests: raw HTTP/1.1 over node:net (bodies sent in parts with
// backpressure, responses read slowly), what the kernel says about a connection, bounded waits.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `condition` holds, looking again every few milliseconds; throws naming `what` once
 * `timeoutMs` has passed. A bounded wait for an event that has no callback, never the assertion.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting until ${what}`);
    await sleep(10);
  }
}

/** `sha256:<hex>` of `data`. */
export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A loopback TCP connection's local end as /proc/net/tcp shows it. */
export interface TcpEnd {
  /** Bytes received that the owning process has not read yet (Recv-Q). */
  unread: number;
  /** The socket's inode: 0 while the connection waits in a listener's accept queue. */
  inode: number;
}

/** The ESTABLISHED end `localPort` of a TCP connection to `remotePort`, if there is one. */
export function tcpEnd(localPort: number, remotePort: number): TcpEnd | undefined {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const local = `:${hex(localPort)}`;
  const remote = `:${hex(remotePort)}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …; st 01 is ESTABLISHED.
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || !fields[1]!.endsWith(local) || !fields[2]!.endsWith(remote) || fields[3] !== '01') continue;
    return { unread: Number.parseInt(fields[4]!.split(':')[1]!, 16), inode: Number(fields[9]) };
  }
  return undefined;
}

/** Files under `dir` that process `pid` holds open (its /proc/<pid>/fd), directories left out. */
export function openFilesOf(pid: number | 'self', dir: string): string[] {
  const out: string[] = [];
  const fds = `/proc/${pid}/fd`;
  for (const fd of readdirSync(fds)) {
    try {
      const target = readlinkSync(join(fds, fd));
      if (target.startsWith(dir) && !statSync(target).isDirectory()) out.push(target);
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** Size of a file, or undefined when it does not exist. */
export function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** A response head parsed off the wire; header names lower-cased. */
export interface WireHead {
  status: number;
  headers: Record<string, string>;
}

/**
 * One raw HTTP/1.1 connection. Bodies go out in parts whenever the test says (each write waits
 * for the socket to take it, so a server that stops reading stops the test's writes too); the
 * response is read only when asked, so a client can stop reading mid-body and let TCP push back.
 */
export class Wire {
  /** Arrived, not yet taken: a list, so a large body is copied once, not once per packet. */
  private chunks: Buffer[] = [];
  private length = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  /** Resolves when the connection is closed (by either side), never rejects. */
  readonly closed: Promise<void>;
  /** The error the connection ended with, if any (ECONNRESET after a kill). */
  error: Error | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.length += data.length;
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.notify();
        resolve();
      }),
    );
  }

  /** Connects to `url`'s host and port. */
  static async open(url: string): Promise<Wire> {
    const target = new URL(url);
    const socket = connect(Number(target.port), target.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Wire(socket);
  }

  /** The client's own port, to find this connection in /proc/net/tcp. */
  get localPort(): number {
    return this.socket.localPort!;
  }

  /** The server's port. */
  get remotePort(): number {
    return this.socket.remotePort!;
  }

  /** Writes `data` and resolves once the socket has taken it (after a 'drain' if it had to wait). */
  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) return reject(new Error('connection closed'));
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Writes `body` in pieces of `piece` bytes, each after the socket took the one before (backpressure). */
  async writeBody(body: Uint8Array, piece = 256 * 1024): Promise<void> {
    for (let i = 0; i < body.length; i += piece) await this.write(body.subarray(i, Math.min(i + piece, body.length)));
  }

  /**
   * Resolves once the server process has accepted this connection and read everything sent on it
   * so far (Node parses HTTP in the same turn it reads, so the server has seen it).
   */
  serverHasRead(what: string): Promise<void> {
    return until(() => {
      const end = tcpEnd(this.remotePort, this.localPort);
      return end !== undefined && end.inode !== 0 && end.unread === 0;
    }, `the server has read ${what}`);
  }

  /** Stops reading from the socket: the server's writes then fill the TCP buffers and wait. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Reads a response head; the body stays unread. */
  async head(): Promise<WireHead> {
    for (;;) {
      const buffer = this.take(this.length);
      this.unshift(buffer);
      const end = buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        this.take(end + 4);
        const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        return { status, headers };
      }
      if (this.ended) throw new Error(`connection closed before a response head${this.error ? ` (${this.error.message})` : ''}`);
      await this.next();
    }
  }

  /** Reads exactly `length` body bytes (the response must have them). */
  async body(length: number): Promise<Buffer> {
    while (this.length < length) {
      if (this.ended) throw new Error(`connection closed after ${this.length} of ${length} body bytes`);
      await this.next();
    }
    return this.take(length);
  }

  /** Waits until at least `count` unread bytes (after the head) have arrived, without taking them. */
  async received(count: number): Promise<void> {
    while (this.length < count) {
      if (this.ended) throw new Error(`connection closed after ${this.length} bytes`);
      await this.next();
    }
  }

  /** A whole Content-Length framed response. */
  async response(): Promise<WireHead & { body: Buffer }> {
    const head = await this.head();
    return { ...head, body: await this.body(Number(head.headers['content-length'] ?? 0)) };
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Takes the first `count` arrived bytes as one buffer. */
  private take(count: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    const taken = all.subarray(0, count);
    const rest = all.subarray(count);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return taken;
  }

  /** Puts bytes back in front (after a look at them). */
  private unshift(data: Buffer): void {
    if (data.length === 0) return;
    this.chunks.unshift(data);
    this.length += data.length;
  }

  private next(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }

  private notify(): void {
    this.wake?.();
  }
}

/** The head of a request with a body of `length` bytes (or none), as a client would send it. */
export function requestHead(url: string, method: string, path: string, authorization: string, extra: Record<string, string | number> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${new URL(url).host}`, `Authorization: ${authorization}`];
  for (const [name, value] of Object.entries(extra)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Whether a new TCP connection to `url` is refused (ECONNREFUSED); one accepted is closed at once. */
export function connectionRefused(url: string): Promise<boolean> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/**
 * Committed blobs under `storageDir` whose bytes do not hash to their name: a partial blob there
 * would be served as if whole. Returns the offending paths.
 */
export function blobsNotMatchingTheirName(storageDir: string): string[] {
  const bad: string[] = [];
  const root = join(storageDir, 'blobs', 'sha256');
  let fanout: string[];
  try {
    fanout = readdirSync(root);
  } catch {
    return bad;
  }
  for (const prefix of fanout) {
    for (const name of readdirSync(join(root, prefix))) {
      const path = join(root, prefix, name);
      if (sha256(readFileSync(path)) !== `sha256:${name}`) bad.push(path);
    }
  }
  return bad;
}
