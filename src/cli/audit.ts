import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { formatBytes, formatTime, parseInteger, parseSince, printJSON, shortDigest } from './format.ts';
import { printTable } from './output.ts';

/** One audit event as the API returns it. */
export interface AuditEvent {
  time: string;
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  project: string | null;
  client: string | null;
  success: boolean;
  detail: Record<string, unknown> | null;
}

interface AuditFlags extends CommonFlags {
  actor?: string;
  action?: string;
  project?: string;
  resource?: string;
  since?: string;
  until?: string;
  limit: string;
}

/** One detail value, short: digests cut to 12 hex digits, sizes readable, grants as `team:pull,push`. */
function detailValue(key: string, value: unknown): string {
  if (typeof value === 'string') {
    if (key.endsWith('At') && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return shortDigest(value);
  }
  if (typeof value === 'number' && key.endsWith('Bytes')) return formatBytes(value).replace(' ', '');
  if (Array.isArray(value) && value.every((v) => typeof v === 'object' && v !== null && 'project' in v && Array.isArray((v as { actions?: unknown }).actions))) {
    return (value as { project: string; actions: string[] }[]).map((g) => `${g.project}:${g.actions.join(',')}`).join(';');
  }
  return JSON.stringify(value);
}

/** `digest=sha256:0123456789ab role=developer`: the detail facts not already in the resource column. */
export function detailText(event: AuditEvent): string {
  return Object.entries(event.detail ?? {})
    .filter(([, value]) => value !== null && value !== undefined && !(typeof value === 'string' && event.resource.includes(value)))
    .map(([key, value]) => `${key}=${detailValue(key, value)}`)
    .join(' ');
}

/** `berth audit`: who did what, when and from where, newest first, over /api/v1/audit. */
export function auditCommand(program: Command): void {
  withCommon(program.command('audit').description('search the audit log: pushes, deletes, logins, permission and robot changes'))
    .option('--actor <name>', 'only events by this user or robot')
    .option('--action <action>', 'only this action, e.g. push, delete, login.failed, member.add')
    .option('--project <project>', 'only events in this project')
    .option('--resource <text>', 'only resources containing this, e.g. team/app')
    .option('--since <when>', 'from this long ago (30m, 24h, 7d) or this time (2025-06-01, ISO)')
    .option('--until <when>', 'up to this long ago or this time')
    .option('--limit <n>', 'at most this many events', '50')
    .action(async (opts: AuditFlags) => {
      const limit = parseInteger(opts.limit, '--limit', 1);
      const query = {
        actor: opts.actor,
        action: opts.action,
        project: opts.project,
        resource: opts.resource,
        from: opts.since === undefined ? undefined : parseSince(opts.since, '--since'),
        to: opts.until === undefined ? undefined : parseSince(opts.until, '--until'),
      };
      const { client } = await loggedInClient(opts.url);
      const { items, total } = await client.list<AuditEvent>('/audit', query, limit);
      if (opts.json) return printJSON(items);
      printTable(
        ['TIME', 'ACTOR', 'ACTION', 'RESOURCE', 'PROJECT', 'CLIENT', 'RESULT', 'DETAIL'],
        items.map((e) => [
          formatTime(e.time),
          e.actor,
          e.action,
          `${e.resourceType} ${e.resource}`,
          e.project ?? '-',
          e.client ?? '-',
          e.success ? 'ok' : 'FAILED',
          detailText(e),
        ]),
      );
      if (total > items.length) process.stderr.write(`(${items.length} of ${total} events; --limit or --since for others)\n`);
    });
}
