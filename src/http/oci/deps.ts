import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../../domain/errors.ts';
import { assertRepositoryName } from '../../domain/names.ts';
import type { Access } from '../../auth/scope.ts';
import type { Registry } from '../../registry/index.ts';
import type { OciAccess } from './access.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { ProxyCache } from '../../proxy/index.ts';
import type { Context } from '../context.ts';
import type { Grant } from './access.ts';

/** What the `/v2` route modules need. */
export interface OciDeps {
  registry: Registry;
  access: OciAccess;
  authorizer: Authorizer;
  maxManifestBytes: number;
  /** Access token lifetime, seconds (for explanations and the echo endpoint). */
  tokenTTL: number;
  externalURLs: readonly string[];
  /**
   * The pre-signed storage URL that a blob GET is redirected to (`storage.redirect` on a store that
   * can sign URLs, see `blobRedirector`); unset, blobs are served through Berth.
   */
  blobRedirect?: (digest: string) => Promise<string>;
  /** Proxy-cache projects and the transparent mirror (src/proxy/). */
  proxy?: ProxyCache;
}

/**
 * Admits a pull of `name` and names the repository that serves it: `name` itself, or — through
 * the transparent mirror (`proxy.mirrors`) — a proxy-cache project's copy of it, which the caller
 * must be allowed to pull as well.
 */
export async function admitPull(deps: OciDeps, ctx: Context, name: string): Promise<{ grant: Grant; target: string }> {
  const mirrors = deps.proxy?.mirrors;
  const target = mirrors?.enabled ? await mirrors.resolve(name, ctx.query.get('ns')) : name;
  const grant = await deps.access.require(ctx, [repositoryAccess(name, 'pull')]);
  if (target !== name && (await deps.authorizer.allowedActions(grant.identity, 'repository', target, ['pull'])).length === 0) {
    throw new RegistryError('DENIED', `requested access to the resource is denied: pull on repository ${target}`, { type: 'repository', name: target, action: 'pull' });
  }
  return { grant, target };
}

/** The repository name from a URL path segment group, validated. */
export function repositoryParam(raw: string | undefined): string {
  return assertRepositoryName(raw ?? '');
}

/** A percent-decoded path segment (a tag, digest or upload id). */
export function segmentParam(raw: string | undefined): string {
  try {
    return decodeURIComponent(raw ?? '');
  } catch {
    throw new RegistryError('NAME_INVALID', 'malformed percent-encoding in the URL path', { field: 'path', expected: 'valid UTF-8 percent-encoding (%XX)' });
  }
}

/** The scope entry for actions on a repository. */
export function repositoryAccess(name: string, ...actions: string[]): Access {
  return { type: 'repository', name, actions };
}

/** `Content-Length` as a number, undefined when absent; `SIZE_INVALID` when malformed. */
export function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers['content-length'];
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new RegistryError('SIZE_INVALID', 'malformed Content-Length', { field: 'Content-Length', expected: 'a whole number of bytes' });
  return Number(value);
}

/** Whether the request carries a body (a length above zero, or chunked transfer encoding). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (contentLength(req) ?? 0) > 0;
}

/** The `Range` header value for an upload holding `size` bytes (`0-0` when empty, as Distribution). */
export function uploadRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}
