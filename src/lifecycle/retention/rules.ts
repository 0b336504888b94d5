// A project's tag retention policy (Harbor's model): up to 15 rules, OR-combined. Each rule selects
// repositories (by their path within the project) and artifacts by their tags, and retains some of
// them; in a repository that some rule selects, every artifact no rule retains is deleted.
// Repositories no rule selects are left alone. This module is the policy's one schema and its
// wording for people; evaluate.ts applies it.
import { z } from 'zod';
import { patternProblem, type Selector } from '../../domain/patterns.ts';
import { cronProblem } from '../../jobs/cron.ts';

/** Rules a policy may have (Harbor's limit). */
export const MAX_RULES = 15;
/** Largest `count` of the "N most recent" rules (Harbor's bound: below 2^15 - 1). */
export const MAX_COUNT = 32_766;
/** Largest `days` of the "within N days" rules: a century. */
export const MAX_DAYS = 36_500;
/** Longest cron expression (the column's size). */
export const MAX_CRON_LENGTH = 128;

const pattern = z
  .string()
  .superRefine((value, ctx) => {
    const problem = patternProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('a glob: * any run of characters but "/", ** any run including "/", ? one character, {a,b} alternatives');

/** A pattern and its sense: what matches (`exclude` false) or what does not (`exclude` true). */
export const selectorSchema = z.strictObject({
  pattern,
  exclude: z.boolean().default(false).describe('true: select what does NOT match the pattern'),
});

const count = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_COUNT, `must be at most ${MAX_COUNT}`)
  .describe(`how many artifacts per repository, 1 to ${MAX_COUNT}`);
const days = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_DAYS, `must be at most ${MAX_DAYS}`)
  .describe(`days, 1 to ${MAX_DAYS}`);

/** What a rule retains among the artifacts it selects in one repository. */
export const retainSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('latestPushed'),
      count,
    }),
    z.strictObject({
      kind: z.literal('latestPulled'),
      count,
    }),
    z.strictObject({
      kind: z.literal('pushedWithinDays'),
      days,
    }),
    z.strictObject({
      kind: z.literal('pulledWithinDays'),
      days,
    }),
    z.strictObject({ kind: z.literal('always') }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? 'kind must be one of latestPushed, latestPulled, pushedWithinDays, pulledWithinDays, always' : undefined) },
);

/** One rule: which repositories, which artifacts (by tag, and untagged ones or not), what to retain. */
export const ruleSchema = z.strictObject({
  repositories: selectorSchema.describe("repositories by their path within the project (`team/app/web` → `app/web`)"),
  tags: selectorSchema.describe('artifacts by their tags: an artifact is selected when any of its tags is'),
  untagged: z.boolean().default(false).describe('whether the rule also selects artifacts without tags (default false: they are deleted in the repositories the policy selects unless another rule retains them)'),
  retain: retainSchema,
});

/** A cron expression croner accepts, that fires at all and at most once an hour (UTC). */
export const cronSchema = z
  .string()
  .max(MAX_CRON_LENGTH)
  .superRefine((value, ctx) => {
    const problem = cronProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('a cron expression (5 or 6 fields, UTC), at most hourly, e.g. "0 3 * * *"');

/** A project's policy as the API and the CLI's policy file give it. */
export const policySchema = z.strictObject({
  rules: z
    .array(ruleSchema)
    .max(MAX_RULES, `at most ${MAX_RULES} rules`)
    .describe(`up to ${MAX_RULES} rules, OR-combined: an artifact is kept when any rule retains it`),
  cron: cronSchema.nullable().optional().describe('when to run it (UTC); null or absent: manual runs only'),
});

export type RetentionSelector = Selector;
export type RetainSpec = z.output<typeof retainSchema>;
export type RetentionRule = z.output<typeof ruleSchema>;
export type RetentionPolicyInput = z.input<typeof policySchema>;
export type RetentionPolicy = z.output<typeof policySchema>;

/** The rules of a stored policy (JSON written by Berth); rules that no longer validate are an error. */
export function parseStoredRules(text: string): RetentionRule[] {
  return z.array(ruleSchema).max(MAX_RULES).parse(JSON.parse(text));
}

function selectorText(selector: Selector, noun: string): string {
  return `${noun} ${selector.exclude ? 'not matching' : 'matching'} ${selector.pattern}`;
}

/** What a rule retains, in words: `the 10 most recently pushed`, `those pulled within 7 days`. */
export function retainText(retain: RetainSpec): string {
  switch (retain.kind) {
    case 'latestPushed':
      return `the ${retain.count} most recently pushed`;
    case 'latestPulled':
      return `the ${retain.count} most recently pulled`;
    case 'pushedWithinDays':
      return `those pushed within ${retain.days} ${retain.days === 1 ? 'day' : 'days'}`;
    case 'pulledWithinDays':
      return `those pulled within ${retain.days} ${retain.days === 1 ? 'day' : 'days'}`;
    case 'always':
      return 'all';
  }
}

/**
 * A rule in one line, e.g. `retain the 10 most recently pushed of repositories matching ** with
 * tags matching release-* (and untagged artifacts)`.
 */
export function ruleText(rule: RetentionRule): string {
  const untagged = rule.untagged ? ' (and untagged artifacts)' : '';
  return `retain ${retainText(rule.retain)} of ${selectorText(rule.repositories, 'repositories')} with ${selectorText(rule.tags, 'tags')}${untagged}`;
}
