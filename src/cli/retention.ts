import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, parseInteger, printFields, printJSON, shortDigest } from './format.ts';
import { CliError, printTable, readStdin } from './output.ts';

interface Selector {
  pattern: string;
  exclude: boolean;
}
type Retain = { kind: 'latestPushed' | 'latestPulled'; count: number } | { kind: 'pushedWithinDays' | 'pulledWithinDays'; days: number } | { kind: 'always' };
interface Rule {
  repositories: Selector;
  tags: Selector;
  untagged: boolean;
  retain: Retain;
}

/** A policy as the API describes it. */
export interface PolicyView {
  project: string;
  rules: Rule[];
  descriptions: string[];
  cron: string | null;
  nextRunAt: string | null;
  updatedBy: string | null;
  updatedAt: string;
}

/** A run as the API describes it. */
export interface RunView {
  id: number;
  project: string;
  dryRun: boolean;
  trigger: 'manual' | 'schedule';
  state: string;
  cancelRequested: boolean;
  progress: { phase?: string; total?: number; retained?: number; deleted?: number; failed?: number } | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  outcomes?: Record<string, number>;
  log?: { time: string; level: string; message: string }[];
}

/** One decision of a run. */
export interface ItemView {
  repository: string;
  digest: string;
  outcome: string;
  tags: string[];
  basis: string | null;
  rule: number | null;
  reason: string;
  error?: string;
}

const OUTCOMES = ['retained', 'deleted', 'would-delete', 'failed', 'pending'];
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** The flags that describe a one-rule policy. */
interface RuleFlags {
  file?: string;
  keepLast?: string;
  keepPulled?: string;
  keepDays?: string;
  keepPulledDays?: string;
  keepAll?: boolean;
  repo?: string;
  notRepo?: string;
  tag?: string;
  notTag?: string;
  untagged?: boolean;
  cron?: string;
}

/**
 * The one rule the flags describe (`--keep-last 10 --repo 'app/**' --tag 'v*'`), or undefined when
 * no retain flag is given. Exactly one retain flag; a pattern and its `--not-` form exclude each other.
 */
export function ruleFromFlags(flags: RuleFlags): Rule | undefined {
  const retains: Retain[] = [];
  if (flags.keepLast !== undefined) retains.push({ kind: 'latestPushed', count: parseInteger(flags.keepLast, '--keep-last', 1) });
  if (flags.keepPulled !== undefined) retains.push({ kind: 'latestPulled', count: parseInteger(flags.keepPulled, '--keep-pulled', 1) });
  if (flags.keepDays !== undefined) retains.push({ kind: 'pushedWithinDays', days: parseInteger(flags.keepDays, '--keep-days', 1) });
  if (flags.keepPulledDays !== undefined) retains.push({ kind: 'pulledWithinDays', days: parseInteger(flags.keepPulledDays, '--keep-pulled-days', 1) });
  if (flags.keepAll) retains.push({ kind: 'always' });
  if (retains.length === 0) {
    if (flags.repo ?? flags.notRepo ?? flags.tag ?? flags.notTag ?? flags.untagged) throw new CliError('say what the rule keeps: --keep-last, --keep-pulled, --keep-days, --keep-pulled-days or --keep-all');
    return undefined;
  }
  if (retains.length > 1) throw new CliError('give one of --keep-last, --keep-pulled, --keep-days, --keep-pulled-days, --keep-all (for several rules, use --file)');
  if (flags.repo !== undefined && flags.notRepo !== undefined) throw new CliError('give --repo or --not-repo, not both');
  if (flags.tag !== undefined && flags.notTag !== undefined) throw new CliError('give --tag or --not-tag, not both');
  return {
    repositories: { pattern: flags.notRepo ?? flags.repo ?? '**', exclude: flags.notRepo !== undefined },
    tags: { pattern: flags.notTag ?? flags.tag ?? '**', exclude: flags.notTag !== undefined },
    untagged: flags.untagged ?? false,
    retain: retains[0]!,
  };
}

/** The policy a file (or `-`: standard input) holds: `{ "rules": [...], "cron": "…" }`; extra fields of `show --json` are ignored. */
async function policyFromFile(file: string): Promise<{ rules: unknown; cron?: unknown }> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`--file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`--file ${file}: not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { rules?: unknown }).rules)) throw new CliError(`--file ${file}: a JSON object with a "rules" list, e.g. {"rules": [...], "cron": "0 3 * * *"}`);
  const { rules, cron } = value as { rules: unknown; cron?: unknown };
  return cron === undefined ? { rules } : { rules, cron };
}

