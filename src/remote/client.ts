// Berth's one client for other registries (proxy cache, replication, tests): the OCI distribution
// API over node:http(s) with keep-alive, the Docker token / Basic challenge flow, retries of
// idempotent requests, redirects to storage, and streamed blobs.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { digestOf } from '../domain/digest.ts';
import { MEDIA_TYPES } from '../domain/media-types.ts';
import { isTag } from '../domain/names.ts';
import { VERSION } from '../version.ts';
import { type Attempt, Authenticator } from './auth.ts';
import { answeredURL, type Call, discard, resolveLocation, Transport } from './http.ts';
import { asDigest, asReference, type CheckedDigest, repositoryProblem, v2Path } from './paths.ts';
import { RemoteError, type Endpoint, type PingResult, type RegistryType, type RemoteBlob, type RemoteManifest, type RemoteManifestHead } from './types.ts';
import { type BlobOpener, mountOnly, uploadBlob } from './upload.ts';

/** How a client behaves; every field has a default. */
export interface ClientOptions {
  /** Milliseconds without progress (connecting, awaiting headers, an idle body) before RemoteError('timeout'); default 30 000. */
  timeoutMs?: number;
  /** `User-Agent`; default `berth/<version>`. */
  userAgent?: string;
  /** The largest manifest (or referrers index) read; default 4 MiB. */
  maxManifestBytes?: number;
  /** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size; default 64 MiB. */
  uploadChunkBytes?: number;
  /**
   * Ends the client's work: once aborted, requests in flight fail at once and new ones are not
   * sent (both reject with the signal's reason). A replication execution's cancel or shutdown.
   */
  signal?: AbortSignal;
}

/** The default `Accept` for manifests: OCI index and manifest, Docker manifest list and schema 2. */
export const MANIFEST_ACCEPT: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.dockerManifest];

const DEFAULT_URLS: Partial<Record<RegistryType, string>> = {
  dockerhub: 'https://registry-1.docker.io',
  ghcr: 'https://ghcr.io',
  quay: 'https://quay.io',
};

/** The registry URL of a well-known registry type (Docker Hub, GHCR, Quay), or undefined when the type has none. */
export function defaultURL(type: RegistryType): string | undefined {
  return DEFAULT_URLS[type];
}

const MAX_LISTING_BYTES = 8 * 1024 * 1024;
const MAX_PAGES = 1000;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/**
 * A client for one endpoint. Every method rejects with RemoteError only (a stream body given to
 * `pushBlob` may also reject with its own error): `unreachable`, `timeout`, `status` (the HTTP
 * status and the registry's OCI error code; `notFound` for 404), `protocol` (an answer the
 * protocol does not allow, or an argument that is not a valid name, reference or digest — refused
 * before anything is sent). Messages name the endpoint and the operation, never a credential.
 */
export class RegistryClient {
  /** The endpoint as given (its password included: never log it whole). */
  readonly endpoint: Endpoint;
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  readonly #base: URL;
  readonly #maxManifest: number;
  readonly #chunkBytes: number;

  /** Throws RemoteError('protocol') when the endpoint URL is not an http(s) URL without credentials. */
  constructor(endpoint: Endpoint, options: ClientOptions = {}) {
    this.endpoint = endpoint;
    let base: URL | undefined;
    try {
      base = new URL(endpoint.url);
    } catch {
      /* reported below */
    }
    if (!base || (base.protocol !== 'http:' && base.protocol !== 'https:') || base.username || base.password) {
      throw new RemoteError('protocol', `${endpoint.name}: the endpoint URL is not an http(s) URL without credentials`);
    }
    this.#base = new URL(base.origin);
    this.#maxManifest = options.maxManifestBytes ?? 4 * 1024 * 1024;
    this.#chunkBytes = Math.max(1, options.uploadChunkBytes ?? 64 * 1024 * 1024);
    this.#transport = new Transport(endpoint, {
      timeoutMs: options.timeoutMs ?? 30_000,
      userAgent: options.userAgent ?? `berth/${VERSION}`,
      redact: (text) => this.#auth.redact(text),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    this.#auth = new Authenticator(endpoint, this.#transport);
  }

