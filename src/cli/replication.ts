import type { Command } from 'commander';
import { parseSize } from '../diagnose/doctor/size.ts';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatBytes, formatTime, parseInteger, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

interface Selector {
  pattern: string;
  exclude: boolean;
}

/** A rule as the API describes it. */
export interface RuleView {
  name: string;
  description: string | null;
  registry: string;
  direction: 'push' | 'pull';
  filters: { repositories: Selector[]; tags: Selector[]; artifactTypes?: string[] };
  destination: { mode: 'keep' | 'replace' | 'flatten'; namespace?: string; levels?: number };
  trigger: 'manual' | 'schedule' | 'event';
  cron: string | null;
  nextRunAt: string | null;
  replicateDeletes: boolean;
  override: boolean;
  bandwidth: number | null;
  concurrency: number;
  enabled: boolean;
  text: string;
  createdBy: string | null;
  createdAt: string;
  updatedBy: string | null;
  updatedAt: string;
}

/** An execution as the API describes it. */
export interface ExecutionView {
  id: number;
  rule: string | null;
  trigger: string;
  state: string;
  cancelRequested: boolean;
  progress: { phase?: string; total?: number; copied?: number; skipped?: number; diverged?: number; deleted?: number; failed?: number; bytes?: number } | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  outcomes?: Record<string, number>;
  coalesced?: boolean;
}

/** One task of an execution. */
export interface TaskView {
  subject: string;
  outcome: string;
  destination: string | null;
  digest: string | null;
  destinationDigest?: string;
  bytes?: number;
  blobsCopied?: number;
  blobsMounted?: number;
  blobsSkipped?: number;
  durationMs: number | null;
  attempts: number | null;
  error?: string;
  note?: string;
}

const OUTCOMES = ['copied', 'skipped', 'diverged', 'deleted', 'failed'];
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Flags of `create` and `update`. */
interface RuleFlags {
  registry?: string;
  push?: boolean;
  pull?: boolean;
  repo: string[];
  notRepo: string[];
  tag: string[];
  notTag: string[];
  type: string[];
  namespace?: string;
  flatten?: string;
  keepNames?: boolean;
  cron?: string;
  onPush?: boolean;
  manual?: boolean;
  replicateDeletes?: boolean;
  override?: boolean;
  bandwidth?: string;
  concurrency?: string;
  enabled?: boolean;
  description?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function ruleOptions(cmd: Command, creating: boolean): Command {
  return withCommon(cmd)
    .option('--registry <endpoint>', `the registry endpoint (berth registry list)${creating ? ' (required)' : ''}`)
    .option('--push', 'copy from this Berth to the registry')
    .option('--pull', 'copy from the registry into this Berth (into existing projects)')
    .option('--repo <pattern>', 'only source repositories matching this glob, e.g. "team/**" (repeatable: all must match)', collect, [])
    .option('--not-repo <pattern>', 'leave out repositories matching this glob (repeatable)', collect, [])
    .option('--tag <pattern>', 'only tags matching this glob, e.g. "v*" (repeatable)', collect, [])
    .option('--not-tag <pattern>', 'leave out tags matching this glob (repeatable)', collect, [])
    .option('--type <type>', 'only these artifacts: image, index, or a media type (repeatable)', collect, [])
    .option('--namespace <ns>', 'destination namespace: replaces the first segment of each name (with --flatten: put before what is left)')
    .option('--flatten <levels>', 'drop the first N segments of each name (never the last)')
    .option('--keep-names', 'destination names as at the source (undo --namespace / --flatten)')
    .option('--cron <expression>', 'run on this schedule (UTC), e.g. "0 2 * * *"')
    .option('--on-push', 'run on each push here (push rules only)')
    .option('--manual', 'run only when asked (berth replication run)')
    .option('--replicate-deletes', 'with --on-push: deleting here deletes at the destination too')
    .option('--no-replicate-deletes', 'do not repeat deletions')
    .option('--override', 'overwrite destination tags that point elsewhere (the default)')
    .option('--no-override', 'leave destination tags that point elsewhere alone (reported as diverged)')
    .option('--bandwidth <rate>', 'at most this many bytes per second, e.g. 10M, 512k ("unlimited" to lift)')
    .option('--concurrency <n>', 'artifacts (and blobs of each) copied at once, 1-32 (default 4)')
    .option('--enabled', 'enable the rule')
    .option('--disabled', 'disable the rule (no scheduled or event executions)')
    .option('--description <text>', 'what it is for');
}

function selectors(include: string[], exclude: string[]): Selector[] | undefined {
  if (include.length === 0 && exclude.length === 0) return undefined;
  return [...include.map((pattern) => ({ pattern, exclude: false })), ...exclude.map((pattern) => ({ pattern, exclude: true }))];
}

/** The API body the flags describe (absent flags left out). */
export function bodyFromFlags(opts: RuleFlags & { disabled?: boolean }, current?: RuleView): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (opts.push && opts.pull) throw new CliError('--push and --pull: pick one');
  if (opts.push) body.direction = 'push';
  if (opts.pull) body.direction = 'pull';
  if (opts.registry !== undefined) body.registry = opts.registry;
  const repositories = selectors(opts.repo, opts.notRepo);
  const tags = selectors(opts.tag, opts.notTag);
  if (repositories || tags || opts.type.length > 0) {
    const base = current?.filters ?? { repositories: [], tags: [] };
    body.filters = {
      repositories: repositories ?? base.repositories,
      tags: tags ?? base.tags,
      ...(opts.type.length > 0 ? { artifactTypes: opts.type } : base.artifactTypes ? { artifactTypes: base.artifactTypes } : {}),
    };
  }
  if (opts.keepNames && (opts.namespace !== undefined || opts.flatten !== undefined)) throw new CliError('--keep-names: give no --namespace or --flatten with it');
  if (opts.keepNames) body.destination = { mode: 'keep' };
  else if (opts.flatten !== undefined) body.destination = { mode: 'flatten', levels: parseInteger(opts.flatten, '--flatten', 1), ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}) };
  else if (opts.namespace !== undefined) body.destination = { mode: 'replace', namespace: opts.namespace };
  const triggers = [opts.cron !== undefined, Boolean(opts.onPush), Boolean(opts.manual)].filter(Boolean).length;
  if (triggers > 1) throw new CliError('--cron, --on-push and --manual: pick one');
  if (opts.cron !== undefined) Object.assign(body, { trigger: 'schedule', cron: opts.cron });
  if (opts.onPush) body.trigger = 'event';
  if (opts.manual) body.trigger = 'manual';
  if (opts.replicateDeletes !== undefined) body.replicateDeletes = opts.replicateDeletes;
  if (opts.override !== undefined) body.override = opts.override;
  if (opts.bandwidth !== undefined) {
    const text = opts.bandwidth.replace(/\/s$/i, '');
    if (/^(unlimited|none)$/i.test(text)) body.bandwidth = null;
    else {
      try {
        body.bandwidth = parseSize(text);
      } catch {
        throw new CliError('--bandwidth: a rate such as 10M, 512k or 1048576 (bytes per second), or "unlimited"');
      }
    }
  }
  if (opts.concurrency !== undefined) body.concurrency = parseInteger(opts.concurrency, '--concurrency', 1);
  if (opts.enabled && opts.disabled) throw new CliError('--enabled and --disabled: pick one');
  if (opts.enabled) body.enabled = true;
  if (opts.disabled) body.enabled = false;
  if (opts.description !== undefined) body.description = opts.description;
  return body;
}

