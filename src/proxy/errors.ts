import { RegistryError } from '../domain/errors.ts';
import { RemoteError } from '../remote/types.ts';
import type { Upstream } from './upstream.ts';

/**
 * Whether a cached copy should be served instead of failing: the upstream is rate-limiting,
 * failing, slow, unreachable, or refusing Berth's credentials — its trouble, not the client's.
 */
export function servesStale(err: unknown): boolean {
  return err instanceof RemoteError && (err.transient || err.status === 401 || err.status === 403);
}

/** A short phrase for what went wrong upstream (for logs, audit and the client's message). */
export function upstreamTrouble(err: unknown): string {
  if (!(err instanceof RemoteError)) return 'an unexpected error';
  if (err.kind === 'status') return `HTTP ${err.status}`;
  return err.kind;
}

/**
 * The client's error for an upstream failure with nothing cached to serve instead: unknown when the
 * upstream says so, 429 passed on, DENIED when it refuses Berth's credentials, else UNAVAILABLE.
 */
export function upstreamError(err: unknown, up: Upstream, what: 'manifest' | 'blob'): Error {
  if (!(err instanceof RemoteError)) return err as Error;
  const detail = { registry: up.registry, upstream: up.remote, reason: upstreamTrouble(err) };
  if (err.notFound) return new RegistryError(what === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', `${what} unknown to the upstream registry ${up.registry} (nothing cached)`, detail);
  if (err.status === 429) return new RegistryError('TOOMANYREQUESTS', `the upstream registry ${up.registry} is rate-limiting Berth (HTTP 429) and this ${what} is not cached yet; try again later`, detail);
  if (err.status === 401 || err.status === 403) {
    return new RegistryError('DENIED', `the upstream registry ${up.registry} refused access to ${up.remote} (HTTP ${err.status}): the repository may not exist there or be private; an administrator can check the endpoint's credentials with berth registry test ${up.registry}`, detail);
  }
  return new RegistryError('UNAVAILABLE', `the upstream registry ${up.registry} failed (${upstreamTrouble(err)}) and this ${what} is not cached yet`, detail);
}