  /**
   * `GET /v2/` through the auth flow: which scheme the registry asks for and whether the
   * credentials work. Resolves with `authenticated: false` when none were given and the registry
   * wants some; rejects with RemoteError('status', 401) when the given ones are refused.
   */
  async ping(): Promise<PingResult> {
    const started = performance.now();
    let sent;
    try {
      sent = await this.#send({ method: 'GET', url: this.#url('/v2/'), op: 'GET /v2/' }, [], true);
    } catch (error) {
      // A token service that refuses anonymous requests: not a refusal of credentials (none were given).
      if (error instanceof RemoteError && error.status === 401 && !this.#auth.hasCredentials) {
        return { auth: 'bearer', authenticated: false, elapsedMs: Math.round(performance.now() - started) };
      }
      throw error;
    }
    const { res, attempt, challenged } = sent;
    const status = res.statusCode ?? 0;
    if (status !== 200 && status !== 401) throw await this.#transport.statusError(res, 'GET /v2/');
    discard(res);
    const scheme = challenged?.scheme ?? attempt.scheme;
    const realm = challenged?.realm ?? attempt.realm;
    return {
      auth: scheme ?? 'none',
      ...(scheme === 'bearer' && realm ? { realm } : {}),
      authenticated: status === 200,
      elapsedMs: Math.round(performance.now() - started),
    };
  }

