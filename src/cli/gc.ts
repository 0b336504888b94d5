import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiClient, type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { formatBytes, formatTime, parseInteger, printFields, printJSON, shortDigest } from './format.ts';
import { CliError, printTable } from './output.ts';
import { PHASES, type GcFigures } from '../lifecycle/gc/figures.ts';

/** A run's figures as the API shows them (the job's progress); a phase not reported yet may be absent. */
type FiguresView = Omit<GcFigures, 'phases'> & { phases: Partial<GcFigures['phases']> };

/** A run as the API describes it. */
interface RunView {
  id: number;
  state: string;
  dryRun: boolean;
  deleteUntagged: boolean;
  trigger: string;
  attempts: number;
  maxAttempts: number;
  cancelRequested: boolean;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  figures: FiguresView | null;
}

interface ScheduleView {
  cron: string | null;
  deleteUntagged: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** 75 → `1m15s`, 3725 → `1h2m`. */
function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function mode(run: RunView): string {
  return `${run.dryRun ? 'dry run' : 'real'}${run.deleteUntagged ? ' +untagged' : ''}`;
}

function stateOf(run: RunView): string {
  if (run.state === 'running' && run.cancelRequested) return 'running (cancelling)';
  if (run.state === 'queued' && run.attempts > 0) return `queued (retry ${run.attempts + 1}/${run.maxAttempts})`;
  return run.state;
}

/** The one line `--wait` keeps rewriting: phase, examined, deleted, freed, ETA. */
function progressLine(run: RunView): string {
  const f = run.figures;
  if (!f) return `run ${run.id}: ${stateOf(run)}`;
  const deleted = f.blobsDeleted + f.orphansDeleted;
  const verb = run.dryRun ? 'would delete' : 'deleted';
  const eta = f.eta ? `, ${f.eta.phase} ETA ${formatSeconds(f.eta.seconds)}` : '';
  return `run ${run.id}: ${stateOf(run)}, phase ${f.phase}: examined ${f.examined}, ${verb} ${deleted} blobs, ${f.manifestsDeleted} manifests, ${f.uploadsDeleted} uploads, ${formatBytes(f.bytesFreed)}${eta}`;
}

/** What a finished run did, in a few lines. */
function printSummary(run: RunView): void {
  const f = run.figures;
  const verb = run.dryRun ? 'would delete' : 'deleted';
  console.log(`garbage collection run ${run.id} (${mode(run)}) ${stateOf(run)}${f ? ` in ${formatSeconds(f.durationSeconds)}` : ''}`);
  if (run.error) console.log(`  error: ${run.error}`);
  if (!f) return;
  console.log(`  ${verb}: ${f.blobsDeleted} blobs, ${f.manifestsDeleted} untagged manifests, ${f.uploadsDeleted} uploads, ${f.orphansDeleted} orphaned objects — ${formatBytes(f.bytesFreed)}`);
  const quota = Object.entries(f.quotaReleased);
  if (quota.length > 0) console.log(`  quota released: ${quota.map(([project, bytes]) => `${project} ${formatBytes(bytes)}`).join(', ')}`);
  const g = f.withinGrace;
  if (g.blobs + g.manifests + g.orphans > 0) {
    console.log(`  kept inside the grace period (${formatSeconds(f.graceSeconds)}): ${g.blobs} blobs (${formatBytes(g.bytes)}), ${g.manifests} untagged manifests, ${g.orphans} orphaned objects${g.collectableAt ? `; collectable from ${formatTime(g.collectableAt)}` : ''}`);
  }
}

/** Polls run `id` until it ends, rewriting one progress line on a terminal; returns the final run. */
async function follow(client: ApiClient, id: number, live: boolean): Promise<RunView> {
  let width = 0;
  for (;;) {
    const run = await client.get<RunView>(`/system/gc/${id}`);
    if (live) {
      const line = progressLine(run).slice(0, (process.stderr.columns || 120) - 1);
      process.stderr.write(`\r${line.padEnd(width)}`);
      width = line.length;
    }
    if (FINAL.has(run.state)) {
      if (live) process.stderr.write('\n');
      return run;
    }
    await sleep(1000);
  }
}

function runId(text: string): number {
  return parseInteger(text, 'run id', 1);
}

/** `berth gc run|history|show|log|cancel|schedule`: garbage collection over /api/v1/system/gc (system administrators). */
export function gcCommand(program: Command): void {
  const gc = program.command('gc').description('garbage collection: reclaim storage online (pushes go on); system administrators');

  withCommon(gc.command('run').description('start a garbage collection run'))
    .option('--dry-run', 'report what a run would delete; delete nothing')
    .option('--delete-untagged', 'also delete untagged manifests (never the children of a tagged index)')
    .option('--wait', 'follow the run to its end (exit code 1 unless it succeeds)')
    .action(async (opts: CommonFlags & { dryRun?: boolean; deleteUntagged?: boolean; wait?: boolean }) => {
      const { client } = await loggedInClient(opts.url);
      const started = await client.post<RunView>('/system/gc', { dryRun: Boolean(opts.dryRun), deleteUntagged: Boolean(opts.deleteUntagged) });
      if (!opts.wait) {
        if (opts.json) return printJSON(started);
        console.log(`started garbage collection run ${started.id} (${mode(started)}); follow it with: berth gc show ${started.id}`);
        return;
      }
      const run = await follow(client, started.id, !opts.json && Boolean(process.stderr.isTTY));
      if (opts.json) printJSON(run);
      else printSummary(run);
      if (run.state !== 'succeeded') throw new CliError(`garbage collection run ${run.id} ${run.state}${run.error ? `: ${run.error}` : ''}`);
    });

  withCommon(gc.command('history').description('garbage collection runs, newest first, with their figures'))
    .option('--limit <n>', 'at most this many runs', '20')
    .action(async (opts: CommonFlags & { limit: string }) => {
      const limit = parseInteger(opts.limit, '--limit', 1);
      const { client } = await loggedInClient(opts.url);
      const { items, total } = await client.list<RunView>('/system/gc', {}, limit);
      if (opts.json) return printJSON(items);
      printTable(
        ['ID', 'STATE', 'MODE', 'TRIGGER', 'STARTED', 'DURATION', 'BLOBS', 'MANIFESTS', 'UPLOADS', 'ORPHANS', 'FREED'],
        items.map((r) => {
          const f = r.figures;
          return [String(r.id), stateOf(r), mode(r), r.trigger, formatTime(r.startedAt ?? r.createdAt), formatSeconds(f?.durationSeconds), String(f?.blobsDeleted ?? '-'), String(f?.manifestsDeleted ?? '-'), String(f?.uploadsDeleted ?? '-'), String(f?.orphansDeleted ?? '-'), f ? formatBytes(f.bytesFreed) : '-'];
        }),
      );
      if (total > items.length) process.stderr.write(`(${items.length} of ${total} runs; --limit for more)\n`);
    });

  withCommon(gc.command('show <id>').description('one run: state, figures phase by phase, ETA'))
    .action(async (id: string, opts: CommonFlags) => {
      const n = runId(id);
      const { client } = await loggedInClient(opts.url);
      const run = await client.get<RunView>(`/system/gc/${n}`);
      if (opts.json) return printJSON(run);
      const f = run.figures;
      printFields([
        ['ID', String(run.id)],
        ['State', stateOf(run)],
        ['Mode', mode(run)],
        ['Trigger', run.trigger],
        ['Attempts', `${run.attempts} of ${run.maxAttempts}`],
        ['Created', formatTime(run.createdAt)],
        ['Started', formatTime(run.startedAt)],
        ['Finished', formatTime(run.finishedAt)],
        ['Grace', f ? `${formatSeconds(f.graceSeconds)} (content untouched since ${formatTime(f.cutoff)})` : '-'],
        ['Phase', f ? f.phase : '-'],
        ['ETA', f?.eta ? `${formatSeconds(f.eta.seconds)} (${f.eta.phase}, ${formatTime(f.eta.at)})` : '-'],
        ['Error', run.error ?? '-'],
      ]);
      if (!f) return;
      console.log('');
      printSummary(run);
      console.log('');
      printTable(
        ['PHASE', 'STATE', 'EXAMINED', run.dryRun ? 'WOULD DELETE' : 'DELETED', 'BYTES', 'SAMPLE'],
        PHASES.flatMap((name) => {
          const p = f.phases[name];
          return p ? [[name, p.state, String(p.examined), String(p.deleted), formatBytes(p.bytes), p.sample.slice(0, 3).map((s) => s.replace(/sha256:[0-9a-f]{64}/, shortDigest)).join(' ') || '-']] : [];
        }),
      );
    });

  withCommon(gc.command('log <id>').description("a run's log, oldest line first"))
    .option('--offset <n>', 'lines to skip', '0')
    .option('--limit <n>', 'lines to show', '100')
    .action(async (id: string, opts: CommonFlags & { offset: string; limit: string }) => {
      const n = runId(id);
      const offset = parseInteger(opts.offset, '--offset', 0);
      const limit = parseInteger(opts.limit, '--limit', 1);
      const { client } = await loggedInClient(opts.url);
      const page = await client.get<{ items: { time: string; level: string; message: string }[]; total: number }>(`/system/gc/${n}/log`, { offset, limit });
      if (opts.json) return printJSON(page);
      for (const line of page.items) console.log(`${formatTime(line.time)}  ${line.level.padEnd(5)}  ${line.message}`);
      if (offset + page.items.length < page.total) process.stderr.write(`(lines ${offset + 1}-${offset + page.items.length} of ${page.total}; --offset ${offset + page.items.length} for more)\n`);
    });

  withCommon(gc.command('cancel <id>').description('cancel a run: a queued one at once, a running one after its current batch'))
    .action(async (id: string, opts: CommonFlags) => {
      const n = runId(id);
      const { client } = await loggedInClient(opts.url);
      const run = await client.post<RunView>(`/system/gc/${n}/cancel`);
      if (opts.json) return printJSON(run);
      console.log(run.state === 'cancelled' ? `cancelled garbage collection run ${run.id}` : `asked garbage collection run ${run.id} to stop; it ends cancelled after its current batch`);
    });

  withCommon(gc.command('schedule [cron]').description('show the schedule, set it (a cron expression, UTC, at most hourly) or turn it off'))
    .option('--off', 'turn the schedule off')
    .option('--delete-untagged', 'scheduled runs also delete untagged manifests')
    .action(async (cron: string | undefined, opts: CommonFlags & { off?: boolean; deleteUntagged?: boolean }) => {
      if (cron !== undefined && opts.off) throw new CliError('give a cron expression or --off, not both');
      const { client } = await loggedInClient(opts.url);
      const changing = cron !== undefined || Boolean(opts.off);
      if (!changing && opts.deleteUntagged) throw new CliError('--delete-untagged goes with a cron expression, e.g. berth gc schedule "0 3 * * 0" --delete-untagged');
      const schedule = changing
        ? await client.put<ScheduleView>('/system/gc/schedule', { cron: opts.off ? null : cron, deleteUntagged: Boolean(opts.deleteUntagged) })
        : await client.get<ScheduleView>('/system/gc/schedule');
      if (opts.json) return printJSON(schedule);
      if (schedule.cron === null) console.log(`no schedule: garbage collection runs when started (berth gc run)${schedule.lastRunAt ? `; last scheduled run ${formatTime(schedule.lastRunAt)}` : ''}`);
      else {
        printFields([
          ['Cron', `${schedule.cron} (UTC)`],
          ['Untagged', schedule.deleteUntagged ? 'deleted' : 'kept'],
          ['Next run', formatTime(schedule.nextRunAt)],
          ['Last run', formatTime(schedule.lastRunAt)],
        ]);
      }
    });
}
