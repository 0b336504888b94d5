import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors.ts';

/** The digest algorithms Berth verifies content with (OCI image spec, "Registered algorithms"). */
export const ALGORITHMS = {
  sha256: { node: 'sha256', hexLength: 64 },
  sha512: { node: 'sha512', hexLength: 128 },
} as const;

export type Algorithm = keyof typeof ALGORITHMS;

/** A validated digest such as `sha256:e3b0…`. */
export interface Digest {
  readonly algorithm: Algorithm;
  readonly hex: string;
  /** The canonical string form, `algorithm:hex`. */
  readonly value: string;
}

// The general grammar from the OCI image spec; registered algorithms are checked more strictly below.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** What a digest looks like, for error details. */
export const DIGEST_SHAPE = 'algorithm:encoded, e.g. sha256:<64 lower-case hex characters>';

/**
 * Parses and validates a digest string, throwing `DIGEST_INVALID` with the reason. `field` names
 * where the digest came from (a path segment, a query parameter) in the error; the input itself is
 * never echoed back.
 */
export function parseDigest(input: string, field = 'digest'): Digest {
  if (input.length > 200 || !DIGEST_GRAMMAR.test(input)) {
    throw new RegistryError('DIGEST_INVALID', 'invalid digest', { field, reason: 'does not match algorithm:encoded', expected: DIGEST_SHAPE });
  }
  const colon = input.indexOf(':');
  const algorithm = input.slice(0, colon);
  const hex = input.slice(colon + 1);
  if (!Object.hasOwn(ALGORITHMS, algorithm)) {
    throw new RegistryError('DIGEST_INVALID', 'unsupported digest algorithm', { field, reason: 'unsupported digest algorithm', supported: Object.keys(ALGORITHMS) });
  }
  const spec = ALGORITHMS[algorithm as Algorithm];
  if (hex.length !== spec.hexLength || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', 'invalid digest', { field, reason: `${algorithm} needs ${spec.hexLength} lower-case hex characters`, expected: `${algorithm}:<${spec.hexLength} lower-case hex characters>` });
  }
  return { algorithm: algorithm as Algorithm, hex, value: input };
}

/** True when `input` is a syntactically valid digest of a supported algorithm. */
export function isDigest(input: string): boolean {
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

/** A streaming hasher for one algorithm. */
export function newHash(algorithm: Algorithm): Hash {
  return createHash(ALGORITHMS[algorithm].node);
}

/** The digest of a complete buffer. */
export function digestOf(data: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${newHash(algorithm).update(data).digest('hex')}`;
}
