import { hash, verify } from '@node-rs/argon2';

// OWASP's argon2id minimum (19 MiB, 2 passes): strong, yet a login costs milliseconds, not seconds.
const PARAMS = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

/** Hashes a password with argon2id (salted, PHC string). */
export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

/** Checks a password against a stored hash; false for a mismatch or an unreadable hash. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
