// Registry endpoints as administrators manage them: settings validated into one canonical form,
// the password sealed at rest (bound to the endpoint's name), opened only to build the Endpoint the
// outbound client uses, and a connection test whose answer names what failed — never a credential.
import { SealError, type Sealer } from '../auth/sealed.ts';
import { invalid, RegistryError, type FieldError } from '../domain/errors.ts';
import type { RegistryStore } from '../metadata/registries.ts';
import type { RegistryRow } from '../metadata/schema.ts';
import { readCA } from './ca.ts';
import { defaultURL, RegistryClient } from './client.ts';
import { REGISTRY_TYPES, RemoteError, type Endpoint, type PingResult, type RegistryType } from './types.ts';

/** An endpoint name: what `berth registry add NAME` and the API accept. */
export const ENDPOINT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The rule of ENDPOINT_NAME in words, for refusals. */
export const ENDPOINT_NAME_RULE = '1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit';


/** Settings of an endpoint as given: on creation, or (all optional) as changes to a saved one. */
export interface EndpointSettings {
  type?: RegistryType;
  /** `https://host[:port]` or `http://…`; absent: the saved one, or the type's default (Docker Hub, GHCR, Quay). */
  url?: string;
  /** null (on a change): no credentials any more — anonymous access. */
  username?: string | null;
  /** The password or token, with `username`. */
  password?: string;
  /** Absolute path of a PEM file of CA certificates the server reads; null: none. */
  caFile?: string | null;
  insecure?: boolean;
  description?: string | null;
}

/**
 * An endpoint that cannot be used as saved: its credential does not open with this key, or its CA
 * file cannot be read any more. The message names the endpoint and the fix, never the secret.
 */
export class EndpointUnusableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EndpointUnusableError';
  }
}

/** What testing an endpoint found: the ping's result, or why it failed. */
export interface EndpointTest {
  /** The registry answered as a registry and accepted the credentials (or needs none). */
  ok: boolean;
  /** How the registry asks to be authenticated; null when it was not reached. */
  auth: PingResult['auth'] | null;
  /** The token realm of a Bearer registry. */
  realm: string | null;
  authenticated: boolean;
  elapsedMs: number;
  /**
   * What failed, beginning with one of `unreachable`, `TLS`, `timeout`, `credentials refused`,
   * `authentication required`, `not a registry`, `registry error`, `unusable`.
   */
  error?: string;
}

/** What the service needs. */
export interface EndpointServiceDeps {
  registries: RegistryStore;
  /** Seals credentials at rest (`secrets.key`, or derived from the signing key). */
  sealer: Sealer;
  /** How long a test waits for the registry (`proxy.timeout`), ms. */
  timeoutMs: number;
}

/** The settings of a saved or new endpoint, validated and complete; `password` plain (never stored so). */
interface Resolved {
  type: RegistryType;
  url: string;
  username: string | null;
  /** undefined: keep the saved credential (a change that does not touch it). */
  password: string | null | undefined;
  caFile: string | null;
  /** The CA file's PEM when this change (or creation) named the file: read once, while validating. */
  ca?: string;
  insecure: boolean;
  description: string | null;
}

/**
 * Registry endpoints: create, change, delete (refused while a proxy-cache project uses one), the
 * Endpoint for the outbound client, and the connection test. Errors: INVALID (400, `invalid`),
 * RegistryError CONFLICT for a name taken, RegistryInUseError from `delete`, EndpointUnusableError
 * from `endpoint`; the database's own.
 */
export class EndpointService {
  constructor(private readonly deps: EndpointServiceDeps) {}

  /** Creates endpoint `name`; its row. CONFLICT when the name is taken. */
  async create(name: string, settings: EndpointSettings, createdBy: string | null): Promise<RegistryRow> {
    if (!ENDPOINT_NAME.test(name)) throw invalid([{ path: 'name', message: ENDPOINT_NAME_RULE }]);
    const resolved = await this.resolve(settings, undefined);
    const row = await this.deps.registries.create({
      name,
      type: resolved.type,
      url: resolved.url,
      username: resolved.username,
      credential: resolved.password ? this.deps.sealer.seal(resolved.password, context(name)) : null,
      caFile: resolved.caFile,
      insecure: resolved.insecure,
      description: resolved.description,
      createdBy,
    });
    if (!row) throw new RegistryError('CONFLICT', `registry endpoint "${name}" already exists`);
    return row;
  }

