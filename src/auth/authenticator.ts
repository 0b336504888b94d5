import { createHash, randomBytes } from 'node:crypto';
import { RegistryError } from '../domain/errors.ts';
import type { Metadata } from '../metadata/index.ts';
import { robotCredential } from './credentials.ts';
import { ROBOT_PREFIX, type Identity } from './identity.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { TOKEN_PREFIX, hashSecret } from './secrets.ts';
import { LoginThrottle, type ThrottleOptions } from './throttle.ts';

interface CachedLogin {
  generation: number;
  expires: number;
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

/** Where a login attempt came from, for throttling and the audit log. */
export interface LoginContext {
  client: string;
  /** What the login is for, e.g. `token`, `registry`, `api`. */
  via: string;
}

/** Which secrets a check accepts: any (password, personal access token, robot secret) or the password alone. */
export type SecretKind = 'any' | 'password';

/**
 * Checks `username` + secret credentials, whatever the secret is: a user's password, a user's
 * personal access token (`berth_pat_…`), or a robot's secret (`robot$…` names). Guessing is refused
 * by the LoginThrottle (429 TOOMANYREQUESTS with Retry-After, never a pause), and every failure is
 * written to the audit log. The identity returned carries the binding of the credential that proved
 * it (credentials.ts), which every token and session made from it names.
 *
 * A successful password check is remembered for a minute under a salted hash of the credentials
 * (never the password itself), so clients that send Basic credentials on every request do not pay
 * for argon2 each time; a password change (which bumps the user's credential generation, even from
 * another process) invalidates it at once. An unknown user name costs an argon2 check all the same,
 * so the answer's timing does not tell which names exist.
 */
export class Authenticator {
  private readonly cache = new Map<string, CachedLogin>();
  private readonly salt = randomBytes(16);
  private readonly throttle: LoginThrottle;
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly meta: Metadata, throttle: Partial<ThrottleOptions> = {}) {
    this.throttle = new LoginThrottle(throttle);
  }

  /**
   * The identity for valid credentials, or undefined. Throws TOOMANYREQUESTS (with `Retry-After`)
   * when the attempt is refused by the throttle; the secret is then not checked at all.
   */
  async authenticate(username: string, secret: string, context?: LoginContext, accept: SecretKind = 'any'): Promise<Identity | undefined> {
    const client = context?.client ?? 'unknown';
    const ticket = await this.throttle.admit(client, username);
    if ('retryAfterMs' in ticket) {
      const seconds = Math.max(1, Math.ceil(ticket.retryAfterMs / 1000));
      throw new RegistryError('TOOMANYREQUESTS', `too many failed logins: try again in ${seconds} s`, { retryAfterSeconds: seconds }, { headers: { 'Retry-After': String(seconds) } });
    }
    let identity: Identity | undefined;
    try {
      identity = accept === 'password' ? await this.password(username, secret) : await this.check(username, secret);
    } catch (err) {
      ticket.done(undefined);
      throw err;
    }
    ticket.done(identity !== undefined);
    if (identity) {
      // Credentials on /v2 and the API come with every request: only token requests and API
      // session logins are login events (failures are always recorded).
      if (context && (context.via === 'token' || context.via === 'session')) {
        await this.meta.audit.record({ actor: identity.kind === 'anonymous' ? 'anonymous' : identity.name, action: 'login', resourceType: 'user', resource: username, client, success: true, detail: { via: context.via } });
      }
      return identity;
    }
    await this.meta.audit.record({
      actor: username.slice(0, 255),
      action: 'login.failed',
      resourceType: 'user',
      resource: username.slice(0, 255),
      client,
      success: false,
      detail: { via: context?.via, failuresInWindow: this.throttle.failures(client, username) },
    });
    return undefined;
  }

  private async check(username: string, secret: string): Promise<Identity | undefined> {
    if (username.startsWith(ROBOT_PREFIX)) return this.robot(username, secret);
    if (secret.startsWith(TOKEN_PREFIX)) return this.personalToken(username, secret);
    return this.password(username, secret);
  }

  private async robot(name: string, secret: string): Promise<Identity | undefined> {
    const robot = await this.meta.robots.find(name);
    if (!robot || robot.disabled === 1) return undefined;
    if (robot.expires_at !== null && Number(robot.expires_at) <= Date.now()) return undefined;
    if (robot.secret_hash !== hashSecret(secret)) return undefined;
    return { kind: 'robot', name: robot.name, id: robot.id, binding: { cred: robotCredential(robot.secret_hash) } };
  }

  private async personalToken(username: string, token: string): Promise<Identity | undefined> {
    const row = await this.meta.tokens.findByHash(hashSecret(token));
    if (!row || row.username !== username || row.revoked === 1) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) return undefined;
    void this.meta.tokens.touch(row.id).catch(() => undefined);
    return { kind: 'user', name: row.username, isAdmin: row.is_admin === 1, binding: { uid: row.uid, cred: `pat:${row.id}` } };
  }

  private async password(username: string, password: string): Promise<Identity | undefined> {
    const user = await this.meta.users.find(username);
    if (!user) {
      // The same argon2 work as for a real user, so timing does not reveal which names exist.
      await verifyPassword(await this.dummy(), password);
      return undefined;
    }
    const identity: Identity = { kind: 'user', name: user.username, isAdmin: user.is_admin === 1, binding: { uid: user.uid, cred: `pw:${user.credential_generation}` } };
    const key = createHash('sha256').update(this.salt).update(username).update('\0').update(password).digest('base64');
    const cached = this.cache.get(key);
    const now = Date.now();
    if (cached && cached.expires > now && cached.generation === user.credential_generation) return identity;
    if (!(await verifyPassword(user.password_hash, password))) return undefined;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, { generation: user.credential_generation, expires: now + CACHE_MS });
    return identity;
  }

  /** An argon2 hash of a random password, made once per process. */
  private dummy(): Promise<string> {
    return (this.dummyHash ??= hashPassword(randomBytes(24).toString('base64url')));
  }
}