function selectorText(list: Selector[]): string {
  return list.length === 0 ? '**' : list.map((s) => `${s.exclude ? 'not ' : ''}${s.pattern}`).join(', ');
}

function triggerText(r: RuleView): string {
  if (r.trigger === 'schedule') return `schedule ${r.cron}`;
  if (r.trigger === 'event') return r.replicateDeletes ? 'on push and delete' : 'on push';
  return 'manual';
}

function destinationText(r: RuleView): string {
  const d = r.destination;
  if (d.mode === 'keep') return 'names kept';
  if (d.mode === 'replace') return `first segment → ${d.namespace}`;
  return `drop ${d.levels} segment(s)${d.namespace ? `, under ${d.namespace}` : ''}`;
}

function printRule(r: RuleView): void {
  printFields([
    ['Name', r.name],
    ['Direction', r.direction === 'push' ? `push to ${r.registry}` : `pull from ${r.registry}`],
    ['Repositories', selectorText(r.filters.repositories)],
    ['Tags', selectorText(r.filters.tags)],
    ['Artifact types', r.filters.artifactTypes?.join(', ') ?? 'all'],
    ['Destination', destinationText(r)],
    ['Trigger', `${triggerText(r)}${r.nextRunAt ? ` (next ${formatTime(r.nextRunAt)})` : ''}`],
    ['Override', r.override ? 'yes: differing destination tags are overwritten' : 'no: differing destination tags are left and reported'],
    ['Bandwidth', r.bandwidth ? `${formatBytes(r.bandwidth)}/s` : 'unlimited'],
    ['Concurrency', String(r.concurrency)],
    ['Enabled', r.enabled ? 'yes' : 'no'],
    ['Description', r.description ?? '-'],
    ['In words', r.text],
    ['Updated', `${formatTime(r.updatedAt)}${r.updatedBy ? ` by ${r.updatedBy}` : ''}`],
  ]);
}