  /** Changes endpoint `name`; its new row and what changed (field names, for audit), or undefined when it does not exist. */
  async update(name: string, changes: EndpointSettings): Promise<{ row: RegistryRow; changed: string[] } | undefined> {
    const saved = await this.deps.registries.find(name);
    if (!saved) return undefined;
    const resolved = await this.resolve(changes, saved);
    const credential = resolved.password === undefined ? undefined : resolved.password === null ? null : this.deps.sealer.seal(resolved.password, context(name));
    const changed = Object.keys(changes).filter((k) => changes[k as keyof EndpointSettings] !== undefined);
    const row = await this.deps.registries.update(name, {
      type: resolved.type,
      url: resolved.url,
      username: resolved.username,
      ...(credential !== undefined ? { credential } : {}),
      caFile: resolved.caFile,
      insecure: resolved.insecure,
      description: resolved.description,
    });
    return row && { row, changed };
  }

  /** The Endpoint of a saved row or name, its password opened and CA file read. EndpointUnusableError when it cannot be. */
  async endpoint(target: RegistryRow | string): Promise<Endpoint> {
    const row = typeof target === 'string' ? await this.deps.registries.find(target) : target;
    if (!row) throw new EndpointUnusableError(`registry endpoint "${String(target)}" does not exist`);
    let password: string | undefined;
    if (row.credential !== null) {
      try {
        password = this.deps.sealer.open(row.credential, context(row.name));
      } catch (err) {
        if (!(err instanceof SealError)) throw err;
        throw new EndpointUnusableError(
          `registry endpoint "${row.name}": its saved password does not open with this server's secrets key (was secrets.key or the signing key changed?); set it again with berth registry update ${row.name} --password-stdin`,
        );
      }
    }
    let ca: string | undefined;
    if (row.ca_file !== null) {
      const read = await readCA(row.ca_file);
      if ('message' in read) throw new EndpointUnusableError(`registry endpoint "${row.name}": its caFile ${read.message}`);
      ca = read.pem;
    }
    return endpointOf(row.name, { type: row.type as RegistryType, url: row.url, username: row.username, password: password ?? null, caFile: null, insecure: row.insecure === 1, description: null }, ca);
  }

  /** The Endpoint of endpoint `id` (the proxy cache's lookup); undefined when it was deleted. */
  async endpointById(id: number): Promise<Endpoint | undefined> {
    const row = await this.deps.registries.findById(id);
    return row && this.endpoint(row);
  }

  /**
   * Tests a saved endpoint (`target` a name, with unsaved `changes` laid over it if given), or
   * unsaved settings: pings the registry through the real challenge and token/Basic flow. Answers
   * rather than throws for everything the registry did; INVALID for bad settings;
   * undefined when a named endpoint does not exist.
   */
  async test(target: string | EndpointSettings, changes?: EndpointSettings): Promise<EndpointTest | undefined> {
    let endpoint: Endpoint;
    if (typeof target === 'string') {
      const saved = await this.deps.registries.find(target);
      if (!saved) return undefined;
      const changing = changes !== undefined && Object.values(changes).some((v) => v !== undefined);
      const resolved = changing ? await this.resolve(changes, saved) : undefined;
      // What the changes replace need not open or be readable: new credentials mend a saved one that does not open.
      const replaced = { ...saved, ...(resolved?.password !== undefined ? { credential: null } : {}), ...(resolved?.ca !== undefined || resolved?.caFile === null ? { ca_file: null } : {}) };
      try {
        endpoint = await this.endpoint(replaced);
      } catch (err) {
        if (!(err instanceof EndpointUnusableError)) throw err;
        return { ok: false, auth: null, realm: null, authenticated: false, elapsedMs: 0, error: `unusable: ${err.message}` };
      }
      if (resolved) {
        const password = resolved.password === undefined ? (endpoint.password ?? null) : resolved.password;
        endpoint = endpointOf(saved.name, { ...resolved, password }, resolved.ca ?? (endpoint.ca as string | undefined));
      }
    } else {
      const resolved = await this.resolve(target, undefined);
      // Named by its URL in messages: it has no name yet.
      endpoint = endpointOf(resolved.url, resolved, resolved.ca);
    }
    return ping(endpoint, this.deps.timeoutMs);
  }

