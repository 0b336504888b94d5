import { createHash, randomBytes } from 'node:crypto';

/** Personal access tokens start with this, so Berth (and secret scanners) can tell them from passwords. */
export const TOKEN_PREFIX = 'berth_pat_';

/** A new random secret: 32 bytes, URL-safe. */
export function newSecret(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/**
 * SHA-256 of a random secret (robot secrets, personal tokens, session ids). These carry 256 bits
 * of entropy, so a fast hash suffices; passwords, chosen by people, use argon2 (passwords.ts).
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
