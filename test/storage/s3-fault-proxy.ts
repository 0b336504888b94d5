// An HTTP proxy on 127.0.0.1 between the S3 driver and a real S3 server that answers chosen
// requests with the errors a busy S3 gives (503 SlowDown, 500 InternalError) or cuts a response
// body short, and records what passed: to test retries against the real server behind it.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The S3 operation a request is, told from its method, query and headers. */
export type S3Operation =
  | 'PutObject'
  | 'CopyObject'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListObjectsV2'
  | 'ListMultipartUploads'
  | 'DeleteObjects'
  | 'Other';

/** One request as the proxy saw it. */
export interface SeenRequest {
  op: S3Operation;
  /** The URL path: `/<bucket>/<key>` (path-style). */
  path: string;
  /** 1 for a first attempt; the SDK's `amz-sdk-request: attempt=N` header. */
  attempt: number;
  /** Same for every attempt of one SDK call (`amz-sdk-invocation-id`). */
  invocation: string;
  headers: IncomingMessage['headers'];
  /** The query string, without its `?`. */
  query: string;
  /** The request body, for DeleteObjects only (a list of keys); set once it has arrived. */
  body?: string;
}

/**
 * What to do with a request: pass it, answer an error instead (throttling, a server error, or the
 * refusal of credentials that moto, which checks none, never gives), pass it but cut the
 * response body after `cutAfter` bytes, or pass a DeleteObjects and answer that its first
 * `deleteErrors` keys could not be deleted (as S3 does for keys it refuses, with 200).
 */
export type Fault = 'pass' | 'slowdown' | 'internal' | 'denied' | { cutAfter: number } | { deleteErrors: number };

export interface FaultProxy {
  readonly endpoint: string;
  readonly seen: SeenRequest[];
  /** Requests answered with an error or cut, by kind. */
  readonly injected: { slowdown: number; internal: number; denied: number; cut: number };
  /** The most requests of each operation that were in flight at once. */
  readonly peak: Partial<Record<S3Operation, number>>;
  /** Decides each request's fate; replace it between steps of a test. */
  decide: (req: SeenRequest) => Fault;
  close(): Promise<void>;
}

export function operationOf(method: string, url: URL, headers: IncomingMessage['headers']): S3Operation {
  const q = url.searchParams;
  const copy = headers['x-amz-copy-source'] !== undefined;
  if (method === 'PUT' && q.has('partNumber')) return copy ? 'UploadPartCopy' : 'UploadPart';
  if (method === 'PUT') return copy ? 'CopyObject' : 'PutObject';
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
  if (method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (method === 'DELETE') return 'DeleteObject';
  if (method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
  if (method === 'GET' && q.get('list-type') === '2') return 'ListObjectsV2';
  if (method === 'GET') return 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  return 'Other';
}

const ERRORS = {
  slowdown: { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  internal: { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  denied: { status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' },
};

/** Starts the proxy in front of `target` (e.g. `http://127.0.0.1:PORT`); every request passes until `decide` says otherwise. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const inFlight = new Map<S3Operation, number>();
  const proxy: FaultProxy = {
    endpoint: '',
    seen: [],
    injected: { slowdown: 0, internal: 0, denied: 0, cut: 0 },
    peak: {},
    decide: () => 'pass',
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const attempt = Number(/attempt=(\d+)/.exec(String(req.headers['amz-sdk-request'] ?? ''))?.[1] ?? 1);
    const seen: SeenRequest = {
      op: operationOf(req.method ?? 'GET', url, req.headers),
      path: decodeURIComponent(url.pathname),
      attempt,
      invocation: String(req.headers['amz-sdk-invocation-id'] ?? ''),
      headers: req.headers,
      query: url.search.slice(1),
    };
    proxy.seen.push(seen);
    inFlight.set(seen.op, (inFlight.get(seen.op) ?? 0) + 1);
    proxy.peak[seen.op] = Math.max(proxy.peak[seen.op] ?? 0, inFlight.get(seen.op)!);
    res.on('close', () => inFlight.set(seen.op, inFlight.get(seen.op)! - 1));
    if (seen.op === 'DeleteObjects') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => (seen.body = Buffer.concat(chunks).toString('utf8')));
    }
    const fault = proxy.decide(seen);
    if (fault === 'slowdown' || fault === 'internal' || fault === 'denied') {
      proxy.injected[fault]++;
      // The body is read first, as S3 does, so the client sees the answer rather than a reset.
      req.resume();
      req.on('end', () => {
        const e = ERRORS[fault];
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${e.message}</Message></Error>`;
        res.writeHead(e.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (typeof fault === 'object' && 'deleteErrors' in fault && answer.statusCode === 200) {
          answer.resume();
          answer.on('end', () => {
            const keys = [...(seen.body ?? '').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!).slice(0, fault.deleteErrors);
            const errors = keys.map((k) => `<Error><Key>${k}</Key><Code>AccessDenied</Code><Message>Access Denied for ${k}</Message></Error>`).join('');
            const body = `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${errors}</DeleteResult>`;
            res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
            res.end(body);
          });
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (typeof fault === 'object' && 'cutAfter' in fault) {
          proxy.injected.cut++;
          let sent = 0;
          answer.on('data', (chunk: Buffer) => {
            const room = fault.cutAfter - sent;
            if (room > 0) res.write(chunk.subarray(0, room));
            sent += chunk.length;
            if (sent >= fault.cutAfter) {
              answer.destroy();
              res.socket?.destroy();
            }
          });
          return;
        }
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.socket?.destroy());
    req.pipe(forward);
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (proxy as { endpoint: string }).endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