/** `3 copied, 10 up to date, 1 failed, 12 MiB`, from an execution's progress. */
export function figuresText(e: ExecutionView): string {
  const p = e.progress;
  if (!p || p.total === undefined) return '-';
  const parts = [`${p.copied ?? 0} copied`, `${p.skipped ?? 0} up to date`];
  if (p.diverged) parts.push(`${p.diverged} diverged`);
  if (p.deleted) parts.push(`${p.deleted} deleted`);
  if (p.failed) parts.push(`${p.failed} failed`);
  parts.push(formatBytes(p.bytes ?? 0));
  return parts.join(', ');
}

function printTasks(tasks: TaskView[]): void {
  printTable(
    ['OUTCOME', 'SOURCE', 'DESTINATION', 'BLOBS', 'BYTES', 'TIME', 'DETAIL'],
    tasks.map((t) => [
      t.outcome,
      t.subject,
      t.destination ?? '-',
      t.blobsCopied === undefined ? '-' : `${t.blobsCopied} copied${t.blobsMounted ? `, ${t.blobsMounted} mounted` : ''}${t.blobsSkipped ? `, ${t.blobsSkipped} present` : ''}`,
      t.bytes === undefined ? '-' : formatBytes(t.bytes),
      t.durationMs === null ? '-' : `${(t.durationMs / 1000).toFixed(1)} s`,
      t.error ?? (t.destinationDigest ? `destination has ${t.destinationDigest}` : (t.note ?? '')),
    ]),
  );
}

