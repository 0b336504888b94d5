// What the kernel says about a loopback TCP connection (/proc/net/tcp): whether the peer process
// has read what was sent. Conditions to wait on (with a bounded wait such as durability/wire.ts
// `until`), for tests that must know a server holds some bytes before they send the next ones.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/** The queues of one end of an ESTABLISHED IPv4 TCP connection. */
export interface TcpQueues {
  /** Bytes received that the owning process has not read yet (rx_queue, "Recv-Q"). */
  rx: number;
  /** Bytes sent that the peer has not acknowledged yet (tx_queue, "Send-Q"). */
  tx: number;
  /** The socket's inode: 0 while the connection waits in a listener's accept queue. */
  inode: number;
}

/** The end `localPort` of an ESTABLISHED connection to `remotePort`, if there is one. */
export function tcpQueues(localPort: number, remotePort: number): TcpQueues | undefined {
  const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode …; st 01 is ESTABLISHED.
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || !fields[1]!.endsWith(hex(localPort)) || !fields[2]!.endsWith(hex(remotePort)) || fields[3] !== '01') continue;
    const [tx, rx] = fields[4]!.split(':').map((q) => Number.parseInt(q, 16));
    return { tx: tx!, rx: rx!, inode: Number(fields[9]) };
  }
  return undefined;
}

/**
 * Whether the process at the other end of `socket` (a client connection to a server on this
 * machine, over IPv4 loopback) has read everything written on it: nothing left in Node's buffer,
 * nothing unacknowledged on the client's end (bytes the server's full window held back), and
 * nothing unread on the server's end of an accepted connection. Node parses HTTP in the turn it
 * reads, so a server in Node has then parsed it too.
 */
export function peerHasReadAll(socket: Socket): boolean {
  if (socket.writableLength > 0 || socket.localPort === undefined || socket.remotePort === undefined) return false;
  const client = tcpQueues(socket.localPort, socket.remotePort);
  const server = tcpQueues(socket.remotePort, socket.localPort);
  return client !== undefined && server !== undefined && client.tx === 0 && server.rx === 0 && server.inode !== 0;
}
