import { createHash, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import type { Access } from './scope.ts';
import type { Binding } from './credentials.ts';
import { signingAlgorithm, type SigningAlgorithm, type SigningKey } from './keys.ts';

export interface TokenSettings {
  issuer: string;
  /** The `service` of challenges; tokens carry it as their audience. */
  service: string;
  /** Access token lifetime, seconds. */
  ttl: number;
  /** Refresh token lifetime, seconds. */
  refreshTTL: number;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
}

/** What a valid access token says. */
export interface AccessClaims {
  subject: string | undefined;
  /** The credential the subject proved itself with (claims `uid`, `cred`); checked on every use. */
  binding: Binding | undefined;
  access: Access[];
  issuedAt: number;
  expiresAt: number;
}

/** Why a token was refused: the difference matters to the person reading the error (M9). */
export class TokenError extends Error {
  constructor(readonly reason: 'expired' | 'invalid', message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const CLOCK_TOLERANCE_S = 30;
/** Verified access tokens remembered at most, by default (a few hundred bytes each). */
const VERIFIED_MAX = 10_000;

/**
 * Issues and verifies the JWTs of the token service: access tokens and OAuth2 refresh tokens.
 *
 * Compact JWS with the signing key's algorithm — EdDSA (Ed25519, the key Berth generates), ES256
 * (P-256) or RS256 (RSA), see `signingAlgorithm` — signed and verified with node:crypto's
 * synchronous one-shot functions: about twice as fast as WebCrypto (which jose uses) and without a
 * thread-pool round trip per request. Ed25519 is deterministic, so its tokens are byte for byte
 * what jose's `SignJWT` produced for the same claims, and verification applies jose's `jwtVerify`
 * rules as they were configured here (issuer, audience, the key's algorithm only, `nbf`/`exp` with
 * 30 s tolerance, `iat` a number when present); test/unit/tokens.test.ts checks both against jose
 * itself. Every replica given the same key (auth.signingKey, or the key kept in the database)
 * accepts the tokens of every other.
 *
 * Clients reuse an access token for every request until it expires, so a verified access token is
 * remembered (under the SHA-256 of its text, never the text) until its `exp`: the signature and
 * claims cannot change for the same string, and only time can make it invalid, which every hit
 * re-checks. Refresh tokens are never remembered; they are rare. Whether the credential a token is
 * bound to still works is not this class's business: callers ask CredentialCheck on every use.
 */
export class TokenService {
  private readonly header: string;
  private readonly alg: SigningAlgorithm;
  private readonly verified = new Map<string, AccessClaims>();

  /** `verifiedMax`: how many verified access tokens to remember at most. Throws for a key of a type `signingAlgorithm` does not know. */
  constructor(private readonly key: SigningKey, private readonly settings: TokenSettings, private readonly verifiedMax = VERIFIED_MAX) {
    const alg = signingAlgorithm(key.privateKey);
    if (!alg) throw new Error(`a ${key.privateKey.asymmetricKeyType ?? 'unknown'} key cannot sign tokens`);
    this.alg = alg;
    this.header = base64url(JSON.stringify({ alg, typ: 'JWT', kid: key.kid }));
  }

  get service(): string {
    return this.settings.service;
  }

  /**
   * An access token for `subject` (undefined for anonymous) granting `access`, bound to the
   * credential that proved the subject (`binding`: claims `uid` and `cred`).
   */
  async issueAccess(subject: string | undefined, access: Access[], binding?: Binding): Promise<IssuedToken> {
    const issuedAt = new Date();
    const iat = Math.floor(issuedAt.getTime() / 1000);
    // Claim order as jose's builder wrote it: custom claims, then iss, aud, iat, nbf, exp, jti, sub.
    const claims: Record<string, unknown> = {
      access,
      ...bindingClaims(binding),
      iss: this.settings.issuer,
      aud: this.settings.service,
      iat,
      nbf: iat - CLOCK_TOLERANCE_S,
      exp: iat + this.settings.ttl,
      jti: randomUUID(),
    };
    if (subject !== undefined) claims.sub = subject;
    return { token: this.sign(claims), expiresIn: this.settings.ttl, issuedAt };
  }

  /** Verifies an access token; throws `TokenError` saying whether it expired or is invalid. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const id = createHash('sha256').update(token).digest('base64');
    const now = Math.floor(Date.now() / 1000);
    const hit = this.verified.get(id);
    if (hit) {
      if (hit.expiresAt > now - CLOCK_TOLERANCE_S) return hit;
      this.verified.delete(id);
      throw new TokenError('expired', 'token expired');
    }
    const payload = this.verify(token, now);
    if (payload.typ === 'refresh') throw new TokenError('invalid', 'a refresh token cannot be used as an access token');
    const access = Array.isArray(payload.access) ? (payload.access as Access[]) : [];
    const claims: AccessClaims = Object.freeze({ subject: payload.sub as string | undefined, binding: bindingOf(payload), access: Object.freeze(access) as Access[], issuedAt: (payload.iat as number | undefined) ?? 0, expiresAt: (payload.exp as number | undefined) ?? 0 });
    // A token without `exp` never expires (as jose allows); Berth never issues one, so it is not worth remembering.
    if (payload.exp !== undefined) this.remember(id, claims, now);
    return claims;
  }

  /**
   * A refresh token for `subject`, bound to the credential that proved it; it never outlives
   * `notAfter` (ms since the epoch: the expiry of the personal access token it came from).
   */
  async issueRefresh(subject: string, binding: Binding, notAfter?: number | null): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    let exp = iat + this.settings.refreshTTL;
    if (notAfter !== undefined && notAfter !== null) exp = Math.min(exp, Math.floor(notAfter / 1000));
    return this.sign({
      typ: 'refresh',
      ...bindingClaims(binding),
      iss: this.settings.issuer,
      aud: this.settings.service,
      sub: subject,
      iat,
      exp,
      jti: randomUUID(),
    });
  }

  /** Verifies a refresh token; returns its subject and the binding it names (whose validity the caller checks). */
  async verifyRefresh(token: string): Promise<{ subject: string; binding: Binding }> {
    const payload = this.verify(token, Math.floor(Date.now() / 1000));
    const binding = bindingOf(payload);
    if (payload.typ !== 'refresh' || typeof payload.sub !== 'string' || !binding) {
      throw new TokenError('invalid', 'not a refresh token');
    }
    return { subject: payload.sub, binding };
  }

  private sign(claims: Record<string, unknown>): string {
    const input = `${this.header}.${base64url(JSON.stringify(claims))}`;
    const data = Buffer.from(input, 'latin1');
    const signature = this.alg === 'EdDSA' ? sign(null, data, this.key.privateKey) : sign('sha256', data, { key: this.key.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }

  /** The claims of a token signed by this key and valid at `now` (seconds); `TokenError` otherwise. */
  private verify(token: string, now: number): Record<string, unknown> {
    const payload = verifyCompact(token, this.alg, this.key.publicKey);
    if (!payload) throw new TokenError('invalid', 'token invalid');
    return checkClaims(payload, this.settings.issuer, this.settings.service, now);
  }

  private remember(id: string, claims: AccessClaims, now: number): void {
    if (this.verified.size >= this.verifiedMax) {
      // Drop what has expired; if that frees nothing, the oldest entries (Maps keep insertion order).
      for (const [key, value] of this.verified) if (value.expiresAt <= now - CLOCK_TOLERANCE_S) this.verified.delete(key);
      for (const key of this.verified.keys()) {
        if (this.verified.size < this.verifiedMax) break;
        this.verified.delete(key);
      }
    }
    this.verified.set(id, claims);
  }
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;

function bindingClaims(binding: Binding | undefined): Record<string, string> {
  if (!binding) return {};
  return binding.uid === undefined ? { cred: binding.cred } : { uid: binding.uid, cred: binding.cred };
}

function bindingOf(payload: Record<string, unknown>): Binding | undefined {
  if (typeof payload.cred !== 'string') return undefined;
  return typeof payload.uid === 'string' ? { uid: payload.uid, cred: payload.cred } : { cred: payload.cred };
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** A plain JSON object, as jose requires of the header and the claims set. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]') return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function parseSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
    return isPlainObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The payload of a compact JWS whose header says `alg` and whose signature over `header.payload`
 * verifies with `publicKey` (ECDSA signatures as JWS encodes them: r and s, 32 bytes each);
 * undefined otherwise. Segments must be unpadded base64url, as every token Berth (or jose) issues
 * is; no `crit` extension is understood.
 */
function verifyCompact(token: string, alg: SigningAlgorithm, publicKey: KeyObject): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
  if (!SEGMENT.test(encodedHeader) || !SEGMENT.test(encodedPayload) || !SEGMENT.test(encodedSignature)) return undefined;
  const header = parseSegment(encodedHeader);
  if (!header || header.alg !== alg || header.crit !== undefined) return undefined;
  const signature = Buffer.from(encodedSignature, 'base64url');
  const data = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'latin1');
  let valid: boolean;
  try {
    valid = alg === 'EdDSA' ? verify(null, data, publicKey, signature) : verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return undefined;
  }
  return valid ? parseSegment(encodedPayload) : undefined;
}

/** jose's `jwtVerify` claim rules as Berth configures them (issuer, audience, 30 s clock tolerance). */
function checkClaims(claims: Record<string, unknown>, issuer: string, audience: string, now: number): Record<string, unknown> {
  const invalid = () => new TokenError('invalid', 'token invalid');
  if (!Object.hasOwn(claims, 'iss') || !Object.hasOwn(claims, 'aud')) throw invalid();
  if (claims.iss !== issuer) throw invalid();
  const aud = claims.aud;
  if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) throw invalid();
  for (const name of ['iat', 'nbf', 'exp']) {
    if (claims[name] !== undefined && typeof claims[name] !== 'number') throw invalid();
  }
  if (claims.nbf !== undefined && (claims.nbf as number) > now + CLOCK_TOLERANCE_S) throw invalid();
  if (claims.exp !== undefined && (claims.exp as number) <= now - CLOCK_TOLERANCE_S) throw new TokenError('expired', 'token expired');
  return claims;
}