async function follow(client: ApiClient, id: number, quiet: boolean): Promise<ExecutionView> {
  let shown = '';
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    const e = await client.get<ExecutionView>(`/replication/executions/${id}`);
    const figures = figuresText(e);
    const line = `${e.state}${e.progress?.phase ? ` (${e.progress.phase})` : ''}${figures === '-' ? '' : `: ${figures}`}`;
    if (!quiet && line !== shown && !FINAL.has(e.state)) process.stderr.write(`${line}\n`);
    shown = line;
    if (FINAL.has(e.state)) return e;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** `berth replication create|list|show|update|delete|run|executions|logs`, over /api/v1/replication (system administrators). */
export function replicationCommand(program: Command): void {
  const cmd = program.command('replication').description('replication rules: copy artifacts to (push) or from (pull) another registry, on demand, on a schedule or on each push — system administrators');
  const rule = (name: string) => `/replication/rules/${segment(name)}`;

  ruleOptions(
    cmd
      .command('create <name>')
      .description('create a rule')
      .addHelpText(
        'after',
        '\nExamples:\n  berth replication create to-dr --registry dr-site --push --repo "team/**" --on-push\n  berth replication create vendor --registry hub --pull --repo library/alpine --tag "3.*" --namespace mirror --cron "0 3 * * *"\n  berth replication create flat --registry dist --push --flatten 1 --namespace copies --no-override --bandwidth 10M',
      ),
    true,
  ).action(async (name: string, opts: CommonFlags & RuleFlags & { disabled?: boolean }) => {
    if (opts.registry === undefined) throw new CliError('give --registry: the registry endpoint to push to or pull from (berth registry list)');
    if (!opts.push && !opts.pull) throw new CliError('give --push (this Berth → registry) or --pull (registry → this Berth)');
    const { client } = await loggedInClient(opts.url);
    const created = await client.post<RuleView>('/replication/rules', { name, ...bodyFromFlags(opts) });
    if (opts.json) return printJSON(created);
    console.log(`created replication rule "${created.name}": ${created.text}`);
  });

  withCommon(cmd.command('list').description('the replication rules')).action(async (opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const { items } = await client.list<RuleView>('/replication/rules');
    if (opts.json) return printJSON(items);
    printTable(
      ['NAME', 'DIRECTION', 'REGISTRY', 'REPOSITORIES', 'TAGS', 'TRIGGER', 'ENABLED'],
      items.map((r) => [r.name, r.direction, r.registry, selectorText(r.filters.repositories), selectorText(r.filters.tags), triggerText(r), r.enabled ? 'yes' : 'no']),
    );
  });

  withCommon(cmd.command('show <name>').description('a rule, in detail and in words')).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const r = await client.get<RuleView>(rule(name));
    if (opts.json) return printJSON(r);
    printRule(r);
  });

  ruleOptions(cmd.command('update <name>').description("change a rule (flags given replace what they describe; --repo etc. replace that pattern list)"), false).action(
    async (name: string, opts: CommonFlags & RuleFlags & { disabled?: boolean }) => {
      const { client } = await loggedInClient(opts.url);
      const current = opts.repo.length || opts.notRepo.length || opts.tag.length || opts.notTag.length || opts.type.length ? await client.get<RuleView>(rule(name)) : undefined;
      const body = bodyFromFlags(opts, current);
      if (Object.keys(body).length === 0) throw new CliError('nothing to change: give the flags to change (see --help)');
      const updated = await client.patch<RuleView>(rule(name), body);
      if (opts.json) return printJSON(updated);
      console.log(`updated replication rule "${updated.name}": ${updated.text}`);
    },
  );

  withCommon(cmd.command('delete <name>').description('delete a rule (its executions stay in the history)')).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    await client.delete(rule(name));
    if (opts.json) return printJSON({ name, deleted: true });
    console.log(`deleted replication rule "${name}"`);
  });

  withCommon(cmd.command('run <name>').description('run the rule now (a full pass: compares, then copies what differs)'))
    .option('--wait', 'follow the execution, print its tasks, and exit 1 when it failed')
    .action(async (name: string, opts: CommonFlags & { wait?: boolean }) => {
      const { client } = await loggedInClient(opts.url);
      const started = await client.post<ExecutionView>(`${rule(name)}/executions`, {});
      const joined = started.coalesced ? ` (an execution was already under way: it passes again in full before it ends)` : '';
      if (!opts.wait) {
        if (opts.json) return printJSON(started);
        console.log(`started execution ${started.id}${joined}; follow it with: berth replication logs ${started.id}`);
        return;
      }
      if (!opts.json) process.stderr.write(`execution ${started.id}${joined}\n`);
      const done = await follow(client, started.id, Boolean(opts.json));
      const { items } = await client.list<TaskView>(`/replication/executions/${done.id}/tasks`, { outcome: undefined }, 200);
      if (opts.json) printJSON({ execution: done, tasks: items });
      else {
        const changed = items.filter((t) => t.outcome !== 'skipped');
        if (changed.length > 0) {
          printTasks(changed);
          console.log('');
        }
        console.log(`execution ${done.id} ${done.state}: ${figuresText(done)}`);
      }
      if (done.state !== 'succeeded') throw new CliError(`replication execution ${done.id} ${done.state}${done.error ? `: ${done.error}` : ''}`);
    });

  withCommon(cmd.command('executions <name>').description("the rule's executions, newest first"))
    .option('--limit <n>', 'at most this many', '20')
    .action(async (name: string, opts: CommonFlags & { limit: string }) => {
      const limit = parseInteger(opts.limit, '--limit', 1);
      const { client } = await loggedInClient(opts.url);
      const { items, total } = await client.list<ExecutionView>(`${rule(name)}/executions`, {}, limit);
      if (opts.json) return printJSON(items);
      printTable(
        ['ID', 'CREATED', 'TRIGGER', 'STATE', 'RESULT'],
        items.map((e) => [String(e.id), formatTime(e.createdAt), e.trigger, e.state === 'running' && e.cancelRequested ? 'running (cancelling)' : e.state, e.error ?? figuresText(e)]),
      );
      if (total > items.length) process.stderr.write(`(${items.length} of ${total} executions; --limit for more)\n`);
    });

  withCommon(cmd.command('logs <execution>').description("an execution's tasks (each artifact and what happened to it) and its log"))
    .option('--outcome <outcome>', `only tasks with this outcome: ${OUTCOMES.join(', ')}`)
    .action(async (execution: string, opts: CommonFlags & { outcome?: string }) => {
      const id = parseInteger(execution, 'execution id', 1);
      if (opts.outcome !== undefined && !OUTCOMES.includes(opts.outcome)) throw new CliError(`--outcome: one of ${OUTCOMES.join(', ')}`);
      const { client } = await loggedInClient(opts.url);
      const [e, tasks, log] = await Promise.all([
        client.get<ExecutionView>(`/replication/executions/${id}`),
        client.list<TaskView>(`/replication/executions/${id}/tasks`, { outcome: opts.outcome }),
        client.get<{ items: { time: string; level: string; message: string }[] }>(`/replication/executions/${id}/log`),
      ]);
      if (opts.json) return printJSON({ execution: e, tasks: tasks.items, log: log.items });
      console.log(`execution ${e.id} of ${e.rule ?? '(deleted rule)'} (${e.trigger}) ${e.state}: ${figuresText(e)}\n`);
      printTasks(tasks.items);
      console.log('');
      for (const line of log.items) console.log(`${formatTime(line.time)}  ${line.level.padEnd(5)}  ${line.message}`);
    });
}
