import { S3Client } from '@aws-sdk/client-s3';
import { StorageError } from '../blob-store.ts';
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';

/** How to reach the bucket (the `storage.s3` settings, less what only the store uses). */
export interface S3ClientSettings {
  /** Unset: AWS itself, found from `region`. */
  endpoint?: string;
  region: string;
  /** Static credentials; both unset: the SDK's default chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  /** Attempts per request, the first included. */
  maxAttempts: number;
}

/** Backoff bases of {@link PatientRetryStrategy}; tests shorten them, servers keep the defaults. */
export interface RetryTiming {
  /** First backoff ceiling for 5xx and network errors, ms (default 100). */
  baseMs?: number;
  /** First backoff ceiling after throttling (SlowDown, 429), ms (default 1,000). */
  throttledMs?: number;
  /** Largest single wait, ms (default 20,000). */
  maxMs?: number;
}

/**
 * Retries throttling (`SlowDown`, 429…), 5xx and network errors with exponential backoff and full
 * jitter — wait a random time below min(base × 2^retry, max) — until `maxAttempts` is used up.
 *
 * Not the SDK's standard strategy, although its backoff is the same (full jitter, verified in
 * @smithy/core's DefaultRetryBackoffStrategy): that one also keeps a retry quota per client (500
 * tokens, 5 per throttled retry, 14 per other retry, refunded by successes) and stops retrying when
 * it runs out. A bucket throttling a push that sends parts in parallel drains that quota quickly,
 * and requests then fail on their first error while a retry could still succeed; here each request
 * keeps its own attempts. The SDK classifies each error (`errorType`) before calling this.
 */
export class PatientRetryStrategy implements RetryStrategyV2 {
  private readonly baseMs: number;
  private readonly throttledMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly maxAttempts: number,
    timing: RetryTiming = {},
  ) {
    this.baseMs = timing.baseMs ?? 100;
    this.throttledMs = timing.throttledMs ?? 1_000;
    this.maxMs = timing.maxMs ?? 20_000;
  }

  async acquireInitialRetryToken(): Promise<StandardRetryToken> {
    return retryToken(0, 0);
  }

  async refreshRetryTokenForRetry(token: StandardRetryToken, info: RetryErrorInfo): Promise<StandardRetryToken> {
    const retries = token.getRetryCount() + 1;
    if (retries >= this.maxAttempts || !retryable(info)) throw new Error('no retry left');
    const base = info.errorType === 'THROTTLING' ? this.throttledMs : this.baseMs;
    let delay = Math.random() * Math.min(base * 2 ** (retries - 1), this.maxMs);
    // A server that says when to come back is believed, within the same ceiling.
    if (info.retryAfterHint) delay = Math.max(delay, Math.min(info.retryAfterHint.getTime() - Date.now(), this.maxMs));
    // The SDK's retry middleware waits this long (abortably) before the next attempt.
    return retryToken(retries, Math.floor(delay));
  }

  recordSuccess(): void {}
}

function retryable(info: RetryErrorInfo): boolean {
  if (info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT') return true;
  // Other 5xx (the SDK calls 500/502/503/504 transient already), except a feature the server lacks.
  return info.errorType === 'SERVER_ERROR' && info.error?.$metadata?.httpStatusCode !== 501;
}

function retryToken(count: number, delay: number): StandardRetryToken {
  return { getRetryCount: () => count, getRetryDelay: () => delay, getRetryCost: () => undefined };
}

/**
 * An S3 client for the store. The SDK's default checksums stay on (real S3 uses them); part and
 * object bodies are always Buffers, so every request can be retried (the SDK never retries a
 * streamed body). Sockets are kept alive and capped, idle ones time out.
 */
export function createS3Client(settings: S3ClientSettings, timing?: RetryTiming): S3Client {
  // The SDK warns on every start under Node 20 that its releases after January 2027 will need
  // Node 22. Berth's lock file pins a release that supports Node 20, so the warning asks nothing
  // of the operator (an operator can still set the variable to "false" to see it).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const credentials = settings.accessKeyId && settings.secretAccessKey ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } : undefined;
  const client = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(credentials ? { credentials } : {}),
    maxAttempts: settings.maxAttempts,
    retryStrategy: new PatientRetryStrategy(settings.maxAttempts, timing),
    requestHandler: {
      connectionTimeout: 10_000,
      // Inactivity on a socket, not a whole request: a hung connection becomes a retried timeout
      // (a blob read paused that long by a slow receiver resumes with a ranged GET, see S3BlobStream).
      socketTimeout: 120_000,
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
  });
  // Outside the retry loop (the initialize step wraps it): what still fails after every attempt
  // for a reason a later call may not meet becomes StorageError('unavailable'), which clients get
  // as 503 UNAVAILABLE rather than a 500.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (exhausted(err)) throw new StorageError('unavailable', `object storage unavailable (${(err as Error).name})`, { cause: err });
        throw err;
      }
    },
    { step: 'initialize', name: 'berthUnavailable' },
  );
  return client;
}

/** A failure worth trying again later: throttling, a 5xx (but 501), or no answer at all. */
function exhausted(err: unknown): boolean {
  const name = (err as Error)?.name;
  const status = httpStatus(err);
  if (['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed', 'TimeoutError'].includes(name)) return true;
  if (status !== undefined) return status >= 500 && status !== 501 || status === 429;
  // No HTTP answer: a network error (refused, reset, timed out), not a client-side mistake.
  return typeof (err as NodeJS.ErrnoException)?.code === 'string' || name === 'TimeoutError';
}

/** The HTTP status of an SDK error, when it got one. */
export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** An error saying the object (or bucket) is not there. */
export function isNotFound(err: unknown): boolean {
  const name = (err as Error)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload');
}

/** An error saying a multipart upload is gone (completed or aborted). */
export function isNoSuchUpload(err: unknown): boolean {
  return (err as Error)?.name === 'NoSuchUpload';
}
