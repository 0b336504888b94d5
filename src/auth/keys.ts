import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Key id: a short fingerprint of the public key, carried in the token header. */
  kid: string;
}

/**
 * Loads the token signing key from `<dataDir>/keys/token-signing.pem`, creating an Ed25519 key there
 * (mode 0600) on first start. Creation uses an exclusive open, so two processes starting together
 * end up with the same key.
 */
export function loadOrCreateSigningKey(dataDir: string): SigningKey {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'token-signing.pem');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const { privateKey } = generateKeyPairSync('ed25519');
    try {
      writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    } catch (writeErr) {
      if ((writeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErr;
    }
    pem = readFileSync(file, 'utf8');
  }
  const privateKey = createPrivateKey(pem);
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const kid = Buffer.from(der).toString('base64url').slice(-16);
  return { privateKey, publicKey, kid };
}

/**
 * A secret derived from the signing key for another purpose (`label`), so replicas sharing the
 * signing key share it too, without a second key file to distribute.
 */
export function deriveSecret(key: SigningKey, label: string): Buffer {
  const material = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), `berth ${label}`, 32));
}
