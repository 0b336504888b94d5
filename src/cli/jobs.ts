import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { formatTime, parseInteger, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** A job as the API describes it. */
export interface JobView {
  id: number;
  kind: string;
  state: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  runAt: string;
  leaseOwner: string | null;
  leaseUntil: string | null;
  progress: unknown;
  error: string | null;
  cancelRequested: boolean;
  dedupeKey: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  log?: { time: string; level: string; message: string }[];
}

/** `running (cancelling)`, `queued (retry 2/3)`: the state with what is about to happen to it. */
export function stateText(job: JobView): string {
  if (job.state === 'running' && job.cancelRequested) return 'running (cancelling)';
  if (job.state === 'queued' && job.attempts > 0) return `queued (retry ${job.attempts + 1}/${job.maxAttempts})`;
  return job.state;
}

/** A job id as typed: a positive whole number. */
function jobId(text: string): number {
  return parseInteger(text, 'job id', 1);
}

/** Compact JSON for a table cell or field; `-` for nothing. */
function compact(value: unknown): string {
  if (value === null || value === undefined) return '-';
  const text = JSON.stringify(value);
  return text === '{}' ? '-' : text;
}

/** `berth jobs list|show|cancel`: the background jobs of every replica, over /api/v1/jobs (system administrators). */
export function jobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('background jobs (upload expiry, housekeeping…): list, show, cancel; system administrators');

  withCommon(jobs.command('list').description('list jobs, newest first'))
    .option('--state <state>', `only jobs in this state: ${STATES.join(', ')}`)
    .option('--kind <kind>', 'only jobs of this kind, e.g. upload-expiry')
    .option('--limit <n>', 'at most this many jobs', '50')
    .action(async (opts: CommonFlags & { state?: string; kind?: string; limit: string }) => {
      if (opts.state !== undefined && !STATES.includes(opts.state)) throw new CliError(`--state: one of ${STATES.join(', ')}, not "${opts.state}"`);
      const limit = parseInteger(opts.limit, '--limit', 1);
      const { client } = await loggedInClient(opts.url);
      const { items, total } = await client.list<JobView>('/jobs', { state: opts.state, kind: opts.kind }, limit);
      if (opts.json) return printJSON(items);
      printTable(
        ['ID', 'KIND', 'STATE', 'ATTEMPTS', 'CREATED', 'FINISHED', 'PROGRESS', 'ERROR'],
        items.map((j) => [String(j.id), j.kind, stateText(j), `${j.attempts}/${j.maxAttempts}`, formatTime(j.createdAt), formatTime(j.finishedAt), compact(j.progress), j.error ?? '-']),
      );
      if (total > items.length) process.stderr.write(`(${items.length} of ${total} jobs; --limit, --state or --kind for others)\n`);
    });

  withCommon(jobs.command('show <id>').description('one job with its log'))
    .action(async (id: string, opts: CommonFlags) => {
      const n = jobId(id);
      const { client } = await loggedInClient(opts.url);
      const job = await client.get<JobView>(`/jobs/${n}`);
      if (opts.json) return printJSON(job);
      printFields([
        ['ID', String(job.id)],
        ['Kind', job.kind],
        ['State', stateText(job)],
        ['Attempts', `${job.attempts} of ${job.maxAttempts}`],
        ['Payload', compact(job.payload)],
        ['Progress', compact(job.progress)],
        ['Error', job.error ?? '-'],
        ['Created', formatTime(job.createdAt)],
        ['Runs at', formatTime(job.runAt)],
        ['Started', formatTime(job.startedAt)],
        ['Finished', formatTime(job.finishedAt)],
        ['Lease', job.leaseOwner ? `${job.leaseOwner} until ${formatTime(job.leaseUntil)}` : '-'],
        ['Dedupe key', job.dedupeKey ?? '-'],
      ]);
      const lines = job.log ?? [];
      console.log(lines.length === 0 ? '\nLog: (empty)' : '\nLog:');
      for (const line of lines) console.log(`  ${formatTime(line.time)}  ${line.level.padEnd(5)}  ${line.message}`);
    });

  withCommon(jobs.command('cancel <id>').description('cancel a job: a queued one at once, a running one at its next heartbeat'))
    .action(async (id: string, opts: CommonFlags) => {
      const n = jobId(id);
      const { client } = await loggedInClient(opts.url);
      const job = await client.post<JobView>(`/jobs/${n}/cancel`);
      if (opts.json) return printJSON(job);
      console.log(job.state === 'cancelled' ? `cancelled job ${job.id} (${job.kind})` : `asked job ${job.id} (${job.kind}) to stop; it ends cancelled at its next heartbeat`);
    });
}
