// Credentials for requests to another registry, as the Docker token specification has clients do
// it: ask without credentials (or with a token already held for the scope), answer a 401's
// challenge with Basic or with a Bearer token from the challenge's realm, and keep tokens per scope
// set until shortly before they expire.
import type { IncomingMessage } from 'node:http';
import { ChallengeError, chooseChallenge, parseChallenges } from './challenge.ts';
import type { Transport } from './http.ts';
import { RemoteError, type Endpoint } from './types.ts';

/** What a request carries, and how it came by it (decides what a 401 to it means). */
export interface Attempt {
  authorization?: string;
  /**
   * `none`: nothing sent. `basic`: the password. `held`: a token this request did not just fetch
   * (cached, or fetched up front from a known realm): a 401 may mean it went stale or needs more
   * scope. `fresh`: a token fetched in answer to this request's own challenge.
   */
  kind: 'none' | 'basic' | 'held' | 'fresh';
  /** The scheme the registry asked for, once known. */
  scheme?: 'basic' | 'bearer';
  realm?: string;
  /** The token cache entry behind a `held` token. */
  key?: string;
}

interface Token {
  value: string;
  expiresAt: number;
}

/** Tokens kept per client; beyond this, expired and then oldest entries go. */
const MAX_TOKENS = 512;
const TOKEN_BODY_LIMIT = 64 * 1024;
/** Lifetime assumed when the token service does not say (the token specification's default). */
const DEFAULT_EXPIRY_S = 60;
const MAX_EXPIRY_S = 24 * 3600;

/** The credential side of a RegistryClient. */
export class Authenticator {
  readonly #endpoint: Endpoint;
  readonly #transport: Transport;
  /** Set once the registry asked for Basic: later requests send it up front. */
  #basic = false;
  /** The registry's token service, once a Bearer challenge named it: later tokens are fetched up front. */
  #bearer: { realm: URL; service?: string } | undefined;
  readonly #tokens = new Map<string, Token>();
  readonly #inflight = new Map<string, Promise<Token>>();

  constructor(endpoint: Endpoint, transport: Transport) {
    this.#endpoint = endpoint;
    this.#transport = transport;
  }

  /** Whether the endpoint has a username and password to offer. */
  get hasCredentials(): boolean {
    return this.#endpoint.username !== undefined && this.#endpoint.password !== undefined;
  }

