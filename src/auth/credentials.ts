import { createHash } from 'node:crypto';
import type { Metadata } from '../metadata/index.ts';
import type { UserRow } from '../metadata/schema.ts';

/**
 * What a token or session was made from. Every refresh token, access token and API session names
 * the principal's never-reused identity and the credential that proved it; it works only while
 * that credential does:
 * - `pw:<generation>`: a local user's password, until it changes (or an administrator resets it);
 * - `ldap:<generation>`: a directory user's password as the directory checked it, until the user's
 *   generation moves (the directory stopped listing them: Onboarding.revoke);
 * - `sso:<generation>`: a sign-in through the OpenID provider (portal sessions), likewise;
 * - `pat:<id>`: a personal access token, until it is revoked or expires;
 * - `secret:<fingerprint>`: a robot's secret, until it is refreshed, or the robot is disabled,
 *   expires or is deleted.
 */
export interface Binding {
  /** The user's `uid` (never reused, unlike names and SQLite row ids); absent for robots. */
  uid?: string;
  cred: string;
}

/** A robot's binding: a fingerprint of its secret's hash, so a refreshed secret or a re-created robot differs. */
export function robotCredential(secretHash: string): string {
  return `secret:${createHash('sha256').update(secretHash).digest('hex').slice(0, 16)}`;
}

/** The personal access token id a binding names, if it names one. */
export function personalTokenId(binding: Binding | undefined): number | undefined {
  const m = binding && /^pat:(\d+)$/.exec(binding.cred);
  return m ? Number(m[1]) : undefined;
}

/** Which account source each generation-bound credential proves (a binding of one never proves an account of another). */
const GENERATION_CREDENTIALS: Readonly<Record<string, string>> = { pw: 'local', ldap: 'ldap', sso: 'oidc' };

/** Whether a binding was made by proving the account's own sign-in (password, directory password, OpenID sign-in), not a token. */
export function provesSignIn(cred: string): boolean {
  const m = /^([a-z]+):\d+$/.exec(cred);
  return m !== null && Object.hasOwn(GENERATION_CREDENTIALS, m[1]!);
}

export interface CredentialCheckOptions {
  /** How long a verdict is trusted without asking the database again (changes heard through the change feed apply at once). */
  cacheMs: number;
  now: () => number;
}

interface Verdict {
  valid: boolean;
  /** ms: until when the verdict may be reused. */
  until: number;
}

/**
 * Answers "does the credential behind this token or session still work?" on every use: `/v2`
 * requests with an access token, refresh-token grants and API sessions. For access tokens verdicts
 * are cached per principal for `cacheMs` (a few seconds), so the check costs a map lookup on the hot
 * path. A change announced with `forget` applies to the very next request on this replica and, a
 * notification's trip later, on every other one (the change feed's `principal` topic); while the
 * feed does not hear other replicas, nothing is answered from the cache. A change made by a process
 * that does not announce it (the CLI in data-directory mode) applies within `cacheMs`. Refresh
 * grants and sessions always ask the database.
 */
export class CredentialCheck {
  private readonly verdicts = new Map<string, Map<string, Verdict>>();
  private readonly options: CredentialCheckOptions;

  /**
   * Asked, for uncached checks (refresh grants, sessions), whether a directory user is still listed
   * by the directory (Authenticator.recheck); unset: not asked.
   */
  recheck?: (user: UserRow) => Promise<boolean>;

  constructor(private readonly meta: Metadata, options: Partial<CredentialCheckOptions> = {}) {
    this.options = { cacheMs: 5_000, now: () => Date.now(), ...options };
    meta.changes.subscribe('principal', (name) => (name === undefined ? this.verdicts.clear() : this.verdicts.delete(name)));
  }

  /**
   * Whether `binding` still proves the user or robot `name`; false for a missing binding. `cached`
   * false asks the database whatever was cached (refresh grants and sessions: rare, or already a
   * database lookup each, so they see a change made by another process at once).
   */
  async valid(kind: 'user' | 'robot', name: string, binding: Binding | undefined, { cached = true } = {}): Promise<boolean> {
    if (!binding || typeof binding.cred !== 'string') return false;
    const key = `${kind}\0${binding.uid ?? ''}\0${binding.cred}`;
    const now = this.options.now();
    const hit = this.verdicts.get(name)?.get(key);
    if (cached && hit && hit.until > now && this.meta.changes.live) return hit.valid;
    const since = this.meta.changes.version('principal');
    const verdict = kind === 'user' ? await this.user(name, binding, now, cached) : await this.robot(name, binding, now);
    // A change heard while the database was read may be newer than what it said.
    if (!this.meta.changes.unchangedSince('principal', since)) return verdict.valid;
    if (this.verdicts.size > 10_000) this.verdicts.clear();
    let forName = this.verdicts.get(name);
    if (!forName) this.verdicts.set(name, (forName = new Map()));
    forName.set(key, verdict);
    return verdict.valid;
  }

  /** When the credential behind `binding` expires (ms), if it does: tokens made from it must not outlive it. */
  async notAfter(binding: Binding): Promise<number | null> {
    const patId = personalTokenId(binding);
    if (patId === undefined) return null;
    const token = await this.meta.tokens.findById(patId);
    return token?.expires_at === null || token === undefined ? null : Number(token.expires_at);
  }

  /**
   * Drops what is cached about `name` (a user or robot just changed, the change committed) here at
   * once and on every other replica a notification's trip later.
   */
  forget(name: string): void {
    this.verdicts.delete(name);
    void this.meta.changes.publish('principal', name);
  }

  private async user(name: string, binding: Binding, now: number, cached: boolean): Promise<Verdict> {
    const until = now + this.options.cacheMs;
    const user = await this.meta.users.find(name);
    if (!user || !binding.uid || user.uid !== binding.uid) return { valid: false, until };
    if (!cached && this.recheck && !(await this.recheck(user))) return { valid: false, until };
    const generation = /^([a-z]+):(\d+)$/.exec(binding.cred);
    if (generation && Object.hasOwn(GENERATION_CREDENTIALS, generation[1]!)) {
      return { valid: GENERATION_CREDENTIALS[generation[1]!] === user.source && user.credential_generation === Number(generation[2]), until };
    }
    const patId = personalTokenId(binding);
    if (patId === undefined) return { valid: false, until };
    const token = await this.meta.tokens.findById(patId);
    if (!token || token.user_id !== user.id || token.revoked === 1) return { valid: false, until };
    if (token.expires_at === null) return { valid: true, until };
    const expires = Number(token.expires_at);
    return expires <= now ? { valid: false, until } : { valid: true, until: Math.min(until, expires) };
  }

  private async robot(name: string, binding: Binding, now: number): Promise<Verdict> {
    const until = now + this.options.cacheMs;
    const robot = await this.meta.robots.find(name);
    if (!robot || robot.disabled === 1 || robotCredential(robot.secret_hash) !== binding.cred) return { valid: false, until };
    if (robot.expires_at === null) return { valid: true, until };
    const expires = Number(robot.expires_at);
    return expires <= now ? { valid: false, until } : { valid: true, until: Math.min(until, expires) };
  }
}