function selectorText(s: Selector): string {
  return s.exclude ? `not ${s.pattern}` : s.pattern;
}

function retainText(r: Retain): string {
  switch (r.kind) {
    case 'latestPushed':
      return `last ${r.count} pushed`;
    case 'latestPulled':
      return `last ${r.count} pulled`;
    case 'pushedWithinDays':
      return `pushed within ${r.days}d`;
    case 'pulledWithinDays':
      return `pulled within ${r.days}d`;
    case 'always':
      return 'always';
  }
}

function printPolicy(policy: PolicyView): void {
  printTable(
    ['#', 'REPOSITORIES', 'TAGS', 'UNTAGGED', 'KEEP'],
    policy.rules.map((r, i) => [String(i + 1), selectorText(r.repositories), selectorText(r.tags), r.untagged ? 'yes' : 'no', retainText(r.retain)]),
  );
  console.log('');
  printFields([
    ['Schedule', policy.cron ? `${policy.cron} (UTC); next run ${formatTime(policy.nextRunAt)}` : 'none (manual runs only)'],
    ['Updated', `${formatTime(policy.updatedAt)}${policy.updatedBy ? ` by ${policy.updatedBy}` : ''}`],
  ]);
}

/** `12 kept, 3 deleted` / `12 kept, 3 would be deleted`, from a run's progress. */
function figures(run: RunView): string {
  const p = run.progress;
  if (!p || p.total === undefined) return '-';
  const failed = p.failed ? `, ${p.failed} failed` : '';
  return `${p.retained ?? 0} kept, ${p.deleted ?? 0} ${run.dryRun ? 'would be deleted' : 'deleted'}${failed}`;
}

/** Prints a run's decisions: one line per artifact with what happened and the rule that decided. */
function printItems(items: ItemView[]): void {
  const shown: Record<string, string> = { retained: 'kept', deleted: 'deleted', 'would-delete': 'would delete', failed: 'FAILED', pending: 'deleting' };
  printTable(
    ['OUTCOME', 'REPOSITORY', 'DIGEST', 'TAGS', 'DECIDED BY'],
    items.map((i) => [shown[i.outcome] ?? i.outcome, i.repository, shortDigest(i.digest), i.tags.join(',') || '-', i.error ? `${i.reason} (${i.error})` : i.reason]),
  );
}

async function waitFor(client: ApiClient, project: string, id: number): Promise<RunView> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    const run = await client.get<RunView>(`/projects/${segment(project)}/retention/runs/${id}`);
    if (FINAL.has(run.state)) return run;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** `berth retention show|set|clear|run|history|items`, over /api/v1/projects/{project}/retention. */
