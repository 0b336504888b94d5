import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Thrown when a sealed value cannot be opened: another key sealed it, or it was altered. */
export class SealError extends Error {}

const VERSION = 'v1';

/**
 * Secrets at rest (registry credentials, webhook secrets): AES-256-GCM under a 32-byte key from
 * `secrets.key`, or derived from the signing key. Each value is bound to its purpose (`context`,
 * e.g. `registry:hub`) as associated data, so a sealed value copied into another row does not open.
 */
export class Sealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the secrets key must be 32 bytes');
  }

  /** `v1.<iv>.<tag>.<ciphertext>` (base64url), a fresh random IV each time. */
  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  /** The plain text; SealError when the value is malformed, sealed under another key or context, or altered. */
  open(sealed: string, context: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || body === undefined) throw new SealError('not a sealed value of this version');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new SealError('the sealed value does not open with this key (was secrets.key or the signing key changed?)');
    }
  }
}

/** The 32-byte key of `secrets.key`: 64 hex digits or base64 of 32 bytes; undefined when malformed. */
export function parseSecretsKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  const bytes = Buffer.from(trimmed, 'base64');
  return bytes.length === 32 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? bytes : undefined;
}
