import { RegistryError } from './errors.ts';

// Repository name grammar of the OCI distribution spec: path components of lower-case alphanumerics
// separated by `.`, `_`, `__` or runs of `-`, joined by `/`.
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** The longest repository name accepted (Distribution's limit, so names fit a 255-byte reference). */
export const MAX_NAME_LENGTH = 255;

/** Validates a repository name; throws `NAME_INVALID` naming the rule it breaks. */
export function assertRepositoryName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: name.slice(0, 300), reason: `length must be 1 to ${MAX_NAME_LENGTH}` });
  }
  if (!NAME.test(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', {
      name,
      reason: 'must be lower-case alphanumeric components separated by ".", "_", "__" or "-", joined by "/"',
    });
  }
  return name;
}

/** True when `tag` matches the spec's tag grammar. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** The project a repository belongs to: the first segment of its name (`team` of `team/app`). */
export function projectOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}
