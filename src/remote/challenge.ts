// `WWW-Authenticate` challenges (RFC 7235 §2.1, §4.1) as registries send them, parsed strictly
// enough that a hostile header can only ever yield a ChallengeError, never a crash or a huge
// allocation: bounded length, bounded counts, token characters checked.

/** One challenge: a lower-case scheme and its lower-case-named parameters. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** What a registry asked for, reduced to what the client can act on. */
export type AuthRequest =
  | { readonly scheme: 'bearer'; readonly realm: URL; readonly service?: string; readonly scopes: readonly string[] }
  | { readonly scheme: 'basic' };

/** A `WWW-Authenticate` header that does not parse, or asks for nothing the client supports. */
export class ChallengeError extends Error {
  override name = 'ChallengeError';
}

/** Longest header value looked at (Node already caps all headers at 16 KiB by default). */
const MAX_HEADER = 8192;
const MAX_CHALLENGES = 16;
const MAX_PARAMS = 32;
const MAX_SCOPES = 16;
const MAX_REALM = 2048;
// RFC 7230 tchar.
const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
// A token68 (RFC 7235) standing alone after a scheme: up to the next comma or the end.
const TOKEN68_AFTER_SCHEME = /[A-Za-z0-9._~+/-]+=*[ \t]*(?=,|$)/y;

/**
 * Parses every `WWW-Authenticate` value of a response (one header may hold several challenges,
 * and a response may carry several headers). Parameter names are lower-cased; quoted-string values
 * are unescaped; the first occurrence of a repeated parameter wins. Throws ChallengeError on
 * anything malformed or oversized.
 */
export function parseChallenges(values: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of values) {
    if (value.length > MAX_HEADER) throw new ChallengeError('the challenge is too long');
    parseOne(value, out);
  }
  return out;
}

function parseOne(header: string, out: Challenge[]): void {
  let i = 0;
  const ows = (): void => {
    while (header[i] === ' ' || header[i] === '\t') i++;
  };
  const token = (): string => {
    const start = i;
    while (i < header.length && TCHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const quoted = (): string => {
    i++; // the opening quote
    let value = '';
    while (i < header.length) {
      const c = header[i]!;
      if (c === '"') {
        i++;
        return value;
      }
      if (c === '\\') {
        i++;
        if (i >= header.length) break;
      }
      const code = header.charCodeAt(i);
      // qdtext / quoted-pair admit HTAB, SP, visible ASCII and obs-text, never other controls.
      if ((code < 0x20 && code !== 0x09) || code === 0x7f) throw new ChallengeError('a control character in a quoted string');
      value += header[i];
      i++;
    }
    throw new ChallengeError('an unterminated quoted string');
  };

  let current: { scheme: string; params: Record<string, string> } | undefined;
  let count = 0;
  while (i < header.length) {
    ows();
    if (header[i] === ',') {
      i++;
      continue;
    }
    if (i >= header.length) break;
    const name = token();
    if (name === '') throw new ChallengeError('an unexpected character');
    ows();
    if (header[i] === '=') {
      if (!current) throw new ChallengeError('a parameter before any scheme');
      i++;
      ows();
      const value = header[i] === '"' ? quoted() : token();
      if (++count > MAX_PARAMS) throw new ChallengeError('too many parameters');
      const key = name.toLowerCase();
      if (!Object.hasOwn(current.params, key)) current.params[key] = value;
      continue;
    }
    // A new challenge. A token68 right after its scheme (`Negotiate YWJj==`) is skipped: registries
    // never send one, and it must not be read as a parameter.
    if (out.length >= MAX_CHALLENGES) throw new ChallengeError('too many challenges');
    current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
    out.push(current);
    count = 0;
    TOKEN68_AFTER_SCHEME.lastIndex = i;
    if (i > 0 && /[ \t]/.test(header[i - 1]!) && TOKEN68_AFTER_SCHEME.test(header)) i = TOKEN68_AFTER_SCHEME.lastIndex;
  }
}

/**
 * Chooses what to do about a 401: a Bearer challenge with a usable realm first (Docker and
 * containerd prefer it too), then Basic. Throws ChallengeError when neither is offered, or when the
 * Bearer challenge is unusable (no realm, a realm that is not an absolute http(s) URL, a scope
 * that could not be sent back).
 */
export function chooseChallenge(challenges: readonly Challenge[]): AuthRequest {
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  if (bearer) {
    const realmText = bearer.params['realm'];
    if (!realmText) throw new ChallengeError('the Bearer challenge has no realm');
    if (realmText.length > MAX_REALM) throw new ChallengeError('the Bearer realm is too long');
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw new ChallengeError('the Bearer realm is not an absolute URL');
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new ChallengeError('the Bearer realm is not an http(s) URL');
    if (realm.username || realm.password) throw new ChallengeError('the Bearer realm carries credentials');
    const service = bearer.params['service'];
    if (service !== undefined && !/^[\x21-\x7e]{1,512}$/.test(service)) throw new ChallengeError('the Bearer service is not plain text');
    const scopes = (bearer.params['scope'] ?? '').split(' ').filter((s) => s !== '');
    if (scopes.length > MAX_SCOPES || scopes.some((s) => !/^[\x21-\x7e]{1,512}$/.test(s))) throw new ChallengeError('the Bearer scope is not a short list of plain-text scopes');
    return { scheme: 'bearer', realm, ...(service !== undefined ? { service } : {}), scopes };
  }
  if (challenges.some((c) => c.scheme === 'basic')) return { scheme: 'basic' };
  throw new ChallengeError(challenges.length === 0 ? 'no challenge' : 'no Bearer or Basic challenge');
}
