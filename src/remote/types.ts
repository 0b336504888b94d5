import type { Readable } from 'node:stream';

/** The kinds of registry an endpoint may be; they differ in defaults (Docker Hub's `library/`, its token realm). */
export const REGISTRY_TYPES = ['berth', 'distribution', 'harbor', 'dockerhub', 'ghcr', 'quay', 'generic'] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

/** How to reach another registry: its base URL, credentials and TLS options (the secret already opened). */
export interface Endpoint {
  /** For log lines and errors (never the credentials). */
  name: string;
  type: RegistryType;
  /** `https://host[:port]` or `http://…`, no path. */
  url: string;
  username?: string;
  /** Password or token; never logged, never part of an error. */
  password?: string;
  /** PEM of extra CAs trusted for this endpoint (beside the system's). */
  ca?: string | Buffer;
  /** Do not verify the endpoint's TLS certificate. */
  insecure?: boolean;
}

/**
 * Why a request to another registry failed. `unreachable` (connection refused or reset, DNS),
 * `timeout` (no answer within the client's timeout), `status` (an HTTP error status, `status`
 * set; 429 and 5xx are the upstream's trouble, 401/403 a credential problem, 404 an unknown name),
 * `protocol` (an answer that is not what the protocol says: a bad challenge, a token response
 * without a token, a digest mismatch, too many redirects).
 */
export type RemoteErrorKind = 'unreachable' | 'timeout' | 'status' | 'protocol';

/** A failed request to another registry; its message names the endpoint and what failed, never a credential. */
export class RemoteError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    readonly status?: number,
    /** The registry's OCI error code, when it sent an error envelope (e.g. MANIFEST_UNKNOWN). */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RemoteError';
  }

  /** The upstream's trouble rather than the request's: a cached copy may be served instead (stale-if-error). */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || (this.kind === 'status' && (this.status === 429 || (this.status ?? 0) >= 500));
  }

  /** The registry says the name or content does not exist (404). */
  get notFound(): boolean {
    return this.kind === 'status' && this.status === 404;
  }
}

/** A manifest as the registry answered a HEAD: what it is, not its bytes. */
export interface RemoteManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/** A manifest's exact bytes, their digest verified. */
export interface RemoteManifest extends RemoteManifestHead {
  body: Buffer;
}

/** A blob (or a range of it) being received. */
export interface RemoteBlob {
  /** 200 (whole) or 206 (the range asked for). */
  status: number;
  /** Bytes of the body (`Content-Length`), undefined when the registry did not say. */
  length?: number;
  /** The whole blob's size when known (from `Content-Range` on a 206, else `length`). */
  totalSize?: number;
  /** The body. Destroying it aborts the transfer. */
  body: Readable;
}

/** What testing an endpoint found (`RegistryClient.ping`). */
export interface PingResult {
  /** How the registry asked to be authenticated: none, Basic, or Bearer tokens from a realm. */
  auth: 'none' | 'basic' | 'bearer';
  /** The token realm, for Bearer. */
  realm?: string;
  /** Whether the credentials given were accepted (true when anonymous access was enough and none were given). */
  authenticated: boolean;
  /** Milliseconds the round trips took. */
  elapsedMs: number;
}