export function retentionCommand(program: Command): void {
  const retention = program.command('retention').description("tag retention: a project's rules for which artifacts to keep; runs delete the rest (dry runs first)");
  const base = (project: string) => `/projects/${segment(project)}/retention`;

  withCommon(retention.command('show <project>').description("show the project's retention policy"))
    .action(async (project: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const policy = await client.get<PolicyView>(base(project));
      if (opts.json) return printJSON(policy);
      printPolicy(policy);
    });

  withCommon(
    retention
      .command('set <project>')
      .description('set the policy: from a JSON file (--file), or one rule from flags, e.g. --keep-last 10 --tag "v*"')
      .addHelpText(
        'after',
        '\nExamples:\n  berth retention set team --keep-last 10                      keep the 10 newest artifacts of every repository\n  berth retention set team --keep-days 30 --repo "ci/**" --untagged --cron "0 3 * * *"\n  berth retention set team --file policy.json                 up to 15 rules: {"rules": [...], "cron": "0 3 * * *"}',
      ),
  )
    .option('--file <file>', 'the policy as JSON ("-": standard input)')
    .option('--keep-last <n>', 'keep the N most recently pushed artifacts of each repository')
    .option('--keep-pulled <n>', 'keep the N most recently pulled artifacts of each repository')
    .option('--keep-days <days>', 'keep artifacts pushed within N days')
    .option('--keep-pulled-days <days>', 'keep artifacts pulled within N days')
    .option('--keep-all', 'keep every artifact the rule selects')
    .option('--repo <pattern>', 'repositories (path within the project) matching this glob (default **)')
    .option('--not-repo <pattern>', 'repositories NOT matching this glob')
    .option('--tag <pattern>', 'artifacts with a tag matching this glob (default **)')
    .option('--not-tag <pattern>', 'artifacts with a tag NOT matching this glob')
    .option('--untagged', 'the rule also selects untagged artifacts (without it they are deleted in the repositories the rule selects)')
    .option('--cron <expression>', 'run on this schedule (UTC, at most hourly), e.g. "0 3 * * *"; "none" for manual runs only')
    .action(async (project: string, opts: CommonFlags & RuleFlags) => {
      const rule = ruleFromFlags(opts);
      if (rule && opts.file !== undefined) throw new CliError('give --file or the flags of one rule, not both');
      if (!rule && opts.file === undefined) throw new CliError('give --file policy.json, or one rule with flags such as --keep-last 10 (see --help)');
      const fromFile = opts.file !== undefined ? await policyFromFile(opts.file) : { rules: [rule] };
      const cron = opts.cron === undefined ? fromFile.cron : /^none$/i.test(opts.cron) ? null : opts.cron;
      const { client } = await loggedInClient(opts.url);
      const policy = await client.put<PolicyView>(base(project), { rules: fromFile.rules, ...(cron !== undefined ? { cron } : {}) });
      if (opts.json) return printJSON(policy);
      console.log(`set the retention policy of ${policy.project} (${policy.rules.length} ${policy.rules.length === 1 ? 'rule' : 'rules'}); try it with: berth retention run ${policy.project} --dry-run --wait`);
      printPolicy(policy);
    });

  withCommon(retention.command('clear <project>').description('remove the policy and its schedule'))
    .action(async (project: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      await client.delete(base(project));
      if (opts.json) return printJSON({ project, cleared: true });
      console.log(`removed the retention policy of ${project}`);
    });

  withCommon(retention.command('run <project>').description('run the policy now (--dry-run: only report what it would delete)'))
    .option('--dry-run', 'delete nothing: report what a run would delete')
    .option('--wait', 'wait for the run to end and print each artifact kept or deleted, with the rule that decided')
    .action(async (project: string, opts: CommonFlags & { dryRun?: boolean; wait?: boolean }) => {
      const { client } = await loggedInClient(opts.url);
      const started = await client.post<RunView>(`${base(project)}/runs`, { dryRun: opts.dryRun ?? false });
      if (!opts.wait) {
        if (opts.json) return printJSON(started);
        console.log(`started ${opts.dryRun ? 'dry run' : 'run'} ${started.id}; follow it with: berth retention history ${project}, or berth retention items ${project} ${started.id}`);
        return;
      }
      const run = await waitFor(client, project, started.id);
      const { items } = await client.list<ItemView>(`${base(project)}/runs/${run.id}/items`);
      if (opts.json) return printJSON({ run, items });
      printItems(items);
      console.log(`\n${run.dryRun ? 'dry run' : 'run'} ${run.id} ${run.state}: ${figures(run)}`);
      if (run.state !== 'succeeded') throw new CliError(`retention run ${run.id} ${run.state}${run.error ? `: ${run.error}` : ''}`);
    });

  withCommon(retention.command('history <project>').description("the project's retention runs, newest first"))
    .option('--limit <n>', 'at most this many runs', '20')
    .action(async (project: string, opts: CommonFlags & { limit: string }) => {
      const limit = parseInteger(opts.limit, '--limit', 1);
      const { client } = await loggedInClient(opts.url);
      const { items, total } = await client.list<RunView>(`${base(project)}/runs`, {}, limit);
      if (opts.json) return printJSON(items);
      printTable(
        ['ID', 'CREATED', 'TRIGGER', 'MODE', 'STATE', 'RESULT'],
        items.map((r) => [String(r.id), formatTime(r.createdAt), r.trigger, r.dryRun ? 'dry run' : 'delete', r.state === 'running' && r.cancelRequested ? 'running (cancelling)' : r.state, r.error ?? figures(r)]),
      );
      if (total > items.length) process.stderr.write(`(${items.length} of ${total} runs; --limit for more)\n`);
    });

  withCommon(retention.command('items <project> <run>').description("a run's decisions: each artifact kept or deleted and the rule that decided"))
    .option('--outcome <outcome>', `only these: ${OUTCOMES.join(', ')}`)
    .action(async (project: string, run: string, opts: CommonFlags & { outcome?: string }) => {
      const id = parseInteger(run, 'run id', 1);
      if (opts.outcome !== undefined && !OUTCOMES.includes(opts.outcome)) throw new CliError(`--outcome: one of ${OUTCOMES.join(', ')}, not "${opts.outcome}"`);
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<ItemView>(`${base(project)}/runs/${id}/items`, { outcome: opts.outcome });
      if (opts.json) return printJSON(items);
      printItems(items);
    });
}
