import * as client from 'openid-client';
import { IdentitySourceUnavailableError } from '../external.ts';

/** Why an OpenID Connect sign-in was refused (see {@link OidcError}). */
export type OidcErrorKind =
  /** The provider answered with an OAuth error (`access_denied`, `invalid_grant`…); `providerError` holds its code. */
  | 'provider'
  /** The callback does not belong to the flow that was started (state mismatch, missing code). */
  | 'callback'
  /** The ID token failed validation (issuer, audience, times, nonce, signature, algorithm). */
  | 'id_token'
  /** The provider's claims cannot make a Berth identity (bad or missing user name claim). */
  | 'claims'
  /** The provider lacks something Berth needs (no device authorization endpoint…). */
  | 'unsupported';

/**
 * A sign-in through the OpenID provider was refused. The message is short, made by Berth, and
 * safe to show: from the provider it carries at most the standard OAuth error code and a
 * length-capped, sanitised description — never a token, a code or other raw provider text.
 * Callers answer 401 (or 400 for `callback`), not 503: the provider is working, the sign-in is not.
 */
export class OidcError extends Error {
  override name = 'OidcError';
  /** What failed, for the caller's status code and audit entry. */
  readonly kind: OidcErrorKind;
  /** The provider's standard OAuth error code, when `kind` is `provider` (e.g. `access_denied`). */
  readonly providerError?: string;

  constructor(kind: OidcErrorKind, message: string, options: { providerError?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    if (options.providerError !== undefined) this.providerError = options.providerError;
  }
}

const DESCRIPTION_MAX = 200;

/** An OAuth error code (RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E), else a placeholder. */
export function safeErrorCode(code: unknown): string {
  return typeof code === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(code) ? code : 'unknown_error';
}

/** A provider's error description reduced to the characters OAuth allows there, its length capped. */
export function safeDescription(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  // RFC 6749 §4.1.2.1 allows only %x20-21 / %x23-5B / %x5D-7E here; anything else is replaced (a callback URL is anyone's to craft).
  const clean = text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?').replace(/\s+/g, ' ').trim();
  if (clean === '') return undefined;
  return clean.length > DESCRIPTION_MAX ? `${clean.slice(0, DESCRIPTION_MAX)}…` : clean;
}

function providerRefusal(provider: string, code: unknown, description: unknown, cause: unknown): OidcError {
  const safe = safeErrorCode(code);
  const text = safeDescription(description);
  return new OidcError('provider', `${provider} refused the sign-in: ${safe}${text ? ` (${text})` : ''}`, { providerError: safe, cause });
}

function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** Whether the failure is the network's or the provider's being down rather than a refusal. */
function isUnreachable(error: unknown): boolean {
  return causes(error).some((e) => {
    if (!(e instanceof Error)) return false;
    if (e.name === 'TimeoutError' || e.name === 'AbortError' || (e instanceof TypeError && e.message === 'fetch failed')) return true;
    const code = (e as { code?: unknown }).code;
    return (
      code === 'OAUTH_TIMEOUT' ||
      code === 'OAUTH_ABORT' ||
      code === 'ERR_JWKS_TIMEOUT' ||
      (typeof code === 'string' && (/^(E[A-Z]+|EAI_AGAIN|UND_ERR_[A-Z_]+)$/.test(code) || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)))
    );
  });
}

/**
 * Turns what openid-client or jose threw into Berth's errors: an {@link OidcError} for a refusal
 * (naming what failed, never echoing the token), an {@link IdentitySourceUnavailableError} when
 * the provider is unreachable, slow, or answers something that is not OAuth (a 5xx page).
 * `what` names the step for messages, e.g. `token request`.
 */
export function translateError(error: unknown, provider: string, what: string): Error {
  const ours = causes(error).find((e) => e instanceof OidcError || e instanceof IdentitySourceUnavailableError);
  if (ours) return ours as Error;
  if (error instanceof client.ResponseBodyError) {
    if (error.status >= 500) return new IdentitySourceUnavailableError(`${provider} failed the ${what} (HTTP ${error.status})`, { cause: error });
    return providerRefusal(provider, error.error, error.error_description, error);
  }
  if (error instanceof client.AuthorizationResponseError) return providerRefusal(provider, error.error, error.error_description, error);
  if (error instanceof client.WWWAuthenticateChallengeError) return providerRefusal(provider, error.cause[0]?.parameters.error, undefined, error);
  if (isUnreachable(error)) return new IdentitySourceUnavailableError(`${provider} is unreachable (${what}): ${unreachableCause(error)}`, { cause: error });
  const code = (error as { code?: unknown }).code;
  // oauth4webapi's OperationProcessingError carries what it compared: `parameters` (the callback) or `claim` (the ID token).
  const detail = (causes(error).find((e) => e instanceof Error && e.name === 'OperationProcessingError') as { cause?: Record<string, unknown> } | undefined)?.cause;
  if (detail && typeof detail === 'object' && 'parameters' in detail) {
    return new OidcError('callback', `the answer from ${provider} does not belong to this sign-in (${firstLine(error)})`, { cause: error });
  }
  switch (code) {
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
    case 'OAUTH_PARSE_ERROR':
      return new IdentitySourceUnavailableError(`${provider} gave an unusable answer to the ${what}`, { cause: error });
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED':
      return new OidcError('id_token', `the ID token from ${provider} is expired or not yet valid`, { cause: error });
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED': {
      const claim = detail?.['claim'];
      const name = typeof claim === 'string' && /^[a-z_]{1,16}$/.test(claim) ? ` (${claim})` : '';
      return new OidcError('id_token', `the ID token from ${provider} is not for this sign-in${name}`, { cause: error });
    }
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      return new OidcError('callback', `the answer from ${provider} does not belong to this sign-in (state or issuer mismatch)`, { cause: error });
    case 'OAUTH_INVALID_RESPONSE':
      return new OidcError('id_token', `${provider} sent an invalid ${what} answer (${firstLine(error)})`, { cause: error });
  }
  if (error instanceof client.ClientError) return new OidcError('callback', `the ${what} with ${provider} failed (${firstLine(error)})`, { cause: error });
  return new IdentitySourceUnavailableError(`the ${what} with ${provider} failed unexpectedly`, { cause: error });
}

// openid-client's own messages and cause codes are fixed library text, never provider input.
function firstLine(error: unknown): string {
  const inner = (error as { cause?: unknown }).cause;
  const message = inner instanceof Error && inner.message ? inner.message : error instanceof Error ? error.message : 'unknown';
  return message.split('\n')[0]!.slice(0, 120);
}

function unreachableCause(error: unknown): string {
  for (const e of causes(error)) {
    if (e instanceof Error && (e.name === 'TimeoutError' || (e as { code?: unknown }).code === 'OAUTH_TIMEOUT')) return 'timed out';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code) && !code.startsWith('OAUTH_')) return code;
  }
  return 'connection failed';
}
