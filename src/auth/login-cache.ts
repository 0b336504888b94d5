// Remembers successful password checks for a short while, so clients that send credentials with
// every request (a busy CI: a token request per pull) cost neither an argon2 check nor a directory
// bind each time. Keyed by a salted hash of name and password: the password itself is never kept,
// and a wrong password is simply a different key (a miss, never a cached refusal).
import { createHash, randomBytes } from 'node:crypto';

interface Entry<T> {
  value: T;
  /** The name as typed, lower-cased, for forget(). */
  name: string;
  expires: number;
}

/**
 * A bounded, expiring map from (user name, password) to what a successful check of them gave:
 * local passwords (the Authenticator: the credential generation checked) and directory sign-ins
 * (the LDAP directory: the person).
 */
export class LoginCache<T> {
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #nameOf: ((value: T) => string) | undefined;
  readonly #salt = randomBytes(32);
  readonly #entries = new Map<string, Entry<T>>();

  /**
   * `ttlSeconds` 0 turns the cache off; at most `max` entries are kept (oldest dropped first).
   * `nameOf`: the name a value stands for besides the one typed, also matched by forget().
   */
  constructor(ttlSeconds: number, options: { max?: number; nameOf?: (value: T) => string } = {}) {
    this.#ttlMs = ttlSeconds * 1000;
    this.#max = options.max ?? 10_000;
    this.#nameOf = options.nameOf;
  }

  /** The value remembered for these credentials, or undefined (unknown, expired, or the cache is off). */
  get(username: string, password: string): T | undefined {
    if (this.#ttlMs <= 0) return undefined;
    const key = this.#key(username, password);
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return structuredClone(entry.value);
  }

  /** Remembers a successful check for the TTL. */
  set(username: string, password: string, value: T): void {
    if (this.#ttlMs <= 0) return;
    const key = this.#key(username, password);
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) this.#evict();
    this.#entries.set(key, { value: structuredClone(value), name: username.toLowerCase(), expires: Date.now() + this.#ttlMs });
  }

  /** Drops every entry of this user (by the name typed or the value's name, case-insensitively). */
  forget(username: string): void {
    const name = username.toLowerCase();
    for (const [key, entry] of this.#entries) {
      if (entry.name === name || this.#nameOf?.(entry.value).toLowerCase() === name) this.#entries.delete(key);
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#entries.clear();
  }

  /** Entries held (expired ones included until touched); for tests. */
  get size(): number {
    return this.#entries.size;
  }

  #evict(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) if (entry.expires <= now) this.#entries.delete(key);
    // Still full: Map keeps insertion order, so the first keys are the oldest.
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < this.#max) break;
      this.#entries.delete(key);
    }
  }

  #key(username: string, password: string): string {
    // Lengths first, so ("ab","c") and ("a","bc") cannot collide.
    const u = Buffer.from(username, 'utf8');
    const p = Buffer.from(password, 'utf8');
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(u.length, 0);
    lengths.writeUInt32BE(p.length, 4);
    return createHash('sha256').update(this.#salt).update(lengths).update(u).update(p).digest('base64');
  }
}
