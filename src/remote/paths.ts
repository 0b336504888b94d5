// Names, references and digests checked before they go into a URL: a request to another registry
// is only ever built from values that match the OCI grammars, so no `..`, `?`, `#` or encoded
// slash can steer it to another path, and nothing hostile is echoed into an error.
import { isRepositoryName, isTag } from '../domain/names.ts';
import { parseDigest, type Digest } from '../domain/digest.ts';

/** A digest of an algorithm the client can verify. */
export type CheckedDigest = Pick<Digest, 'value' | 'algorithm'>;

/** The digest if `text` is one of a supported algorithm (lower-case hex of the right length): the registry's own rule. */
export function asDigest(text: string): CheckedDigest | undefined {
  try {
    return parseDigest(text);
  } catch {
    return undefined;
  }
}

/** Why a value was refused, or undefined when it may go into a URL. */
export function repositoryProblem(name: string): string | undefined {
  return isRepositoryName(name) ? undefined : 'the repository name does not match the OCI name grammar';
}

/** A tag or a digest, or undefined when `reference` is neither. */
export function asReference(reference: string): { tag: string } | { digest: CheckedDigest } | undefined {
  const digest = asDigest(reference);
  if (digest) return { digest };
  return isTag(reference) ? { tag: reference } : undefined;
}

/**
 * Builds `/v2/<name>/<rest…>` from already-checked parts, escaping each segment of the name and
 * each further segment on its own (a no-op for checked values, kept as a second line of defence).
 */
export function v2Path(repository: string, ...rest: string[]): string {
  const name = repository.split('/').map(escapeSegment).join('/');
  return `/v2/${name}/${rest.map(escapeSegment).join('/')}`;
}

// Keeps `:` (digests) readable, as every client sends it; escapes everything outside RFC 3986 pchar.
function escapeSegment(segment: string): string {
  if (segment === '.' || segment === '..') return encodeURIComponent(segment).replace(/\./g, '%2E');
  return encodeURIComponent(segment).replace(/%3A/gi, ':');
}
