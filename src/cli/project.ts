import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatBytes, formatQuota, formatTime, formatUsage, parseQuota, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';
import { parseDuration } from '../config/schema.ts';
import { projectMemberCommand } from './project-member.ts';

/** A project as the API describes it (list items may leave out the detail fields). */
export interface Project {
  name: string;
  public: boolean;
  quotaBytes: number | null;
  usageBytes?: number;
  repositoryCount?: number;
  createdAt?: string;
  createdBy?: string | null;
  /** What the caller may do in the project. */
  permissions?: string[];
  /** A proxy-cache project's upstream and freshness (seconds); null for an ordinary project. */
  proxyCache?: { registry: string; freshness: number } | null;
}

/** `--freshness 10m` (or 600, 1h, 0) in seconds. */
export function parseFreshness(text: string): number {
  if (!/^\d+(s|m|h|d)?$/.test(text.trim())) throw new CliError(`--freshness: a duration such as 0, 90s, 10m or 1h, not "${text}"`);
  const seconds = parseDuration(text.trim());
  if (seconds > 31_536_000) throw new CliError('--freshness: at most 365d');
  return seconds;
}

/** 600 → `10m`, 5400 → `1h30m`, 0 → `0s`. */
export function formatFreshness(seconds: number): string {
  if (seconds % 86_400 === 0 && seconds > 0) return `${seconds / 86_400}d`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', s || (!h && !m) ? `${s}s` : ''].join('');
}

/** `proxy cache of hub (freshness 5m)`, or `-`. */
function proxyText(p: Project): string {
  return p.proxyCache ? `proxy cache of ${p.proxyCache.registry} (freshness ${formatFreshness(p.proxyCache.freshness)})` : '-';
}

const visibility = (p: Project): string => (p.public ? 'public' : 'private');

