import * as client from 'openid-client';
import { createRemoteJWKSet, customFetch as joseFetch, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.ts';
import { IdentitySourceUnavailableError, type ExternalIdentity } from '../external.ts';
import { identityFromClaims } from './claims.ts';
import { OidcError, translateError } from './errors.ts';
import { isLoopbackURL, ProviderTransport } from './transport.ts';

export { OidcError, type OidcErrorKind } from './errors.ts';

/** The `auth.oidc` section, validated. */
export type OidcConfig = NonNullable<Config['auth']['oidc']>;

/** Tuning that is not configuration (tests use it; Berth keeps the defaults). */
export interface OidcClientOptions {
  /**
   * After a JWKS fetch, an ID token with an unknown `kid` does not fetch the JWKS again until this
   * long has passed (default 5 000 ms): a rotated key is picked up by one refetch, and a stream of
   * tokens with foreign keys cannot turn into a stream of fetches.
   */
  jwksCooldownMs?: number;
}

/** What {@link OidcClient.begin} returns: the URL to send the browser to and what `finish` must be given back. */
export interface AuthorizationStart {
  /** The provider's authorization URL with client_id, redirect_uri, scope, state, nonce and the S256 code challenge. */
  url: string;
  /** Random; kept by the caller (e.g. in auth_flows) and compared with the callback's. */
  state: string;
  /** Random; must come back in the ID token. */
  nonce: string;
  /** The PKCE verifier: a secret, never logged or sent to the browser. */
  codeVerifier: string;
}

/** What the caller kept from {@link OidcClient.begin}, for {@link OidcClient.finish}. */
export interface AuthorizationExpectations {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** The same redirect URI that was given to `begin` (the provider compares them). */
  redirectUri: string;
}

/** What {@link OidcClient.startDevice} returns (RFC 8628 §3.2), for the CLI to show. */
export interface DeviceStart {
  /** A secret: the CLI polls with it; never shown or logged. */
  deviceCode: string;
  /** What the person types at `verificationUri`. */
  userCode: string;
  verificationUri: string;
  /** `verificationUri` with the user code filled in, when the provider offers one. */
  verificationUriComplete?: string;
  /** Seconds to wait between polls (5 when the provider does not say). */
  interval: number;
  /** Seconds the device code stays valid. */
  expiresIn: number;
}

/** One poll's outcome: keep polling (slower after `slow_down`), stop, or the signed-in identity. */
export type DevicePoll = { status: 'pending' | 'slow_down' } | { status: 'denied' | 'expired' } | { status: 'done'; identity: ExternalIdentity };

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// A JWKS can hold only public keys: HMAC algorithms (keyed by the client secret) are not accepted.
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/;

/**
 * Berth as an OpenID Connect relying party of one provider (`auth.oidc`). Stateless between
 * calls — the caller keeps state, nonce and verifier (and device codes) — so any replica can
 * finish a flow another began. Every request is bounded by `auth.oidc.timeout`.
 *
 * Errors of every method: {@link OidcError} when the provider or its answer refuses the sign-in;
 * {@link IdentitySourceUnavailableError} when the provider cannot be reached, times out, or
 * answers something that is not OAuth.
 */
export class OidcClient {
  /** `auth.oidc.displayName`, for buttons and messages. */
  readonly displayName: string;
  /** The issuer as the provider states it (the prefix of every identity's externalId). */
  readonly issuer: string;
  readonly #config: OidcConfig;
  readonly #openid: client.Configuration;
  readonly #jwks: JWTVerifyGetKey;
  readonly #algorithms: string[];
  readonly #transport: ProviderTransport;
  readonly #log: Logger;

  private constructor(config: OidcConfig, openid: client.Configuration, transport: ProviderTransport, log: Logger, options: OidcClientOptions) {
    this.#config = config;
    this.#openid = openid;
    this.#transport = transport;
    this.#log = log;
    this.displayName = config.displayName;
    const metadata = openid.serverMetadata();
    this.issuer = metadata.issuer;
    const advertised = metadata.id_token_signing_alg_values_supported ?? ['RS256'];
    this.#algorithms = advertised.filter((alg) => ASYMMETRIC.test(alg));
    if (this.#algorithms.length === 0) throw new OidcError('unsupported', `${config.displayName} signs ID tokens with no public-key algorithm Berth accepts (RS*, PS*, ES*, EdDSA)`);
    if (!metadata.jwks_uri) throw new OidcError('unsupported', `${config.displayName} publishes no jwks_uri: ID token signatures cannot be checked`);
    this.#jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
      timeoutDuration: config.timeout * 1000,
      cooldownDuration: options.jwksCooldownMs ?? 5_000,
      cacheMaxAge: 10 * 60_000,
      [joseFetch]: transport.fetch,
    });
  }

  /**
   * Reads `<issuer>/.well-known/openid-configuration` and prepares the client. Plain http issuers
   * are accepted only on this machine (127.0.0.0/8, ::1, localhost). Throws
   * {@link IdentitySourceUnavailableError} when the provider is unreachable or its document is
   * unusable (callers may retry later), {@link OidcError} (`unsupported`) for an http issuer
   * elsewhere or a provider without usable signing keys, and Error for an unreadable caFile.
   */
  static async discover(config: OidcConfig, log: Logger, options: OidcClientOptions = {}): Promise<OidcClient> {
    const issuer = new URL(config.issuer);
    const insecure = issuer.protocol === 'http:';
    if (insecure && !isLoopbackURL(issuer)) throw new OidcError('unsupported', 'auth.oidc.issuer must be an https:// URL (http:// only for a provider on this machine)');
    const transport = await ProviderTransport.create({ caFile: config.caFile, timeoutMs: config.timeout * 1000 });
    try {
      const openid = await client
        .discovery(issuer, config.clientId, undefined, undefined, {
          timeout: config.timeout,
          [client.customFetch]: transport.fetch as client.CustomFetch,
          ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
        })
        .catch((error: unknown) => {
          if ((error as { code?: unknown }).code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
            throw new IdentitySourceUnavailableError(`the issuer in ${config.displayName}'s discovery document differs from auth.oidc.issuer (mind a trailing slash)`, { cause: error });
          }
          throw translateError(error, config.displayName, 'discovery');
        });
      const metadata = openid.serverMetadata();
      const auth = clientAuthentication(config.clientSecret, metadata.token_endpoint_auth_methods_supported);
      const configured = new client.Configuration(metadata, config.clientId, { [client.clockTolerance]: config.clockTolerance }, auth);
      configured[client.customFetch] = transport.fetch as client.CustomFetch;
      configured.timeout = config.timeout;
      if (insecure) client.allowInsecureRequests(configured);
      const oidc = new OidcClient(config, configured, transport, log, options);
      log.info({ issuer: oidc.issuer, deviceFlow: oidc.supportsDeviceFlow, algorithms: oidc.#algorithms }, 'oidc provider discovered');
      return oidc;
    } catch (error) {
      await transport.close();
      throw error;
    }
  }

  /** Whether the provider offers the device authorization grant (`berth login` on headless machines). */
  get supportsDeviceFlow(): boolean {
    return typeof this.#openid.serverMetadata().device_authorization_endpoint === 'string';
  }

  /**
   * Starts an authorization-code sign-in with PKCE (S256), fresh random state and nonce, and the
   * configured scopes (`openid` always included). Makes no request. Throws OidcError (`callback`)
   * when `redirectUri` is not an absolute http(s) URL.
   */
  async begin(redirectUri: string): Promise<AuthorizationStart> {
    checkRedirectUri(redirectUri);
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(this.#openid, {
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: this.#scope(),
      state,
      nonce,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, state, nonce, codeVerifier };
  }

  /**
   * Completes a sign-in from the URL the provider redirected the browser to (the callback with
   * `code`, `state` and maybe `iss`, or `error`): checks state (and iss), exchanges the code with
   * the PKCE verifier, validates the ID token — issuer, audience (and azp when several), exp/iat
   * within clockTolerance, nonce, algorithm and signature against the provider's JWKS — reads
   * userinfo when the ID token lacks the user name or groups claim, and returns the identity.
   * Throws OidcError: `provider` (e.g. access_denied, invalid_grant), `callback` (state mismatch,
   * no code), `id_token`, `claims`; IdentitySourceUnavailableError when the provider is down.
   */
  async finish(callbackUrl: URL, expected: AuthorizationExpectations): Promise<ExternalIdentity> {
    checkRedirectUri(expected.redirectUri);
    const tokens = await client
      .authorizationCodeGrant(
        this.#openid,
        callbackUrl,
        { pkceCodeVerifier: expected.codeVerifier, expectedState: expected.state, expectedNonce: expected.nonce, idTokenExpected: true },
        { redirect_uri: expected.redirectUri },
      )
      .catch((error: unknown) => {
        throw translateError(error, this.displayName, 'code exchange');
      });
    return this.#identity(tokens);
  }

  /**
   * Starts a device authorization (RFC 8628) with the configured scopes: one request to the
   * provider's device_authorization_endpoint. Throws OidcError (`unsupported`) when the provider
   * has none, `provider` when it refuses (e.g. the client may not use this grant).
   */
  async startDevice(): Promise<DeviceStart> {
    if (!this.supportsDeviceFlow) throw new OidcError('unsupported', `${this.displayName} does not offer the device flow (no device_authorization_endpoint): sign in through the browser instead`);
    const answer = await client.initiateDeviceAuthorization(this.#openid, { scope: this.#scope() }).catch((error: unknown) => {
      throw translateError(error, this.displayName, 'device authorization');
    });
    const verificationUri = printableURL(answer.verification_uri);
    if (verificationUri === undefined) throw new IdentitySourceUnavailableError(`${this.displayName} sent an unusable device verification URI`);
    const start: DeviceStart = {
      deviceCode: answer.device_code,
      userCode: answer.user_code.slice(0, 64),
      verificationUri,
      interval: clamp(answer.interval ?? 5, 1, 60),
      expiresIn: clamp(answer.expires_in, 1, 3600),
    };
    const complete = printableURL(answer.verification_uri_complete);
    if (complete !== undefined) start.verificationUriComplete = complete;
    return start;
  }

  /**
   * Makes exactly one token request for a device code (the CLI's poll goes through Berth, which
   * keeps no state). `pending`/`slow_down`: ask again after the interval (add 5 s after
   * slow_down); `denied`/`expired`: stop; `done`: the identity, after the same ID token checks
   * as {@link finish} (without nonce). Throws OidcError (`callback`) for a malformed device code,
   * `provider` for other refusals (e.g. invalid_grant for an unknown code), and
   * IdentitySourceUnavailableError when the provider is down.
   */
  async pollDevice(deviceCode: string): Promise<DevicePoll> {
    if (typeof deviceCode !== 'string' || !/^[\x21-\x7e]{1,1024}$/.test(deviceCode)) throw new OidcError('callback', 'the device code is malformed');
    let tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      tokens = await client.genericGrantRequest(this.#openid, DEVICE_GRANT, { device_code: deviceCode });
    } catch (error) {
      if (error instanceof client.ResponseBodyError) {
        switch (error.error) {
          case 'authorization_pending':
            return { status: 'pending' };
          case 'slow_down':
            return { status: 'slow_down' };
          case 'access_denied':
            return { status: 'denied' };
          case 'expired_token':
            return { status: 'expired' };
        }
      }
      throw translateError(error, this.displayName, 'device token request');
    }
    return { status: 'done', identity: await this.#identity(tokens) };
  }

  /**
   * Asks the provider whether the person a refresh token was issued to is still accepted: one
   * refresh-token grant. Returns the person as the provider describes them now — from the new ID
   * token (the same checks as {@link finish}, without nonce) or, when it sends none, from userinfo —
   * with the refresh token to keep (a rotated one, or the same). Throws OidcError (`provider`, e.g.
   * invalid_grant: the person or the grant is gone) when refused, `id_token` when the answer is
   * about another person than `externalId`, IdentitySourceUnavailableError when the provider is down.
   */
  async refresh(refreshToken: string, externalId: string): Promise<ExternalIdentity> {
    const sub = externalId.startsWith(`${this.issuer} `) ? externalId.slice(this.issuer.length + 1) : undefined;
    if (sub === undefined) throw new OidcError('id_token', `the account was not made by ${this.displayName} (${this.issuer})`);
    const tokens = await client.refreshTokenGrant(this.#openid, refreshToken).catch((error: unknown) => {
      throw translateError(error, this.displayName, 'refresh token grant');
    });
    let identity: ExternalIdentity;
    if (typeof tokens.id_token === 'string') {
      identity = await this.#identity(tokens);
    } else {
      const userinfoEndpoint = this.#openid.serverMetadata().userinfo_endpoint;
      if (!userinfoEndpoint) throw new OidcError('id_token', `${this.displayName} answered a refresh with neither an ID token nor a userinfo endpoint`);
      const userinfo = await client.fetchUserInfo(this.#openid, tokens.access_token, sub).catch((error: unknown) => {
        throw translateError(error, this.displayName, 'userinfo request');
      });
      identity = this.#fromClaims({ ...userinfo });
    }
    if (identity.externalId !== externalId) throw new OidcError('id_token', `${this.displayName} answered the refresh about another person`);
    return { ...identity, refreshToken: tokens.refresh_token ?? refreshToken };
  }

  /** Closes the connections to the provider; the client is unusable afterwards. */
  close(): Promise<void> {
    return this.#transport.close();
  }

  #scope(): string {
    const scopes = this.#config.scopes.includes('openid') ? this.#config.scopes : ['openid', ...this.#config.scopes];
    return scopes.join(' ');
  }

  /** The checked identity from a token response whose ID token openid-client has validated (claims, not signature). */
  async #identity(tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): Promise<ExternalIdentity> {
    const idToken = tokens.id_token;
    if (typeof idToken !== 'string') throw new OidcError('id_token', `${this.displayName} sent no ID token (is the "openid" scope allowed for this client?)`);
    // openid-client checks the claims; the signature is checked here against the JWKS, with key rotation.
    const claims: Record<string, unknown> = { ...(await this.#verifySignature(idToken)) };
    const { usernameClaim, groupsClaim } = this.#config;
    const userinfoEndpoint = this.#openid.serverMetadata().userinfo_endpoint;
    if ((claims[usernameClaim] === undefined || claims[groupsClaim] === undefined) && userinfoEndpoint && tokens.access_token) {
      const userinfo = await client.fetchUserInfo(this.#openid, tokens.access_token, claims['sub'] as string).catch((error: unknown) => {
        if ((error as { code?: unknown }).code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
          throw new OidcError('id_token', `the userinfo answer from ${this.displayName} is about another subject than the ID token`, { cause: error });
        }
        throw translateError(error, this.displayName, 'userinfo request');
      });
      for (const name of [usernameClaim, groupsClaim, 'email']) if (claims[name] === undefined && userinfo[name] !== undefined) claims[name] = userinfo[name];
    }
    const identity = this.#fromClaims(claims);
    return tokens.refresh_token ? { ...identity, refreshToken: tokens.refresh_token } : identity;
  }

  #fromClaims(claims: Record<string, unknown>): ExternalIdentity {
    const { identity, droppedGroups } = identityFromClaims(this.issuer, claims, this.#config, this.displayName);
    if (droppedGroups > 0) this.#log.warn({ user: identity.username, kept: identity.groups.length, dropped: droppedGroups }, 'oidc groups claim values ignored');
    return identity;
  }

  async #verifySignature(idToken: string): Promise<Record<string, unknown>> {
    try {
      const { payload } = await jwtVerify(idToken, this.#jwks, {
        algorithms: this.#algorithms,
        issuer: this.issuer,
        audience: this.#config.clientId,
        clockTolerance: this.#config.clockTolerance,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      return payload;
    } catch (error) {
      const name = this.displayName;
      if (error instanceof joseErrors.JWKSNoMatchingKey) throw new OidcError('id_token', `the ID token is signed with a key ${name} does not publish`, { cause: error });
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new OidcError('id_token', `the ID token's signature is not valid for ${name}'s key`, { cause: error });
      if (error instanceof joseErrors.JWTExpired) throw new OidcError('id_token', `the ID token from ${name} is expired`, { cause: error });
      if (error instanceof joseErrors.JOSEAlgNotAllowed) throw new OidcError('id_token', `the ID token from ${name} uses a signing algorithm it does not advertise`, { cause: error });
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw new OidcError('id_token', `the ID token from ${name} failed the "${safeClaim(error.claim)}" check`, { cause: error });
      if (error instanceof joseErrors.JWKSTimeout) throw new IdentitySourceUnavailableError(`${name} did not send its signing keys in time`, { cause: error });
      if (error instanceof joseErrors.JWKSInvalid || error instanceof joseErrors.JOSEError) {
        if (error instanceof joseErrors.JWKSInvalid) throw new IdentitySourceUnavailableError(`${name} published an unusable JWKS`, { cause: error });
        throw new OidcError('id_token', `the ID token from ${name} is malformed (${error.code})`, { cause: error });
      }
      throw translateError(error, name, 'signing key request');
    }
  }
}

function clientAuthentication(secret: string | undefined, supported: string[] | undefined): client.ClientAuth {
  if (secret === undefined) return client.None();
  // RFC 8414: an absent list means client_secret_basic.
  if (supported === undefined || supported.includes('client_secret_basic')) return client.ClientSecretBasic(secret);
  return client.ClientSecretPost(secret);
}

function checkRedirectUri(uri: string): void {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    throw new OidcError('callback', 'the redirect URI is not an absolute URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new OidcError('callback', 'the redirect URI must be an http(s) URL');
}

/** A provider-sent URL fit to print to a terminal: http(s), no control characters, bounded. */
function printableURL(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 2048) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function clamp(n: number, min: number, max: number): number {
  return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.round(n))) : min;
}

function safeClaim(claim: unknown): string {
  return typeof claim === 'string' && /^[a-z_]{1,16}$/.test(claim) ? claim : 'claim';
}
