import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors } from 'jose';
import type { Access } from './scope.ts';
import type { SigningKey } from './keys.ts';

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

/** Issues and verifies the JWTs of the token service: access tokens and OAuth2 refresh tokens. */
export class TokenService {
  constructor(private readonly key: SigningKey, private readonly settings: TokenSettings) {}

  get service(): string {
    return this.settings.service;
  }

  /** An access token for `subject` (undefined for anonymous) granting `access`. */
  async issueAccess(subject: string | undefined, access: Access[]): Promise<IssuedToken> {
    const issuedAt = new Date();
    const iat = Math.floor(issuedAt.getTime() / 1000);
    const jwt = new SignJWT({ access })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.key.kid })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.service)
      .setIssuedAt(iat)
      .setNotBefore(iat - CLOCK_TOLERANCE_S)
      .setExpirationTime(iat + this.settings.ttl)
      .setJti(randomUUID());
    if (subject !== undefined) jwt.setSubject(subject);
    return { token: await jwt.sign(this.key.privateKey), expiresIn: this.settings.ttl, issuedAt };
  }

  /** Verifies an access token; throws `TokenError` saying whether it expired or is invalid. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const payload = await this.verify(token);
    if (payload.typ === 'refresh') throw new TokenError('invalid', 'a refresh token cannot be used as an access token');
    const access = Array.isArray(payload.access) ? (payload.access as Access[]) : [];
    return { subject: payload.sub, access, issuedAt: payload.iat ?? 0, expiresAt: payload.exp ?? 0 };
  }

  /** A refresh token for a user at the given credential generation. */
  async issueRefresh(subject: string, generation: number): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({ typ: 'refresh', gen: generation })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.key.kid })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.service)
      .setSubject(subject)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.settings.refreshTTL)
      .setJti(randomUUID())
      .sign(this.key.privateKey);
  }

  /** Verifies a refresh token; returns its subject and credential generation. */
  async verifyRefresh(token: string): Promise<{ subject: string; generation: number }> {
    const payload = await this.verify(token);
    if (payload.typ !== 'refresh' || typeof payload.sub !== 'string' || typeof payload.gen !== 'number') {
      throw new TokenError('invalid', 'not a refresh token');
    }
    return { subject: payload.sub, generation: payload.gen };
  }

  private async verify(token: string) {
    try {
      const { payload } = await jwtVerify(token, this.key.publicKey, {
        issuer: this.settings.issuer,
        audience: this.settings.service,
        algorithms: ['EdDSA'],
        clockTolerance: CLOCK_TOLERANCE_S,
      });
      return payload;
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new TokenError('expired', 'token expired');
      throw new TokenError('invalid', 'token invalid');
    }
  }
}
