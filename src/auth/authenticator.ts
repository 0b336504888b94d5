import { createHash, randomBytes } from 'node:crypto';
import type { UserStore } from '../metadata/users.ts';
import type { Identity } from './identity.ts';
import { verifyPassword } from './passwords.ts';

interface CachedLogin {
  generation: number;
  expires: number;
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

/**
 * Checks username/password credentials. A successful check is remembered for a minute under a
 * salted hash of the credentials (never the password itself), so clients that send Basic credentials
 * on every token request do not pay for argon2 each time; a password change (which bumps the user's
 * credential generation, even from another process) invalidates it at once.
 */
export class PasswordAuthenticator {
  private readonly cache = new Map<string, CachedLogin>();
  private readonly salt = randomBytes(16);

  constructor(private readonly users: UserStore) {}

  /** The identity for valid credentials, or undefined. */
  async authenticate(username: string, password: string): Promise<Identity | undefined> {
    const user = await this.users.find(username);
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

  /** The current credential generation of a user, or undefined if the user is gone. */
  async generation(username: string): Promise<number | undefined> {
    return (await this.users.find(username))?.credential_generation;
  }
}
