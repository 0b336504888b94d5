import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Metadata } from '../metadata/index.ts';
import { ROBOT_PREFIX, type Identity } from './identity.ts';
import { verifyPassword } from './passwords.ts';
import { TOKEN_PREFIX, hashSecret } from './secrets.ts';
import { LoginThrottle } from './throttle.ts';

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

/**
 * Checks `username` + secret credentials, whatever the secret is: a user's password, a user's
 * personal access token (`berth_pat_…`), or a robot's secret (`robot$…` names). Failed attempts
 * from one address are slowed down and every failure is written to the audit log.
 *
 * A successful password check is remembered for a minute under a salted hash of the credentials
 * (never the password itself), so clients that send Basic credentials on every request do not pay
 * for argon2 each time; a password change (which bumps the user's credential generation, even from
 * another process) invalidates it at once.
 */
export class Authenticator {
  private readonly cache = new Map<string, CachedLogin>();
  private readonly salt = randomBytes(16);
  private readonly throttle = new LoginThrottle();

  constructor(private readonly meta: Metadata) {}

  /** The identity for valid credentials, or undefined. */
  async authenticate(username: string, secret: string, context?: LoginContext): Promise<Identity | undefined> {
    const client = context?.client ?? 'unknown';
    const delay = this.throttle.delayFor(client);
    if (delay > 0) await sleep(delay);
    const identity = await this.check(username, secret);
    if (identity) {
      this.throttle.succeeded(client);
      // Credentials on /v2 and the API come with every request: only token requests and API
      // session logins are login events (failures are always recorded).
      if (context && (context.via === 'token' || context.via === 'session')) {
        await this.meta.audit.record({ actor: identity.kind === 'anonymous' ? 'anonymous' : identity.name, action: 'login', resourceType: 'user', resource: username, client, success: true, detail: { via: context.via } });
      }
      return identity;
    }
    const failures = this.throttle.failed(client);
    await this.meta.audit.record({
      actor: username.slice(0, 255),
      action: 'login.failed',
      resourceType: 'user',
      resource: username.slice(0, 255),
      client,
      success: false,
      detail: { via: context?.via, failuresInWindow: failures },
    });
    return undefined;
  }

  /** The current credential generation of a user, or undefined if the user is gone. */
  async generation(username: string): Promise<number | undefined> {
    return (await this.meta.users.find(username))?.credential_generation;
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
    return { kind: 'robot', name: robot.name, id: robot.id };
  }

  private async personalToken(username: string, token: string): Promise<Identity | undefined> {
    const row = await this.meta.tokens.findByHash(hashSecret(token));
    if (!row || row.username !== username || row.revoked === 1) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) return undefined;
    void this.meta.tokens.touch(row.id).catch(() => undefined);
    return { kind: 'user', name: row.username, isAdmin: row.is_admin === 1 };
  }

  private async password(username: string, password: string): Promise<Identity | undefined> {
    const user = await this.meta.users.find(username);
    if (!user) return undefined;
    const key = createHash('sha256').update(this.salt).update(username).update('\0').update(password).digest('base64');
    const cached = this.cache.get(key);
    const now = Date.now();
    if (cached && cached.expires > now && cached.generation === user.credential_generation) {
      return { kind: 'user', name: user.username, isAdmin: user.is_admin === 1 };
    }
    if (!(await verifyPassword(user.password_hash, password))) return undefined;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, { generation: user.credential_generation, expires: now + CACHE_MS });
    return { kind: 'user', name: user.username, isAdmin: user.is_admin === 1 };
  }
}
