import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, parseInteger, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

/** A selector as the API describes it. */
export interface RuleSelector {
  pattern: string;
  exclude: boolean;
}

/** A tag immutability rule as the API describes it. */
export interface ImmutabilityRuleView {
  id: number;
  repositories: RuleSelector;
  tags: RuleSelector;
  disabled: boolean;
  createdBy?: string | null;
  createdAt?: string;
}

interface SelectorFlags {
  repo?: string;
  repoExclude?: boolean;
  tag?: string;
  tagExclude?: boolean;
}

/** `**` or `except v*`, as the list prints a selector. */
export function formatSelector(s: RuleSelector): string {
  return s.exclude ? `except ${s.pattern}` : s.pattern;
}

/**
 * The selectors the flags give: `--repo P` / `--tag P`, each with its `--…-exclude`. An exclude flag
 * without its pattern is refused (it would silently do nothing).
 */
export function selectorsOf(flags: SelectorFlags): { repositories?: RuleSelector; tags?: RuleSelector } {
  if (flags.repoExclude && flags.repo === undefined) throw new CliError('--repo-exclude needs --repo PATTERN (the repositories the rule leaves out)');
  if (flags.tagExclude && flags.tag === undefined) throw new CliError('--tag-exclude needs --tag PATTERN (the tags the rule leaves out)');
  return {
    ...(flags.repo !== undefined ? { repositories: { pattern: flags.repo, exclude: flags.repoExclude ?? false } } : {}),
    ...(flags.tag !== undefined ? { tags: { pattern: flags.tag, exclude: flags.tagExclude ?? false } } : {}),
  };
}

function describe(rule: ImmutabilityRuleView): string {
  return `rule ${rule.id}: repositories ${formatSelector(rule.repositories)}, tags ${formatSelector(rule.tags)}${rule.disabled ? ' (disabled)' : ''}`;
}

const PATTERN_HELP = 'globs: * (not /), ** (anything), ? (one character), {a,b} (one of); repository patterns match the path within the project (team/app/web → app/web)';

function selectorOptions(cmd: Command, tagHelp: string): Command {
  return cmd
    .option('--repo <pattern>', 'repositories the rule covers (default on add: **, every repository)')
    .option('--repo-exclude', 'the rule covers the repositories NOT matching --repo')
    .option('--tag <pattern>', tagHelp)
    .option('--tag-exclude', 'the rule covers the tags NOT matching --tag');
}

/** `berth immutability list|add|update|delete`, over /api/v1/projects/{p}/immutability. */
export function immutabilityCommand(program: Command): void {
  const cmd = program
    .command('immutability')
    .description(`tag immutability rules of a project: tags they cover can be pushed once, never moved to another digest or deleted (${PATTERN_HELP})`);

  withCommon(cmd.command('list <project>').description("a project's immutability rules")).action(async (project: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const { items } = await client.list<ImmutabilityRuleView>(`/projects/${segment(project)}/immutability`);
    if (opts.json) return printJSON(items);
    printTable(
      ['ID', 'REPOSITORIES', 'TAGS', 'STATUS', 'CREATED'],
      items.map((r) => [String(r.id), formatSelector(r.repositories), formatSelector(r.tags), r.disabled ? 'disabled' : 'enabled', `${formatTime(r.createdAt)}${r.createdBy ? ` by ${r.createdBy}` : ''}`]),
    );
  });

  withCommon(selectorOptions(cmd.command('add <project>').description('add a rule (project administrators)'), 'tags the rule makes immutable (required)'))
    .option('--disable', 'add it disabled')
    .action(async (project: string, opts: CommonFlags & SelectorFlags & { disable?: boolean }) => {
      if (opts.tag === undefined) throw new CliError('give --tag PATTERN: the tags the rule makes immutable (e.g. --tag "v*")');
      const { client } = await loggedInClient(opts.url);
      const created = await client.post<ImmutabilityRuleView>(`/projects/${segment(project)}/immutability`, { ...selectorsOf(opts), ...(opts.disable ? { disabled: true } : {}) });
      if (opts.json) return printJSON(created);
      console.log(`added ${describe(created)} to project "${project}"`);
    });

  withCommon(selectorOptions(cmd.command('update <project> <id>').description("change a rule's patterns, or disable / enable it"), 'tags the rule makes immutable (replaces the tag selector)'))
    .option('--disable', 'disable the rule (its tags become mutable until it is enabled)')
    .option('--enable', 'enable the rule')
    .action(async (project: string, id: string, opts: CommonFlags & SelectorFlags & { disable?: boolean; enable?: boolean }) => {
      const ruleId = parseInteger(id, 'ID', 1);
      if (opts.disable && opts.enable) throw new CliError('give --disable or --enable, not both');
      const body = { ...selectorsOf(opts), ...(opts.disable ? { disabled: true } : opts.enable ? { disabled: false } : {}) };
      if (Object.keys(body).length === 0) throw new CliError('nothing to change: give --repo, --tag, --disable or --enable');
      const { client } = await loggedInClient(opts.url);
      const updated = await client.patch<ImmutabilityRuleView>(`/projects/${segment(project)}/immutability/${ruleId}`, body);
      if (opts.json) return printJSON(updated);
      console.log(`updated ${describe(updated)} in project "${project}"`);
    });

  withCommon(cmd.command('delete <project> <id>').description('delete a rule; the tags it covered become mutable')).action(async (project: string, id: string, opts: CommonFlags) => {
    const ruleId = parseInteger(id, 'ID', 1);
    const { client } = await loggedInClient(opts.url);
    await client.delete(`/projects/${segment(project)}/immutability/${ruleId}`);
    if (opts.json) return printJSON({ project, id: ruleId, deleted: true });
    console.log(`deleted immutability rule ${ruleId} of project "${project}"`);
  });
}