/** `berth project create|list|show|update|delete` and `berth project member …`, over /api/v1/projects. */
export function projectCommand(program: Command): void {
  const project = program.command('project').description('manage projects: visibility, quota, members');

  withCommon(project.command('create <name>').description('create a project (you become its project admin)'))
    .option('--public', 'anyone may pull, without logging in (default: private)')
    .option('--quota <size>', 'storage quota, e.g. 10GiB, 500MB (default: unlimited)')
    .option('--proxy-cache <registry>', 'a proxy-cache project of this registry endpoint (berth registry list): pulls of what it lacks are fetched from it and cached; pushes are refused (system administrators)')
    .option('--freshness <duration>', 'with --proxy-cache: how long a cached tag is served before asking the upstream again, e.g. 10m (default: the server\'s proxy.freshness)')
    .action(async (name: string, opts: CommonFlags & { public?: boolean; quota?: string; proxyCache?: string; freshness?: string }) => {
      const quotaBytes = opts.quota === undefined ? undefined : parseQuota(opts.quota);
      if (opts.freshness !== undefined && opts.proxyCache === undefined) throw new CliError('--freshness is for proxy-cache projects: give --proxy-cache REGISTRY too');
      const freshness = opts.freshness === undefined ? undefined : parseFreshness(opts.freshness);
      const proxyCache = opts.proxyCache === undefined ? undefined : { registry: opts.proxyCache, ...(freshness !== undefined ? { freshness } : {}) };
      const { client } = await loggedInClient(opts.url);
      const created = await client.post<Project>('/projects', { name, public: Boolean(opts.public), ...(quotaBytes !== undefined ? { quotaBytes } : {}), ...(proxyCache ? { proxyCache } : {}) });
      if (opts.json) return printJSON(created);
      console.log(`created project "${created.name ?? name}" (${visibility(created)}, quota ${formatQuota(created.quotaBytes ?? quotaBytes)})`);
      if (created.proxyCache) {
        console.log(`it is a ${proxyText(created)}; cached artifacts not pulled for 7 days are removed daily (change with berth retention set ${created.name})`);
      }
    });

  withCommon(project.command('list').description('list the projects you can see'))
    .option('-q, --query <text>', 'only projects whose name contains this')
    .action(async (opts: CommonFlags & { query?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<Project>('/projects', { q: opts.query });
      if (opts.json) return printJSON(items);
      printTable(
        ['NAME', 'VISIBILITY', 'REPOSITORIES', 'USAGE', 'QUOTA', 'PROXY CACHE', 'CREATED'],
        items.map((p) => [
          p.name,
          visibility(p),
          p.repositoryCount === undefined ? '-' : String(p.repositoryCount),
          formatBytes(p.usageBytes),
          formatQuota(p.quotaBytes),
          p.proxyCache ? p.proxyCache.registry : '-',
          formatTime(p.createdAt),
        ]),
      );
    });

  withCommon(project.command('show <name>').description("a project's settings, usage and what you may do there"))
    .action(async (name: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      const p = await client.get<Project>(`/projects/${segment(name)}`);
      if (opts.json) return printJSON(p);
      printFields([
        ['Name', p.name],
        ['Visibility', visibility(p)],
        ['Quota', formatQuota(p.quotaBytes)],
        ['Usage', formatUsage(p.usageBytes, p.quotaBytes)],
        ['Repositories', p.repositoryCount === undefined ? '-' : String(p.repositoryCount)],
        ['Proxy cache', proxyText(p)],
        ['Created', `${formatTime(p.createdAt)}${p.createdBy ? ` by ${p.createdBy}` : ''}`],
        ['Your permissions', p.permissions?.length ? p.permissions.join(', ') : '-'],
      ]);
    });

  withCommon(project.command('update <name>').description("change a project's visibility, quota or proxy-cache freshness"))
    .option('--public', 'make the project public (anonymous pull)')
    .option('--private', 'make the project private')
    .option('--quota <size>', 'new quota, e.g. 20GiB, or "unlimited"')
    .option('--freshness <duration>', 'a proxy-cache project: how long a cached tag is served before asking the upstream again, e.g. 10m, or "default"')
    .action(async (name: string, opts: CommonFlags & { public?: boolean; private?: boolean; quota?: string; freshness?: string }) => {
      if (opts.public && opts.private) throw new CliError('--public and --private: pick one');
      const changes: { public?: boolean; quotaBytes?: number | null; proxyCache?: { freshness: number | null } } = {};
      if (opts.public || opts.private) changes.public = Boolean(opts.public);
      if (opts.quota !== undefined) changes.quotaBytes = parseQuota(opts.quota);
      if (opts.freshness !== undefined) changes.proxyCache = { freshness: opts.freshness === 'default' ? null : parseFreshness(opts.freshness) };
      if (Object.keys(changes).length === 0) throw new CliError('nothing to change: give --public, --private, --quota or --freshness');
      const { client } = await loggedInClient(opts.url);
      const updated = await client.patch<Project | undefined>(`/projects/${segment(name)}`, changes);
      if (opts.json) return printJSON(updated ?? { name, ...changes });
      const shown = { public: updated?.public ?? changes.public, quota: updated ? updated.quotaBytes : changes.quotaBytes };
      const parts = [
        ...(shown.public === undefined ? [] : [shown.public ? 'public' : 'private']),
        ...(changes.quotaBytes === undefined ? [] : [`quota ${formatQuota(shown.quota)}`]),
        ...(changes.proxyCache === undefined || !updated?.proxyCache ? [] : [`freshness ${formatFreshness(updated.proxyCache.freshness)}`]),
      ];
      console.log(`updated project "${name}": ${parts.join(', ')}`);
    });

  withCommon(project.command('delete <name>').description('delete an empty project (delete its repositories first)'))
    .action(async (name: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      await client.delete(`/projects/${segment(name)}`);
      if (opts.json) return printJSON({ name, deleted: true });
      console.log(`deleted project "${name}"`);
    });

  projectMemberCommand(project);
}
