// Body-limit, chunked-encoding and speed probes on a throw-away upload session (M7, M8, M9).
import type { Made } from './cleanup.ts';
import { bodyLimitFinding } from './findings.ts';
import { type Recorder, describe, expect } from './recorder.ts';
import { formatSize, probeSizes } from './size.ts';
import { resolveReference } from './urls.ts';
import type { Exchange, Finding } from './types.ts';

/** The largest layer whose upload should fit in one token lifetime. */
export const BIG_LAYER = 10 * 1024 ** 3;
const CHUNKED_SIZE = 64 * 1024;

/** Where the next PATCH goes: the server's Location, kept on the typed origin (URL problems are judged elsewhere). */
function nextUrl(rec: Recorder, ex: Exchange, previous: string): string {
  const { url } = resolveReference(ex.headers['location'] ?? previous, ex.url);
  const parsed = new URL(url);
  return `${rec.target.base}${parsed.pathname}${parsed.search}`;
}

const refused = (ex: Exchange): boolean => ex.error !== undefined || (ex.status !== undefined && ex.status >= 400);

/**
 * PATCHes growing bodies (512KiB, 1MiB+1, 2MiB+1, 8MiB+1, … up to `maxBody`) into one upload
 * session, stopping at the first refusal, then one chunked PATCH; measures the upload speed from
 * the successful bodies of 1 MiB and more; cancels the session (or leaves it in `made.uploads`
 * for the cleanup to try again and report).
 */
export async function probeBodies(rec: Recorder, repo: string, maxBody: number, made: Made): Promise<void> {
  const start = rec.url(`/v2/${repo}/blobs/uploads/`);
  const post = await rec.request('body-post', 'POST upload (body probe)', { method: 'POST', url: start, authorization: rec.authorization }, expect(202));
  if (post.status !== 202) return;
  let url = nextUrl(rec, post, start);
  let largestPassed: number | undefined;
  let bytes = 0;
  let ms = 0;
  for (const size of probeSizes(maxBody)) {
    const ex = await rec.request(`body-${size}`, `PATCH ${formatSize(size)}`, { method: 'PATCH', url, authorization: rec.authorization, body: { size }, headers: { 'Content-Type': 'application/octet-stream' } }, expect(202));
    if (refused(ex)) {
      if (ex.status === 413 || ex.error?.code === 'EPIPE' || ex.error?.code === 'ECONNRESET') {
        rec.info.bodyLimit = { largestPassed, firstFailed: size };
        rec.add(bodyLimitFinding(largestPassed, size, ex.status ?? ex.error!.code, [describe(ex), `largest body that passed: ${largestPassed !== undefined ? formatSize(largestPassed) : 'none'}`]));
      } else if (ex.status === 504 || ex.status === 408 || ex.error?.code === 'ETIMEDOUT') {
        rec.add({ mechanism: 'M8', severity: 'problem', title: `a ${formatSize(size)} body timed out (${ex.status ?? ex.error!.code})`, evidence: [describe(ex)], fix: 'Raise the proxy timeouts and stream bodies: `proxy_read_timeout 900s; proxy_send_timeout 900s; proxy_request_buffering off;` (and `client_body_timeout`).', clients: ['containerd', 'docker', 'containers-image'] });
      }
      break;
    }
    largestPassed = size;
    if (size >= 1024 ** 2) {
      bytes += size;
      ms += ex.durationMs;
    }
    url = nextUrl(rec, ex, url);
  }
  if (largestPassed !== undefined) rec.info.bodyLimit = { ...rec.info.bodyLimit, largestPassed };
  if (bytes > 0) rec.info.uploadBytesPerSecond = Math.round(bytes / Math.max(ms, 1) * 1000);

  const chunked = await rec.request('body-chunked', `PATCH ${formatSize(CHUNKED_SIZE)} chunked`, { method: 'PATCH', url, authorization: rec.authorization, body: { size: CHUNKED_SIZE, chunked: true }, headers: { 'Content-Type': 'application/octet-stream' } }, expect(202));
  if (chunked.status === 411) {
    rec.add({ mechanism: 'M8', severity: 'problem', title: `a chunked request body was refused (${chunked.status})`, evidence: [describe(chunked)], fix: 'Something in front of the registry refuses request bodies sent with `Transfer-Encoding: chunked` (411 Length Required), which clients use to stream layers of unknown length: upgrade or bypass that proxy or load balancer (nginx accepts them since 1.3.9 whatever its configuration; its `chunked_transfer_encoding` only concerns responses). With nginx, `proxy_http_version 1.1; proxy_request_buffering off;` streams them through.', clients: ['containerd', 'docker', 'containers-image'] });
  } else if (chunked.status === 202) {
    url = nextUrl(rec, chunked, url);
  }
  const cancel = await rec.request('body-cancel', 'DELETE upload (body probe)', { method: 'DELETE', url, authorization: rec.authorization }, (e) => ({ ok: e.status === 204 || e.status === 202 ? true : null }));
  if (cancel.status !== 204 && cancel.status !== 202 && cancel.status !== 404) made.uploads.push(url);
  judgeTokenLifetime(rec);
}

/** M9: would a 10 GiB layer at the measured speed outlive the token? */
function judgeTokenLifetime(rec: Recorder): void {
  const { tokenExpiresIn, uploadBytesPerSecond } = rec.info;
  if (tokenExpiresIn === undefined || !uploadBytesPerSecond) return;
  const finding = tokenLifetimeFinding(tokenExpiresIn, uploadBytesPerSecond, rec.info.kind === 'berth');
  if (finding) rec.add(finding);
}

/** The M9 warning when a 10 GiB layer at `bytesPerSecond` takes longer than a token lives; undefined when it fits. */
export function tokenLifetimeFinding(tokenExpiresIn: number, bytesPerSecond: number, berth: boolean): Finding | undefined {
  const seconds = BIG_LAYER / bytesPerSecond;
  if (seconds <= tokenExpiresIn) return undefined;
  return {
    mechanism: 'M9',
    severity: 'warning',
    title: `tokens live ${tokenExpiresIn}s; a 10GiB layer at the measured ${(bytesPerSecond / 1e6).toFixed(1)} MB/s takes ${Math.round(seconds)}s`,
    evidence: [`token expires_in ${tokenExpiresIn}`, `measured ${(bytesPerSecond / 1e6).toFixed(1)} MB/s over the body probe`],
    fix: berth
      ? `Raise Berth's \`auth.tokenTTL\` (now ${tokenExpiresIn}s) above the longest upload, e.g. \`auth: { tokenTTL: 1h }\`.`
      : 'Raise the token lifetime of the token service (Distribution token auth: the issuer\'s expiration; Harbor: `token_expiration` in minutes) above the longest upload.',
    clients: ['containerd', 'docker', 'containers-image'],
  };
}
