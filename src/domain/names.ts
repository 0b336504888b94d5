import { RegistryError } from './errors.ts';

// Repository name grammar of the OCI distribution spec: path components of lower-case alphanumerics
// separated by `.`, `_`, `__` or runs of `-`, joined by `/`.
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** The longest repository name accepted (Distribution's limit, so names fit a 255-byte reference). */
export const MAX_NAME_LENGTH = 255;

/** Whether `name` is a valid repository name: the grammar above, 1 to {@link MAX_NAME_LENGTH} characters. */
export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

/**
 * Validates a repository name; throws `NAME_INVALID` naming the rule it breaks (never echoing the
 * name: it is whatever the client sent).
 */
export function assertRepositoryName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { field: 'name', reason: `length must be 1 to ${MAX_NAME_LENGTH}`, length: name.length });
  }
  if (!NAME.test(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', {
      field: 'name',
      reason: 'must be lower-case alphanumeric components separated by ".", "_", "__" or "-", joined by "/"',
    });
  }
  return name;
}

/** True when `tag` matches the spec's tag grammar. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** The project of single-segment repository names (`alpine`), as on Docker Hub. */
export const DEFAULT_PROJECT = 'library';

/**
 * The project a repository belongs to: the first segment of its name (`team` of `team/app`), or
 * {@link DEFAULT_PROJECT} for a name of one segment (`alpine`), which keeps the name the client used.
 */
export function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? DEFAULT_PROJECT : repository.slice(0, slash);
}