  /**
   * `settings` validated and completed from `saved` (a change) or the defaults (a creation).
   * Every refused field is named at once.
   */
  private async resolve(settings: EndpointSettings, saved: RegistryRow | undefined): Promise<Resolved> {
    const fields: FieldError[] = [];
    const type = settings.type ?? (saved?.type as RegistryType | undefined);
    if (type === undefined || !REGISTRY_TYPES.includes(type)) fields.push({ path: 'type', message: type === undefined ? 'required' : `one of ${REGISTRY_TYPES.join(', ')}` });

    let url = saved?.url;
    if (settings.url !== undefined) {
      const problem = urlProblem(settings.url);
      if (problem) fields.push({ path: 'url', message: problem });
      else url = canonicalURL(settings.url);
    } else if (url === undefined && type !== undefined && REGISTRY_TYPES.includes(type)) {
      url = defaultURL(type);
      if (url === undefined) fields.push({ path: 'url', message: `required for type ${type} (only dockerhub, ghcr and quay have a default)` });
    }

    let username = saved?.username ?? null;
    let password: string | null | undefined;
    if (settings.username === null) {
      if (settings.password !== undefined) fields.push({ path: 'password', message: 'cannot be set while username is cleared (null)' });
      username = null;
      password = null;
    } else if (settings.username !== undefined) {
      if (settings.username.length === 0 || settings.username.length > 255 || /[\u0000-\u001f:]/.test(settings.username)) {
        fields.push({ path: 'username', message: '1-255 characters, no ":" or control characters' });
      } else if (settings.password === undefined && settings.username !== saved?.username) {
        fields.push({ path: 'password', message: 'required with username (a new username needs its password)' });
      }
      username = settings.username;
      password = settings.password;
    } else if (settings.password !== undefined) {
      if (!saved?.username) fields.push({ path: 'username', message: 'required with password' });
      password = settings.password;
    }
    if (password !== undefined && password !== null && (password.length === 0 || password.length > 4096)) fields.push({ path: 'password', message: '1-4096 characters' });

    let caFile = saved?.ca_file ?? null;
    let ca: string | undefined;
    if (settings.caFile !== undefined) {
      caFile = settings.caFile;
      if (caFile !== null) {
        const read = await readCA(caFile);
        if ('message' in read) fields.push({ path: 'caFile', message: read.message });
        else ca = read.pem;
      }
    }
    const description = settings.description !== undefined ? settings.description : (saved?.description ?? null);
    if (description !== null && description.length > 1024) fields.push({ path: 'description', message: 'at most 1024 characters' });

    if (fields.length > 0) throw invalid(fields);
    return { type: type!, url: url!, username, password, caFile, ...(ca !== undefined ? { ca } : {}), insecure: settings.insecure ?? saved?.insecure === 1, description };
  }
}

/** The context a credential is sealed under: its endpoint's name, which never changes. */
function context(name: string): string {
  return `registry:${name}`;
}

