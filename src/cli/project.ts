import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatBytes, formatQuota, formatTime, formatUsage, parseQuota, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';
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
}

const visibility = (p: Project): string => (p.public ? 'public' : 'private');

/** `berth project create|list|show|update|delete` and `berth project member …`, over /api/v1/projects. */
export function projectCommand(program: Command): void {
  const project = program.command('project').description('manage projects: visibility, quota, members');

  withCommon(project.command('create <name>').description('create a project (you become its project admin)'))
    .option('--public', 'anyone may pull, without logging in (default: private)')
    .option('--quota <size>', 'storage quota, e.g. 10GiB, 500MB (default: unlimited)')
    .action(async (name: string, opts: CommonFlags & { public?: boolean; quota?: string }) => {
      const quotaBytes = opts.quota === undefined ? undefined : parseQuota(opts.quota);
      const { client } = await loggedInClient(opts.url);
      const created = await client.post<Project>('/projects', { name, public: Boolean(opts.public), ...(quotaBytes !== undefined ? { quotaBytes } : {}) });
      if (opts.json) return printJSON(created);
      console.log(`created project "${created.name ?? name}" (${visibility(created)}, quota ${formatQuota(created.quotaBytes ?? quotaBytes)})`);
    });

  withCommon(project.command('list').description('list the projects you can see'))
    .option('-q, --query <text>', 'only projects whose name contains this')
    .action(async (opts: CommonFlags & { query?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<Project>('/projects', { q: opts.query });
      if (opts.json) return printJSON(items);
      printTable(
        ['NAME', 'VISIBILITY', 'REPOSITORIES', 'USAGE', 'QUOTA', 'CREATED'],
        items.map((p) => [p.name, visibility(p), p.repositoryCount === undefined ? '-' : String(p.repositoryCount), formatBytes(p.usageBytes), formatQuota(p.quotaBytes), formatTime(p.createdAt)]),
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
        ['Created', `${formatTime(p.createdAt)}${p.createdBy ? ` by ${p.createdBy}` : ''}`],
        ['Your permissions', p.permissions?.length ? p.permissions.join(', ') : '-'],
      ]);
    });

  withCommon(project.command('update <name>').description("change a project's visibility or quota"))
    .option('--public', 'make the project public (anonymous pull)')
    .option('--private', 'make the project private')
    .option('--quota <size>', 'new quota, e.g. 20GiB, or "unlimited"')
    .action(async (name: string, opts: CommonFlags & { public?: boolean; private?: boolean; quota?: string }) => {
      if (opts.public && opts.private) throw new CliError('--public and --private: pick one');
      const changes: { public?: boolean; quotaBytes?: number | null } = {};
      if (opts.public || opts.private) changes.public = Boolean(opts.public);
      if (opts.quota !== undefined) changes.quotaBytes = parseQuota(opts.quota);
      if (Object.keys(changes).length === 0) throw new CliError('nothing to change: give --public, --private or --quota');
      const { client } = await loggedInClient(opts.url);
      const updated = await client.patch<Project | undefined>(`/projects/${segment(name)}`, changes);
      if (opts.json) return printJSON(updated ?? { name, ...changes });
      const shown = { public: updated?.public ?? changes.public, quota: updated ? updated.quotaBytes : changes.quotaBytes };
      const parts = [
        ...(shown.public === undefined ? [] : [shown.public ? 'public' : 'private']),
        ...(changes.quotaBytes === undefined ? [] : [`quota ${formatQuota(shown.quota)}`]),
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
