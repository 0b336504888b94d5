// The OCI operations the figures time, spoken the way docker and containerd speak them: upload
// sessions (POST, then PATCH and/or PUT), manifests by tag, blob GETs. Same code for both registries.
import type http from 'node:http';
import { createHash } from 'node:crypto';
import { type Body, Credentials, type AuthMode, fetchLarge, type Reply, type RequestSpec, send } from './http.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
/** What docker sends in Accept for manifests. */
export const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** `sha256:…` of bytes. */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A registry as the figures see it. */
export interface Endpoint {
  readonly base: string;
  readonly authMode: AuthMode;
  readonly username: string;
  readonly password: string;
}

/** One simulated client (its own credentials and tokens) sharing a keep-alive agent with others. */
export class RegistryClient {
  readonly credentials: Credentials;

  constructor(readonly endpoint: Endpoint, readonly agent: http.Agent) {
    this.credentials = new Credentials(endpoint.authMode, endpoint.base, agent, endpoint.username, endpoint.password);
  }

  /**
   * Sends a request on `repository` (pull, or pull and push) — or, for `repository` undefined, on
   * the catalog — with this client's credentials; a refused token is fetched again once.
   */
  async call(repository: string | undefined, push: boolean, url: string, spec: RequestSpec): Promise<Reply> {
    const scope = repository === undefined ? 'registry:catalog:*' : `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
    for (let attempt = 0; ; attempt++) {
      const auth = await this.credentials.header(scope, push || repository === undefined);
      const headers = { ...spec.headers, ...(auth ? { Authorization: auth } : {}) };
      const reply = await send(this.agent, new URL(url, this.endpoint.base), { ...spec, headers });
      if (reply.status === 401 && this.endpoint.authMode === 'token' && attempt === 0) {
        this.credentials.forget(scope);
        continue;
      }
      return reply;
    }
  }

  /** Gets this client's credentials for `repository` ready (a token fetched), so timing starts with the transfer. */
  async authorize(repository: string, push: boolean): Promise<void> {
    await this.credentials.header(`repository:${repository}:${push ? 'pull,push' : 'pull'}`, push);
  }

  /** Opens an upload session; returns its absolute Location. */
  async startUpload(repository: string): Promise<string> {
    const reply = await this.call(repository, true, `/v2/${repository}/blobs/uploads/`, { method: 'POST', keepBody: true });
    expect(reply, 202, `POST /v2/${repository}/blobs/uploads/`);
    return this.location(reply);
  }

  /** Monolithic push as clients do it: POST a session, PUT the whole blob with `?digest=`. */
  async pushMonolithic(repository: string, body: Body, digest: string): Promise<void> {
    const location = await this.startUpload(repository);
    const reply = await this.call(repository, true, withDigest(location, digest), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body,
      keepBody: true,
    });
    expect(reply, 201, `PUT blob ${digest.slice(0, 19)}`);
  }

  /** Chunked push: POST, one PATCH per `chunkSize` bytes (with Content-Range), PUT `?digest=` without a body. */
  async pushChunked(repository: string, bytes: Buffer, chunkSize: number, digest: string): Promise<void> {
    let location = await this.startUpload(repository);
    for (let start = 0; start < bytes.length; start += chunkSize) {
      const chunk = bytes.subarray(start, Math.min(start + chunkSize, bytes.length));
      const reply = await this.call(repository, true, location, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + chunk.length - 1}` },
        body: chunk,
        keepBody: true,
      });
      expect(reply, 202, `PATCH ${start}-${start + chunk.length - 1}`);
      location = this.location(reply);
    }
    const reply = await this.call(repository, true, withDigest(location, digest), { method: 'PUT', keepBody: true });
    expect(reply, 201, `PUT ?digest=${digest.slice(0, 19)}`);
  }

  /** HEAD a blob; true when the repository has it (what clients ask before uploading a layer). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const reply = await this.call(repository, true, `/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
    if (reply.status !== 200 && reply.status !== 404) expect(reply, 200, `HEAD blob ${digest.slice(0, 19)}`);
    return reply.status === 200;
  }

  /** Cross-repository mount; expects 201 (the blob is known in `from`). */
  async mount(repository: string, digest: string, from: string): Promise<void> {
    const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const reply = await this.call(repository, true, `/v2/${repository}/blobs/uploads/?${query}`, { method: 'POST', keepBody: true });
    expect(reply, 201, `mount ${digest.slice(0, 19)} from ${from}`);
  }

  /** GETs a blob over a fresh connection with the lean reader, counting (not keeping) its bytes. */
  async pullBlob(repository: string, digest: string): Promise<number> {
    const auth = await this.credentials.header(`repository:${repository}:pull`, false);
    const reply = await fetchLarge(new URL(`/v2/${repository}/blobs/${digest}`, this.endpoint.base), auth ? { Authorization: auth } : {});
    expect(reply, 200, `GET blob ${digest.slice(0, 19)}`);
    return reply.bytes;
  }

  /** PUTs a manifest under a tag (or digest). */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType = OCI_MANIFEST): Promise<void> {
    const reply = await this.call(repository, true, `/v2/${repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body: bytes,
      keepBody: true,
    });
    expect(reply, 201, `PUT manifest ${repository}:${reference}`);
  }

  /** DELETE a manifest by digest (with its tags); expects 202, as the distribution spec answers. */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    const reply = await this.call(repository, true, `/v2/${repository}/manifests/${digest}`, { method: 'DELETE', keepBody: true });
    expect(reply, 202, `DELETE manifest ${repository}@${digest.slice(0, 19)}`);
  }

  /** HEAD or GET a manifest by tag with docker's Accept header; returns the body length. */
  async fetchManifest(repository: string, reference: string, method: 'HEAD' | 'GET'): Promise<number> {
    const reply = await this.call(repository, false, `/v2/${repository}/manifests/${reference}`, { method, headers: { Accept: MANIFEST_ACCEPT } });
    expect(reply, 200, `${method} manifest ${repository}:${reference}`);
    return reply.bytes;
  }

  /** GETs a JSON listing: the tags list of `repository`, or `/_catalog` when it is undefined; returns the parsed body. */
  async listing(path: string, repository: string | undefined): Promise<{ json: Record<string, unknown>; bytes: number }> {
    const reply = await this.call(repository, false, path, { method: 'GET', keepBody: true });
    expect(reply, 200, `GET ${path}`);
    return { json: JSON.parse(reply.body!.toString('utf8')) as Record<string, unknown>, bytes: reply.bytes };
  }

  /** GETs a listing and counts its body bytes without keeping or parsing it (the timed part of a listing figure). */
  async listingBytes(path: string, repository: string | undefined): Promise<number> {
    const reply = await this.call(repository, false, path, { method: 'GET' });
    expect(reply, 200, `GET ${path}`);
    return reply.bytes;
  }

  private location(reply: Reply): string {
    const location = reply.headers.location;
    if (!location) throw new Error(`${reply.status} without a Location header`);
    return new URL(location, this.endpoint.base).toString();
  }
}

/** Adds `digest=` to an upload URL that may already carry a query (Distribution's `_state`). */
export function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/** Throws with the status and the start of the body unless the reply has the expected status. */
export function expect(reply: Reply, status: number, what: string): void {
  if (reply.status === status) return;
  const body = reply.body ? ` ${reply.body.toString('utf8').slice(0, 400)}` : '';
  throw new Error(`${what}: expected ${status}, got ${reply.status}${body}`);
}

/** An OCI image manifest over a config and layers (given as bytes and media type). */
export function imageManifest(config: Buffer, layers: readonly Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: sha256(l), size: l.length })),
    }),
  );
}

/** A small, unique image config (a real client's config is a few hundred bytes of JSON). */
export function imageConfig(nonce: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'org.berth.bench': nonce } },
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
}
