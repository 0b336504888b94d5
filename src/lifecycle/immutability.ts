// Tag immutability rules (Harbor's model): a tag a rule of its project covers can be pushed once;
// it is never moved to another digest, deleted, or removed by retention.
import { pathInProject, selects, type Selector } from '../domain/patterns.ts';

/** One rule of a project. Repository selectors match the repository's path within its project (`pathInProject`). */
export interface ImmutabilityRule {
  id: number;
  repositories: Selector;
  tags: Selector;
  disabled: boolean;
}

/** The enabled rule of `rules` that makes `tag` of `repository` (full name) immutable, if any. */
export function immutableBy(rules: readonly ImmutabilityRule[], repository: string, tag: string): ImmutabilityRule | undefined {
  const path = pathInProject(repository);
  return rules.find((rule) => !rule.disabled && selects(rule.repositories, path) && selects(rule.tags, tag));
}