  /**
   * `HEAD` a manifest: digest (`Docker-Content-Digest`), media type and size. When the registry
   * leaves any of them out, falls back to a GET and reports what its bytes say. A digest reference
   * must come back as itself, else RemoteError('protocol').
   */
  async headManifest(repository: string, reference: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<RemoteManifestHead> {
    const ref = this.#reference(repository, reference, 'HEAD manifest');
    const op = `HEAD manifest ${repository}${ref.display}`;
    const { res } = await this.#send({ method: 'HEAD', url: this.#url(v2Path(repository, 'manifests', reference)), op, headers: { Accept: acceptHeader(accept) }, redirects: 5 }, pull(repository));
    if (res.statusCode !== 200) throw await this.#transport.statusError(res, op);
    discard(res);
    const digest = asDigest(String(res.headers['docker-content-digest'] ?? ''));
    const mediaType = mediaTypeOf(res);
    const size = lengthOf(res);
    if (!digest || !mediaType || size === undefined) return this.getManifest(repository, reference, accept).then(({ digest, mediaType, size }) => ({ digest, mediaType, size }));
    if ('digest' in ref.parsed && digest.value !== ref.parsed.digest.value) throw this.#transport.protocolError(op, 'the registry answered with another digest');
    return { digest: digest.value, mediaType, size };
  }

  /**
   * `GET` a manifest's exact bytes (at most `maxManifestBytes`), their digest computed: it must
   * equal a digest reference, and `Docker-Content-Digest` when the registry sends one of the same
   * algorithm — else RemoteError('protocol').
   */
  async getManifest(repository: string, reference: string, accept: readonly string[] = MANIFEST_ACCEPT): Promise<RemoteManifest> {
    const ref = this.#reference(repository, reference, 'GET manifest');
    const op = `GET manifest ${repository}${ref.display}`;
    const { res } = await this.#send({ method: 'GET', url: this.#url(v2Path(repository, 'manifests', reference)), op, headers: { Accept: acceptHeader(accept) }, redirects: 5 }, pull(repository));
    if (res.statusCode !== 200) throw await this.#transport.statusError(res, op);
    const body = await this.#transport.readBody(res, this.#maxManifest, op);
    const header = asDigest(String(res.headers['docker-content-digest'] ?? ''));
    const expected = 'digest' in ref.parsed ? ref.parsed.digest : header;
    const digest = digestOf(body, expected?.algorithm ?? 'sha256');
    if ('digest' in ref.parsed && digest !== ref.parsed.digest.value) throw this.#transport.protocolError(op, 'the manifest does not match the digest asked for');
    if (header && header.algorithm === expected?.algorithm && header.value !== digest) throw this.#transport.protocolError(op, 'the manifest does not match its Docker-Content-Digest');
    return { digest, mediaType: mediaTypeOf(res) ?? bodyMediaType(body) ?? 'application/octet-stream', size: body.length, body };
  }

  /**
   * `GET` a blob, or the bytes `range.start`–`range.end` (inclusive; to the end when `end` is
   * undefined). Follows up to 5 redirects (storage, CDN) without sending Authorization to another
   * origin. The body streams and is not verified: the caller checks the digest. A registry that
   * ignores the range answers 200 with the whole blob. Idle for `timeoutMs`, the body is destroyed
   * with RemoteError('timeout'); cut off, it errors as Node reports it.
   */
  async getBlob(repository: string, digest: string, range?: { start: number; end?: number }): Promise<RemoteBlob> {
    const checked = this.#digest(repository, digest, 'GET blob');
    const op = `GET blob ${repository}@${checked.value}`;
    const headers: Record<string, string> = {};
    if (range) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) throw this.#transport.protocolError(op, 'invalid byte range');
      headers['Range'] = `bytes=${start}-${end ?? ''}`;
    }
    const { res } = await this.#send({ method: 'GET', url: this.#url(v2Path(repository, 'blobs', checked.value)), op, headers, redirects: 5 }, pull(repository));
    const status = res.statusCode ?? 0;
    if (status !== 200 && !(status === 206 && range)) throw await this.#transport.statusError(res, op);
    const length = lengthOf(res);
    let totalSize = length;
    if (status === 206) {
      const m = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15}|\*)$/.exec(String(res.headers['content-range'] ?? ''));
      if (!m || Number(m[1]) !== range!.start || (length !== undefined && Number(m[2]) - Number(m[1]) + 1 !== length)) {
        res.destroy();
        throw this.#transport.protocolError(op, 'the partial answer does not carry the range asked for');
      }
      totalSize = m[3] === '*' ? undefined : Number(m[3]);
    }
    return { status, ...(length !== undefined ? { length } : {}), ...(totalSize !== undefined ? { totalSize } : {}), body: res };
  }

  /** `HEAD` a blob: its size, or undefined when the registry answers 404. */
  async blobExists(repository: string, digest: string): Promise<number | undefined> {
    const checked = this.#digest(repository, digest, 'HEAD blob');
    const op = `HEAD blob ${repository}@${checked.value}`;
    const { res } = await this.#send({ method: 'HEAD', url: this.#url(v2Path(repository, 'blobs', checked.value)), op, redirects: 5 }, pull(repository));
    if (res.statusCode === 404) {
      discard(res);
      return undefined;
    }
    if (res.statusCode !== 200) throw await this.#transport.statusError(res, op);
    discard(res);
    const size = lengthOf(res);
    if (size === undefined) throw this.#transport.protocolError(op, 'the answer has no Content-Length');
    return size;
  }

  /**
   * Pushes a blob of exactly `size` bytes: with `mountFrom`, a cross-repository mount first (a
   * registry that cannot mount opens an upload instead); then one PUT, or PATCH chunks for bodies
   * larger than `uploadChunkBytes`. Resolves once the registry answered 201, with the body bytes
   * written to the network (0 for a mount; failed attempts counted). A body of another length is
   * refused with RemoteError('protocol') before the upload commits. A Buffer or stream body is never
   * retried (an expired token mid-upload fails the push with 401); a body given as an opener
   * (`offset` → stream of the bytes from there) is: after a transient failure the upload resumes
   * where the registry's session stands, or starts over in a new session, at most 5 times.
   */
  async pushBlob(repository: string, digest: string, size: number, body: Readable | Buffer | BlobOpener, options: { mountFrom?: string } = {}): Promise<number> {
    const checked = this.#digest(repository, digest, 'push blob');
    const op = `push blob ${repository}@${checked.value}`;
    if (options.mountFrom !== undefined && repositoryProblem(options.mountFrom)) throw this.#transport.protocolError(op, 'the mount source is not a valid repository name');
    if (!Number.isSafeInteger(size) || size < 0 || (Buffer.isBuffer(body) && body.length !== size)) throw this.#transport.protocolError(op, 'the body does not have the declared size');
    const scopes = [`repository:${repository}:pull,push`, ...(options.mountFrom ? [`repository:${options.mountFrom}:pull`] : [])];
    return uploadBlob(
      { send: async (call) => (await this.#send(call, scopes)).res, transport: this.#transport, base: this.#base, chunkBytes: this.#chunkBytes },
      { repository, digest: checked.value, size, body, op, ...(options.mountFrom ? { mountFrom: options.mountFrom } : {}) },
    );
  }

  /**
   * Mounts blob `digest` into `repository` from `from` at the same registry, uploading nothing:
   * true when it did, false when the registry would not (the session it opened instead is
   * cancelled). Rejects with RemoteError for an error answer.
   */
  async mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const checked = this.#digest(repository, digest, 'mount blob');
    const op = `mount blob ${repository}@${checked.value}`;
    if (repositoryProblem(from)) throw this.#transport.protocolError(op, 'the mount source is not a valid repository name');
    const scopes = [`repository:${repository}:pull,push`, `repository:${from}:pull`];
    return mountOnly({ send: async (call) => (await this.#send(call, scopes)).res, transport: this.#transport, base: this.#base, chunkBytes: this.#chunkBytes }, { repository, digest: checked.value, op }, from);
  }

  /**
   * `DELETE` a manifest by digest (and so every tag on it). Resolves when the registry answered
   * 202 or 200, and when it answered 404 (already gone). A registry that does not allow deletes
   * (405, or `UNSUPPORTED`) is RemoteError('status') saying so.
   */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    const checked = this.#digest(repository, digest, 'DELETE manifest');
    const op = `DELETE manifest ${repository}@${checked.value}`;
    const { res } = await this.#send({ method: 'DELETE', url: this.#url(v2Path(repository, 'manifests', checked.value)), op, idempotent: true }, [`repository:${repository}:delete`]);
    const status = res.statusCode ?? 0;
    if (status === 202 || status === 200 || status === 204 || status === 404) {
      discard(res);
      return;
    }
    const error = await this.#transport.statusError(res, op);
    if (status === 405 || error.code === 'UNSUPPORTED') throw new RemoteError('status', `${this.endpoint.name}: ${op}: deletes are disabled at the registry (HTTP ${status})`, status, error.code);
    throw error;
  }

  /**
   * Every repository of the registry (`/v2/_catalog`), following `Link` pagination like `tags`;
   * entries that are not valid repository names are left out. A registry without a catalog (or
   * refusing it) answers 404/401/403: RemoteError('status', `notFound` for 404); an answer that is
   * not a catalog is RemoteError('protocol').
   */
  async catalog(options: { pageSize?: number } = {}): Promise<string[]> {
    const op = 'list the catalog';
    const names: string[] = [];
    await this.#pages(this.#url('/v2/_catalog'), options.pageSize, op, ['registry:catalog:*'], (list) => {
      if (!Array.isArray(list.repositories) && list.repositories !== null) throw this.#transport.protocolError(op, 'the answer is not a catalog');
      for (const name of (list.repositories ?? []) as unknown[]) if (typeof name === 'string' && !repositoryProblem(name)) names.push(name);
    });
    return names;
  }

  /**
   * `PUT` a manifest under a tag or its digest; resolves with the digest the registry reports
   * (`Docker-Content-Digest`) or, without one, the computed one. A reported digest of the same
   * algorithm that differs from the bytes' is RemoteError('protocol').
   */
  async putManifest(repository: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
    const ref = this.#reference(repository, reference, 'PUT manifest');
    const op = `PUT manifest ${repository}${ref.display}`;
    if (!MEDIA_TYPE.test(mediaType)) throw this.#transport.protocolError(op, 'the media type is not a valid media type');
    if (body.length > this.#maxManifest) throw this.#transport.protocolError(op, `the manifest is larger than ${this.#maxManifest} bytes`);
    const computed = digestOf(body, 'digest' in ref.parsed ? ref.parsed.digest.algorithm : 'sha256');
    if ('digest' in ref.parsed && computed !== ref.parsed.digest.value) throw this.#transport.protocolError(op, 'the manifest does not match its digest reference');
    const { res } = await this.#send({ method: 'PUT', url: this.#url(v2Path(repository, 'manifests', reference)), op, headers: { 'Content-Type': mediaType }, body }, push(repository));
    if (res.statusCode !== 201) throw await this.#transport.statusError(res, op);
    discard(res);
    const header = asDigest(String(res.headers['docker-content-digest'] ?? ''));
    if (!header) return computed;
    if (header.algorithm === asDigest(computed)!.algorithm && header.value !== computed) throw this.#transport.protocolError(op, 'the registry stored the manifest under another digest');
    return header.value;
  }

  /**
   * Every tag of a repository, following `Link` pagination (same origin only, at most 1000 pages);
   * entries that are not valid tags are left out. `pageSize` asks for pages of that size (`n`).
   */
  async tags(repository: string, options: { pageSize?: number } = {}): Promise<string[]> {
    if (repositoryProblem(repository)) throw this.#transport.protocolError('list tags', 'the repository name does not match the OCI name grammar');
    const op = `list tags of ${repository}`;
    const tags: string[] = [];
    await this.#pages(this.#url(v2Path(repository, 'tags', 'list')), options.pageSize, op, pull(repository), (list) => {
      if (list.tags !== null && list.tags !== undefined && !Array.isArray(list.tags)) throw this.#transport.protocolError(op, 'the tag list is not a list');
      for (const tag of (list.tags ?? []) as unknown[]) if (typeof tag === 'string' && isTag(tag)) tags.push(tag);
    });
    return tags;
  }

  /**
   * `GET /v2/<name>/referrers/<digest>`: an OCI image index of the manifests referring to `digest`.
   * One page comes back byte for byte; several (`Link`) are merged into one index whose digest is
   * that of the merged bytes. A registry without the referrers API answers 404: RemoteError with
   * `notFound`.
   */
  async referrers(repository: string, digest: string): Promise<RemoteManifest> {
    const checked = this.#digest(repository, digest, 'GET referrers');
    const op = `GET referrers of ${repository}@${checked.value}`;
    let url: URL | undefined = this.#url(v2Path(repository, 'referrers', checked.value));
    const pages: { body: Buffer; mediaType?: string; manifests: unknown[] }[] = [];
    let total = 0;
    for (let page = 0; url; page++) {
      if (page >= MAX_PAGES) throw this.#transport.protocolError(op, 'the referrers list does not end');
      const { res } = await this.#send({ method: 'GET', url, op, headers: { Accept: MEDIA_TYPES.ociIndex } }, pull(repository));
      if (res.statusCode !== 200) throw await this.#transport.statusError(res, op);
      const body = await this.#transport.readBody(res, this.#maxManifest - total, op);
      total += body.length;
      const index = this.#json(body, op) as { manifests?: unknown };
      if (!Array.isArray(index.manifests)) throw this.#transport.protocolError(op, 'the answer is not an image index');
      pages.push({ body, manifests: index.manifests, ...(mediaTypeOf(res) ? { mediaType: mediaTypeOf(res)! } : {}) });
      url = this.#next(res, url, op);
    }
    const single = pages.length === 1 ? pages[0]! : undefined;
    const body = single ? single.body : Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: pages.flatMap((p) => p.manifests) }));
    return { digest: digestOf(body), mediaType: single?.mediaType ?? MEDIA_TYPES.ociIndex, size: body.length, body };
  }

  /** Destroys the pooled keep-alive sockets; requests in flight fail. The client may still be used (new sockets are opened). */
  close(): void {
    this.#transport.close();
  }

  /**
   * Sends `call` with what the auth flow says, answering up to two 401 challenges. With
   * `tolerateAnonymous`, a 401 when no credentials were configured is returned rather than thrown.
   */
  async #send(call: Call, scopes: readonly string[], tolerateAnonymous = false): Promise<{ res: IncomingMessage; attempt: Attempt; challenged?: { scheme: 'basic' | 'bearer'; realm?: string } }> {
    let attempt = await this.#auth.initial(scopes, call.op);
    let challenged: { scheme: 'basic' | 'bearer'; realm?: string } | undefined;
    for (let round = 0; ; round++) {
      const res = await this.#transport.send({ ...call, ...(attempt.authorization ? { authorization: attempt.authorization } : {}) });
      // Only the endpoint's own challenges are answered: a storage host it redirected to must not
      // get to name a token realm (which could receive the password).
      if (res.statusCode !== 401 || answeredURL(res)?.origin !== this.#base.origin) return { res, attempt, ...(challenged ? { challenged } : {}) };
      let outcome;
      try {
        outcome = round < 2 && typeof call.body !== 'function' ? await this.#auth.after401(res, attempt, scopes, call.op) : undefined;
      } catch (error) {
        discard(res);
        throw error;
      }
      if (outcome) challenged = { scheme: outcome.scheme, ...(outcome.realm ? { realm: outcome.realm } : {}) };
      if (!outcome?.next) {
        if (tolerateAnonymous && !this.#auth.hasCredentials) return { res, attempt, ...(challenged ? { challenged } : {}) };
        throw await this.#transport.statusError(res, call.op, attempt.kind === 'none' ? 'authentication required' : 'credentials refused');
      }
      discard(res);
      attempt = outcome.next;
    }
  }

  /** GETs `first` and every `Link` page after it (same origin, at most MAX_PAGES, no loops), handing each JSON object to `take`. */
  async #pages(first: URL, pageSize: number | undefined, op: string, scopes: string[], take: (page: Record<string, unknown>) => void): Promise<void> {
    let url: URL | undefined = first;
    if (pageSize !== undefined) url.searchParams.set('n', String(Math.max(1, Math.floor(pageSize))));
    const seen = new Set<string>();
    for (let page = 0; url; page++) {
      if (page >= MAX_PAGES || seen.has(url.href)) throw this.#transport.protocolError(op, 'the list does not end');
      seen.add(url.href);
      const { res } = await this.#send({ method: 'GET', url, op, headers: { Accept: 'application/json' } }, scopes);
      if (res.statusCode !== 200) throw await this.#transport.statusError(res, op);
      take(this.#json(await this.#transport.readBody(res, MAX_LISTING_BYTES, op), op));
      url = this.#next(res, url, op);
    }
  }

  #url(path: string): URL {
    return new URL(path, this.#base);
  }

  #reference(repository: string, reference: string, what: string): { parsed: { tag: string } | { digest: CheckedDigest }; display: string } {
    const problem = repositoryProblem(repository);
    if (problem) throw this.#transport.protocolError(what, problem);
    const parsed = asReference(reference);
    if (!parsed) throw this.#transport.protocolError(`${what} ${repository}`, 'the reference is neither a tag nor a supported digest');
    return { parsed, display: 'tag' in parsed ? `:${parsed.tag}` : `@${parsed.digest.value}` };
  }

  #digest(repository: string, digest: string, what: string): CheckedDigest {
    const problem = repositoryProblem(repository);
    if (problem) throw this.#transport.protocolError(what, problem);
    const checked = asDigest(digest);
    if (!checked) throw this.#transport.protocolError(`${what} ${repository}`, 'not a supported digest');
    return checked;
  }

  #json(body: Buffer, op: string): Record<string, unknown> {
    try {
      const value: unknown = JSON.parse(body.toString('utf8'));
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      /* reported below */
    }
    throw this.#transport.protocolError(op, 'the answer is not a JSON object');
  }

  /** The `rel="next"` target of a `Link` header, on the endpoint's own origin only (it gets our credentials). */
  #next(res: IncomingMessage, current: URL, op: string): URL | undefined {
    const link = (res.headersDistinct['link'] ?? []).join(', ');
    if (!link || link.length > 16_384) return undefined;
    const m = /<([^>]{1,4096})>\s*;\s*rel="?next"?/i.exec(link);
    if (!m) return undefined;
    const next = resolveLocation(m[1], current, () => this.#transport.protocolError(op, 'an unusable Link header'));
    if (next.origin !== this.#base.origin || !next.pathname.startsWith('/v2/')) throw this.#transport.protocolError(op, 'a Link header pointing elsewhere');
    return next;
  }
}

function pull(repository: string): string[] {
  return [`repository:${repository}:pull`];
}

function push(repository: string): string[] {
  return [`repository:${repository}:pull,push`];
}

function acceptHeader(accept: readonly string[]): string {
  return accept.join(', ');
}

function mediaTypeOf(res: IncomingMessage): string | undefined {
  const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // Generic types say nothing about the manifest's kind; the body's own `mediaType` is asked instead.
  return MEDIA_TYPE.test(type) && !['application/octet-stream', 'application/json', 'text/plain'].includes(type) ? type : undefined;
}

function bodyMediaType(body: Buffer): string | undefined {
  try {
    const type = (JSON.parse(body.toString('utf8')) as { mediaType?: unknown }).mediaType;
    return typeof type === 'string' && MEDIA_TYPE.test(type) ? type : undefined;
  } catch {
    return undefined;
  }
}

function lengthOf(res: IncomingMessage): number | undefined {
  const value = res.headers['content-length'];
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}
