import { RegistryError } from '../../domain/errors.ts';
import { pipeline } from 'node:stream/promises';
import type { BlobStream, ByteRange } from '../../storage/blob-store.ts';
import type { Route } from '../context.ts';
import { sendEmpty } from '../respond.ts';
import type { Context } from '../context.ts';
import type { ProxiedBlob } from '../../proxy/blobs.ts';
import { admitPull, repositoryAccess, repositoryParam, segmentParam, type OciDeps } from './deps.ts';

/** Parses a single `Range: bytes=…` against a blob's size; 416 when unsatisfiable or malformed. */
export function parseRange(header: string, size: number): ByteRange {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // The header is named, not echoed; the blob's size tells the client what it may ask for.
  const fail = () =>
    new RegistryError(
      'RANGE_INVALID',
      'requested range not satisfiable',
      { field: 'Range', expected: `one range within the blob's ${size} bytes: bytes=<start>-<end>, bytes=<start>- or bytes=-<suffix length>`, size },
      { headers: { 'Content-Range': `bytes */${size}` } },
    );
  if (!m || (m[1] === '' && m[2] === '')) throw fail();
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw fail();
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) throw fail();
  return { start, end };
}

/** Headers every blob reply carries. */
function blobHeaders(digest: string): Record<string, string | number> {
  return {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
}

/**
 * Answers with a blob the proxy cache is fetching: its bytes as they arrive. If the transfer fails
 * (the upstream broke off, or the bytes did not match the digest) the connection is cut, so the
 * client sees a short body and never takes it for the blob.
 */
async function sendProxied(ctx: Context, blob: ProxiedBlob): Promise<void> {
  const headers = blobHeaders(blob.digest);
  const { size, range } = blob;
  if (range && size !== undefined) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  if (size !== undefined) headers['Content-Length'] = range ? range.end - range.start + 1 : size;
  ctx.res.writeHead(range ? 206 : 200, headers);
  if (!blob.stream) {
    ctx.res.end();
    return;
  }
  const stream = blob.stream;
  try {
    // The growing copy's reader reuses its buffers (sendTo); a ranged pass-through is piped.
    if ('sendTo' in stream && typeof stream.sendTo === 'function') await (stream as BlobStream).sendTo(ctx.res);
    else await pipeline(stream, ctx.res, { end: false });
    ctx.res.end();
  } catch (err) {
    ctx.log.warn({ err, digest: blob.digest }, 'proxied blob transfer failed: connection cut');
    stream.destroy();
    ctx.res.destroy();
  }
}

/** `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`. */
export function blobRoutes(deps: OciDeps): Route[] {
  const { registry, access } = deps;
  return [
    {
      name: 'blob',
      methods: ['GET', 'HEAD', 'DELETE'],
      pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
      handler: async (ctx, [rawName, rawDigest]) => {
        const name = repositoryParam(rawName);
        const digest = segmentParam(rawDigest);
        const method = ctx.req.method!;
        if (method === 'DELETE') {
          await access.require(ctx, [repositoryAccess(name, 'delete')]);
          await registry.blobs.delete(name, digest);
          sendEmpty(ctx.res, 202);
          return;
        }
        const { target } = await admitPull(deps, ctx, name);
        const upstream = deps.proxy && (await deps.proxy.upstreams.of(target));
        let info = upstream
          ? await registry.blobs.stat(target, digest).catch((err: unknown) => {
              if (err instanceof RegistryError && err.code === 'BLOB_UNKNOWN') return undefined;
              throw err;
            })
          : await registry.blobs.stat(target, digest);
        if (!info) {
          // Not cached in this repository yet: the proxy cache fetches it (or links another's copy).
          const rangeHeader = ctx.req.headers.range;
          const proxied = await deps.proxy!.blobs.serve(upstream!, target, digest, method === 'HEAD', (size) => (rangeHeader && size > 0 ? parseRange(rangeHeader, size) : undefined));
          if (proxied) return sendProxied(ctx, proxied);
          info = await registry.blobs.stat(target, digest);
        }
        const headers = blobHeaders(info.digest);
        const rangeHeader = ctx.req.headers.range;
        const range = rangeHeader && info.size > 0 ? parseRange(rangeHeader, info.size) : undefined;
        if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
        headers['Content-Length'] = range ? range.end - range.start + 1 : info.size;
        const status = range ? 206 : 200;
        if (method === 'GET' && info.size > 0 && deps.blobRedirect) {
          // The client fetches (its Range included) from storage; only the pull's checks ran here.
          sendEmpty(ctx.res, 307, { Location: await deps.blobRedirect(info.digest), 'Docker-Content-Digest': info.digest, 'Cache-Control': 'no-store' });
          return;
        }
        if (method === 'HEAD' || info.size === 0) {
          ctx.res.writeHead(status, headers);
          ctx.res.end();
          return;
        }
        const { stream } = await registry.blobs.open(target, digest, range);
        ctx.res.writeHead(status, headers);
        // Not a pipe: sendTo reuses two buffers instead of a fresh megabyte per read (see FileBlobStream).
        await stream.sendTo(ctx.res);
        ctx.res.end();
      },
    },
  ];
}
