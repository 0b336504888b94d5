import { createPrivateKey, createPublicKey, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/overrides.ts';
import type { Config } from '../config/schema.ts';
import type { Metadata } from '../metadata/index.ts';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Key id: a short fingerprint of the public key, carried in the token header. */
  kid: string;
}

/** The JWS algorithms of the keys Berth signs with: Ed25519, ECDSA P-256 with SHA-256, RSA PKCS #1 v1.5 with SHA-256. */
export type SigningAlgorithm = 'EdDSA' | 'ES256' | 'RS256';

/** Name of the token signing key in the database (SigningKeyStore). */
/** The name of the token signing key among the keys kept in the database. */
export const TOKEN_KEY = 'token';
const MIN_RSA_BITS = 2048;

/** The algorithm tokens signed by `key` use; undefined for a key type Berth does not sign with. */
export function signingAlgorithm(key: KeyObject): SigningAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA';
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
    case 'rsa':
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= MIN_RSA_BITS ? 'RS256' : undefined;
    default:
      return undefined;
  }
}

/**
 * The signing key of a PEM private key (PKCS #8, SEC1 or PKCS #1; unencrypted). Throws an Error
 * saying what is wrong — never quoting the key — when it is not one or not of a supported type.
 */
export function signingKeyFromPem(pem: string | Buffer): SigningKey {
  const text = pem.toString();
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) throw new Error('the key is encrypted; give it unencrypted (and readable by Berth only)');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`not a PEM private key${code ? ` (${code})` : ''}`);
  }
  if (!signingAlgorithm(privateKey)) {
    const details = privateKey.asymmetricKeyDetails;
    const what = privateKey.asymmetricKeyType === 'rsa' ? `an RSA key of ${details?.modulusLength ?? '?'} bits` : `a ${privateKey.asymmetricKeyType ?? 'unknown'}${details?.namedCurve ? ` ${details.namedCurve}` : ''} key`;
    throw new Error(`${what} cannot sign tokens; use Ed25519, ECDSA P-256 or RSA of at least ${MIN_RSA_BITS} bits`);
  }
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const kid = Buffer.from(der).toString('base64url').slice(-16);
  return { privateKey, publicKey, kid };
}

/** The key of the PEM file `auth.signingKey` names; a ConfigError naming the setting otherwise. */
export function readSigningKeyFile(file: string): SigningKey {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new ConfigError(`auth.signingKey ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a PEM private key`);
  }
  try {
    return signingKeyFromPem(pem);
  } catch (err) {
    throw new ConfigError(`auth.signingKey ${file}: ${(err as Error).message}`);
  }
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
    try {
      writeFileSync(file, newPem(), { mode: 0o600, flag: 'wx' });
    } catch (writeErr) {
      if ((writeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw writeErr;
    }
    pem = readFileSync(file, 'utf8');
  }
  return signingKeyFromPem(pem);
}

/**
 * The key every replica signs and verifies tokens with:
 * - `auth.signingKey` when set (a ConfigError naming it when unreadable or unusable);
 * - on SQLite, the key file under `dataDir` ({@link loadOrCreateSigningKey});
 * - on PostgreSQL, the key kept in the database: the first replica to start stores a new Ed25519
 *   key, and every replica — also those starting at the same moment — uses the one stored first,
 *   never one of its own. That key is a secret at rest in the database: whoever can read Berth's
 *   database (its owner, a superuser, its backups) can sign tokens, as whoever can read `dataDir`
 *   can on SQLite. Deployments that want the key out of the database give `auth.signingKey`.
 */
export async function loadSigningKey(config: Pick<Config, 'auth' | 'dataDir'>, meta: Pick<Metadata, 'dialect' | 'signingKeys'>): Promise<SigningKey> {
  if (config.auth.signingKey) return readSigningKeyFile(config.auth.signingKey);
  if (meta.dialect === 'sqlite') return loadOrCreateSigningKey(config.dataDir);
  const pem = await meta.signingKeys.ensure(TOKEN_KEY, newPem);
  try {
    return signingKeyFromPem(pem);
  } catch (err) {
    throw new Error(`the token signing key stored in the database (table signing_keys) cannot be used: ${(err as Error).message}`);
  }
}

/** A new Ed25519 private key, PEM (PKCS #8). */
function newPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/**
 * A secret derived from the signing key for another purpose (`label`), so replicas sharing the
 * signing key share it too, without a second key file to distribute.
 */
export function deriveSecret(key: SigningKey, label: string): Buffer {
  const material = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), `berth ${label}`, 32));
}