function endpointOf(name: string, settings: Resolved, ca: string | undefined): Endpoint {
  return {
    name,
    type: settings.type,
    url: settings.url,
    ...(settings.username !== null ? { username: settings.username } : {}),
    ...(settings.password ? { password: settings.password } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(settings.insecure ? { insecure: true } : {}),
  };
}

/** Why `text` is not `http(s)://host[:port]`; undefined when it is. Never repeats `text`. */
export function urlProblem(text: string): string | undefined {
  const shape = 'must be http(s)://host[:port], e.g. https://registry.example.com';
  if (text.length > 2048) return 'at most 2048 characters';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL: ${shape}`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `only http and https are allowed: ${shape}`;
  if (url.username || url.password || /^[a-z]+:\/\/[^/]*@/i.test(text)) return 'must not contain credentials: give username and password instead';
  if (!url.hostname) return `no host: ${shape}`;
  if ((url.pathname !== '/' && url.pathname !== '') || /^[a-z]+:\/\/[^/?#]*\/./i.test(text)) return `must not have a path (Berth adds /v2/ itself): ${shape}`;
  if (url.search || url.hash || /[?#]/.test(text)) return `must not have a query or fragment: ${shape}`;
  return undefined;
}

/** `HTTPS://Registry.Example.com:443/` → `https://registry.example.com` (the URL class drops default ports). */
function canonicalURL(text: string): string {
  const url = new URL(text);
  return `${url.protocol}//${url.host}`;
}

/** Runs the ping, turning every failure into a sentence that names what failed and no secret. */
async function ping(endpoint: Endpoint, timeoutMs: number): Promise<EndpointTest> {
  const started = performance.now();
  let client: RegistryClient | undefined;
  try {
    client = new RegistryClient(endpoint, { timeoutMs });
    const result = await client.ping();
    const ok = result.authenticated;
    const view: EndpointTest = { ok, auth: result.auth, realm: result.realm ?? null, authenticated: result.authenticated, elapsedMs: Math.round(result.elapsedMs) };
    if (!ok) {
      view.error = endpoint.username
        ? `credentials refused: ${endpoint.url} did not accept the username and password of endpoint "${endpoint.name}"`
        : `authentication required: ${endpoint.url} needs a username and password`;
    }
    return view;
  } catch (err) {
    return { ok: false, auth: null, realm: null, authenticated: false, elapsedMs: Math.round(performance.now() - started), error: scrub(failure(err, endpoint, timeoutMs), endpoint) };
  } finally {
    client?.close();
  }
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|HOSTNAME_MISMATCH)/;

/** The error code in `err`'s cause chain that says TLS failed (`TLS` when only a message says so), if any. */
function tlsCode(err: unknown): string | undefined {
  const chain: Error[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 6; e = e.cause, depth++) chain.push(e);
  for (const e of chain) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TLS_CODES.test(code)) return code;
  }
  return chain.some((e) => /certificate|ssl routines|\btls\b/i.test(e.message)) ? 'TLS' : undefined;
}

function failure(err: unknown, endpoint: Endpoint, timeoutMs: number): string {
  const said = err instanceof Error ? err.message : 'unknown error';
  if (!(err instanceof RemoteError && err.kind === 'status')) {
    const tls = tlsCode(err);
    if (tls) return `TLS: ${endpoint.url} failed the TLS handshake or certificate check (${tls}); give caFile (the CA that signs its certificate), or insecure for a test setup`;
  }
  if (!(err instanceof RemoteError)) return `unreachable: ${said}`;
  switch (err.kind) {
    case 'unreachable':
      return `unreachable: ${said}`;
    case 'timeout':
      return `timeout: ${endpoint.url} did not answer within ${Math.round(timeoutMs / 1000)}s`;
    case 'status':
      if (err.status === 401 || err.status === 403) return `credentials refused: ${endpoint.url} answered ${err.status} to the username and password given`;
      if (err.status === 404) return `not a registry: ${endpoint.url} answered 404 to GET /v2/ (is the URL the registry's, without a path?)`;
      return `registry error: ${said}`;
    case 'protocol':
      return `not a registry: ${said}`;
  }
}

/** Belt and braces: a message built from a remote answer never carries the password back. */
function scrub(message: string, endpoint: Endpoint): string {
  let text = message;
  if (endpoint.password) {
    for (const secret of [endpoint.password, Buffer.from(`${endpoint.username ?? ''}:${endpoint.password}`).toString('base64'), encodeURIComponent(endpoint.password)]) text = text.split(secret).join('***');
  }
  return text.slice(0, 1000);
}
