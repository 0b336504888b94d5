import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closes connections as soon as nothing is in flight on them once shutdown begins. Node's
 * `server.close()` closes only connections idle between requests, once: one that never sent a
 * request stays open, and one whose response finishes later stays open for keep-alive — either
 * held the shutdown for its whole grace. `drain()` closes the first kind at once and each other
 * connection when its last response is out (`Connection: close` on responses not yet begun).
 */
export function connectionDrainer(server: Server, secure: boolean): { drain(): void } {
  let draining = false;
  /** Open connections and their responses in progress. */
  const connections = new Map<Socket, Set<ServerResponse>>();
  // Over TLS the sockets requests arrive on are the TLS ones; their byte counts are plaintext.
  server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections.set(socket, new Set());
    socket.once('close', () => connections.delete(socket));
  });
  // Before the request handler, which may answer at once.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const responses = connections.get(socket);
    if (!responses) return;
    responses.add(res);
    if (draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      responses.delete(res);
      if (draining && responses.size === 0) socket.destroySoon();
    });
  });
  return {
    drain() {
      draining = true;
      for (const [socket, responses] of connections) {
        // Nothing received yet: no request to finish. (A request still arriving is in flight.)
        if (responses.size === 0 && socket.bytesRead === 0) socket.destroy();
        for (const res of responses) if (!res.headersSent) res.shouldKeepAlive = false;
      }
    },
  };
}