  /** Replaces every secret this client knows in `text` (for upstream text quoted in errors). */
  redact(text: string): string {
    let out = text;
    const secrets = [this.#endpoint.password, ...[...this.#tokens.values()].map((t) => t.value)];
    for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
    return out;
  }

  /**
   * What to send first for `scopes`: a live token held for exactly these scopes; else, when the
   * token service is known, a token fetched now (saving the 401 round trip); Basic when the
   * registry asked for it before; otherwise nothing.
   */
  async initial(scopes: readonly string[], op: string): Promise<Attempt> {
    if (this.#bearer) {
      const key = tokenKey(this.#bearer, scopes);
      const realm = this.#bearer.realm.href;
      const held = this.#live(key) ?? (await this.#fetch(this.#bearer, scopes, key, op));
      return { authorization: `Bearer ${held.value}`, kind: 'held', scheme: 'bearer', realm, key };
    }
    if (this.#basic && this.hasCredentials) return { authorization: this.#basicHeader(), kind: 'basic', scheme: 'basic' };
    return { kind: 'none' };
  }

  /**
   * Reads the challenge of a 401 drawn by `attempt`: the scheme asked for and, in `next`, what to
   * send now — undefined when nothing is left to try (credentials refused, or none to offer; the
   * caller then reports the 401). Throws RemoteError('protocol') for a challenge that cannot be
   * used, and the token service's RemoteError when it refuses or fails.
   */
  async after401(res: IncomingMessage, attempt: Attempt, scopes: readonly string[], op: string): Promise<{ scheme: 'basic' | 'bearer'; realm?: string; next?: Attempt }> {
    let request;
    try {
      request = chooseChallenge(parseChallenges(res.headersDistinct['www-authenticate'] ?? []));
    } catch (error) {
      if (!(error instanceof ChallengeError)) throw error;
      throw this.#transport.protocolError(op, `unusable authentication challenge: ${error.message}`);
    }
    if (request.scheme === 'basic') {
      if (!this.hasCredentials || attempt.kind === 'basic') return { scheme: 'basic' };
      this.#basic = true;
      return { scheme: 'basic', next: { authorization: this.#basicHeader(), kind: 'basic', scheme: 'basic' } };
    }
    const realm = request.realm.href;
    if (attempt.kind === 'fresh') return { scheme: 'bearer', realm };
    const service = { realm: request.realm, ...(request.service !== undefined ? { service: request.service } : {}) };
    this.#bearer = service;
    const key = tokenKey(service, scopes);
    const stale = attempt.kind === 'held' ? attempt.authorization : undefined;
    const cached = this.#tokens.get(key);
    if (stale && cached && `Bearer ${cached.value}` === stale) this.#tokens.delete(key);
    // Another request may have fetched this token meanwhile; one it just fetched is as good as ours.
    const live = this.#live(key);
    const token = live && `Bearer ${live.value}` !== stale ? live : await this.#fetch(service, union(scopes, request.scopes), key, op);
    return { scheme: 'bearer', realm, next: { authorization: `Bearer ${token.value}`, kind: 'fresh', scheme: 'bearer', realm, key } };
  }

  #live(key: string): Token | undefined {
    const token = this.#tokens.get(key);
    if (token && token.expiresAt > Date.now()) return token;
    if (token) this.#tokens.delete(key);
    return undefined;
  }

  #basicHeader(): string {
    return `Basic ${Buffer.from(`${this.#endpoint.username}:${this.#endpoint.password}`).toString('base64')}`;
  }

  /** Fetches a token and keeps it, sharing one request among concurrent callers for the same key. */
  #fetch(service: { realm: URL; service?: string }, scopes: readonly string[], key: string, op: string): Promise<Token> {
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const fetching = this.#request(service, scopes, op)
      .then((token) => {
        this.#remember(key, token);
        return token;
      })
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, fetching);
    return fetching;
  }

  async #request(service: { realm: URL; service?: string }, scopes: readonly string[], op: string): Promise<Token> {
    const url = new URL(service.realm);
    if (service.service !== undefined) url.searchParams.append('service', service.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const what = `token for ${op} from ${service.realm.host}`;
    // The realm comes from whoever answered the challenge. Sending the password to it is safe only
    // where it cannot be read on the way: over TLS, or to the endpoint's own origin (which gets the
    // same credentials as Basic anyway). Elsewhere the token is asked for anonymously.
    const mayAuthenticate = this.hasCredentials && (url.protocol === 'https:' || url.origin === this.#transport.origin);
    const res = await this.#transport.send({
      method: 'GET',
      url,
      op: what,
      headers: { Accept: 'application/json' },
      ...(mayAuthenticate ? { authorization: this.#basicHeader(), authorizationOrigin: url.origin } : {}),
      idempotent: true,
    });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw await this.#transport.statusError(res, what, status === 401 ? 'the token service refused the credentials' : 'the token service failed');
    const body = await this.#transport.readBody(res, TOKEN_BODY_LIMIT, what);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw this.#transport.protocolError(what, 'the token response is not JSON');
    }
    const value = typeof parsed?.token === 'string' && parsed.token !== '' ? parsed.token : parsed?.access_token;
    // Printable ASCII without spaces: anything else could not be sent back in a header.
    if (typeof value !== 'string' || !/^[\x21-\x7e]{1,16384}$/.test(value)) throw this.#transport.protocolError(what, 'the token response has no usable token');
    const declared = parsed.expires_in;
    const seconds = typeof declared === 'number' && Number.isFinite(declared) && declared > 0 ? Math.min(declared, MAX_EXPIRY_S) : DEFAULT_EXPIRY_S;
    // Kept until shortly before it lapses (measured from receipt: the clocks may disagree), so a
    // token is never sent in its last seconds.
    return { value, expiresAt: Date.now() + seconds * 1000 - Math.min(10_000, seconds * 100) };
  }

  #remember(key: string, token: Token): void {
    this.#tokens.delete(key);
    if (this.#tokens.size >= MAX_TOKENS) {
      const now = Date.now();
      for (const [k, t] of this.#tokens) if (t.expiresAt <= now) this.#tokens.delete(k);
      while (this.#tokens.size >= MAX_TOKENS) this.#tokens.delete(this.#tokens.keys().next().value!);
    }
    this.#tokens.set(key, token);
  }
}

function tokenKey(service: { realm: URL; service?: string }, scopes: readonly string[]): string {
  return JSON.stringify([service.realm.href, service.service ?? null, [...new Set(scopes)].sort()]);
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}
