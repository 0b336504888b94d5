import type { Command } from 'commander';
import { ROBOT_ACTION_NAMES } from '../auth/roles.ts';
import { ROBOT_PREFIX } from '../auth/identity.ts';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, parseInteger, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

/** One grant of a robot: actions in a project (`*`: every project, system robots only). */
export interface RobotPermission {
  project: string;
  actions: string[];
}

/** A robot account as the API describes it. */
export interface Robot {
  name: string;
  level: 'project' | 'system';
  description?: string;
  disabled: boolean;
  expiresAt: string | null;
  createdAt?: string;
  createdBy?: string | null;
  permissions: RobotPermission[];
}

interface CreatedRobot {
  name: string;
  secret: string;
  expiresAt: string | null;
}

/**
 * `pull,push` (in `--project`), `pull,push@team`, `pull@*` → a grant. Actions are checked here so a
 * typo is named before anything is created.
 */
export function parsePermission(spec: string, project: string | undefined): RobotPermission {
  const at = spec.lastIndexOf('@');
  const actionsText = at === -1 ? spec : spec.slice(0, at);
  const target = at === -1 ? project : spec.slice(at + 1);
  const actions = actionsText.split(',').map((a) => a.trim()).filter(Boolean);
  const unknown = actions.filter((a) => !(ROBOT_ACTION_NAMES as string[]).includes(a));
  if (actions.length === 0 || unknown.length > 0) {
    throw new CliError(`--permission ${spec}: actions are ${ROBOT_ACTION_NAMES.join(', ')}${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`);
  }
  if (!target) throw new CliError(`--permission ${spec}: a system robot needs the project of each permission, e.g. ${actionsText}@team or ${actionsText}@*`);
  if (project !== undefined && target !== project) {
    throw new CliError(`--permission ${spec}: a robot of project "${project}" may only have permissions in "${project}" (leave out --project for a system robot)`);
  }
  return { project: target, actions };
}

/** `ci` + `--project team` → `robot$team+ci`; `ci` → `robot$ci`; a full `robot$…` name as is. */
export function robotName(name: string, project: string | undefined): string {
  if (name.startsWith(ROBOT_PREFIX)) return name;
  return project ? `${ROBOT_PREFIX}${project}+${name}` : `${ROBOT_PREFIX}${name}`;
}

export function robotStatus(robot: Robot, now = Date.now()): string {
  if (robot.disabled) return 'disabled';
  if (robot.expiresAt && Date.parse(robot.expiresAt) <= now) return 'expired';
  return 'enabled';
}

const grants = (permissions: RobotPermission[]): string => permissions.map((p) => `${p.project}: ${p.actions.join(',')}`).join('; ') || '-';

/** How `docker login` is run with a robot's secret against this server. */
function dockerLogin(client: ApiClient, name: string): string {
  return `docker login ${new URL(client.baseUrl).host} -u '${name}'`;
}

function printSecret(client: ApiClient, name: string, secret: string): void {
  console.log(`secret (shown only now, store it safely): ${secret}`);
  console.log(`log in with: ${dockerLogin(client, name)}   (password: the secret; in CI pipe it to --password-stdin)`);
}

/** `berth robot create|list|show|refresh|disable|enable|delete`, over /api/v1/robots. */
export function robotCommand(program: Command): void {
  const robot = program.command('robot').description('robot accounts for CI and automation (project or system level)');
  const nameHelp = 'robot name: robot$team+ci, or ci with --project team';

  withCommon(robot.command('create <name>').description('create a robot account; prints its secret once'))
    .option('--project <project>', 'a project robot of this project (without: a system robot, admins only)')
    .option('--permission <actions[@project]>', `actions (${ROBOT_ACTION_NAMES.join(',')}), @project for system robots (* = all); repeatable`, (v: string, all: string[] | undefined) => [...(all ?? []), v])
    .option('--expires-days <days>', 'days until it expires (-1: never)', '-1')
    .option('--description <text>', 'what the robot is for')
    .action(async (name: string, opts: CommonFlags & { project?: string; permission?: string[]; expiresDays: string; description?: string }) => {
      if (!opts.permission?.length) throw new CliError('give at least one --permission, e.g. --permission pull,push');
      const permissions = opts.permission.map((spec) => parsePermission(spec, opts.project));
      const expiresInDays = parseInteger(opts.expiresDays, '--expires-days', -1);
      const { client } = await loggedInClient(opts.url);
      const created = await client.post<CreatedRobot>('/robots', {
        name,
        ...(opts.project ? { project: opts.project } : {}),
        ...(opts.description ? { description: opts.description } : {}),
        expiresInDays,
        permissions,
      });
      if (opts.json) return printJSON({ ...created, dockerLogin: dockerLogin(client, created.name) });
      console.log(`created robot ${created.name} (${grants(permissions)}; expires ${formatTime(created.expiresAt, 'never')})`);
      printSecret(client, created.name, created.secret);
    });

  withCommon(robot.command('list').description('list robots (of a project, or the system robots)'))
    .option('--project <project>', 'robots with permissions in this project (without: system robots, admins only)')
    .action(async (opts: CommonFlags & { project?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<Robot>('/robots', { project: opts.project });
      if (opts.json) return printJSON(items);
      printTable(
        ['NAME', 'LEVEL', 'PERMISSIONS', 'STATUS', 'EXPIRES', 'DESCRIPTION'],
        items.map((r) => [r.name, r.level, grants(r.permissions ?? []), robotStatus(r), formatTime(r.expiresAt, 'never'), r.description ?? '']),
      );
    });

  withCommon(robot.command('show <name>').description(`one robot (${nameHelp})`))
    .option('--project <project>', 'the project of a short robot name')
    .action(async (name: string, opts: CommonFlags & { project?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const r = await client.get<Robot>(`/robots/${segment(robotName(name, opts.project))}`);
      if (opts.json) return printJSON(r);
      printFields([
        ['Name', r.name],
        ['Level', r.level],
        ['Permissions', grants(r.permissions ?? [])],
        ['Status', robotStatus(r)],
        ['Expires', formatTime(r.expiresAt, 'never')],
        ['Description', r.description || '-'],
        ['Created', `${formatTime(r.createdAt)}${r.createdBy ? ` by ${r.createdBy}` : ''}`],
      ]);
    });

  withCommon(robot.command('refresh <name>').description(`replace a robot's secret; the old one stops working (${nameHelp})`))
    .option('--project <project>', 'the project of a short robot name')
    .action(async (name: string, opts: CommonFlags & { project?: string }) => {
      const full = robotName(name, opts.project);
      const { client } = await loggedInClient(opts.url);
      const { secret } = await client.post<{ secret: string }>(`/robots/${segment(full)}/refresh`);
      if (opts.json) return printJSON({ name: full, secret, dockerLogin: dockerLogin(client, full) });
      console.log(`new secret for ${full}; the old one no longer works`);
      printSecret(client, full, secret);
    });

  for (const [verb, disabled] of [['disable', true], ['enable', false]] as const) {
    withCommon(robot.command(`${verb} <name>`).description(`${verb} a robot account (${nameHelp})`))
      .option('--project <project>', 'the project of a short robot name')
      .action(async (name: string, opts: CommonFlags & { project?: string }) => {
        const full = robotName(name, opts.project);
        const { client } = await loggedInClient(opts.url);
        const updated = await client.patch<Robot | undefined>(`/robots/${segment(full)}`, { disabled });
        if (opts.json) return printJSON(updated ?? { name: full, disabled });
        console.log(`${verb}d robot ${full}`);
      });
  }

  withCommon(robot.command('delete <name>').description(`delete a robot account (${nameHelp})`))
    .option('--project <project>', 'the project of a short robot name')
    .action(async (name: string, opts: CommonFlags & { project?: string }) => {
      const full = robotName(name, opts.project);
      const { client } = await loggedInClient(opts.url);
      await client.delete(`/robots/${segment(full)}`);
      if (opts.json) return printJSON({ name: full, deleted: true });
      console.log(`deleted robot ${full}`);
    });
}
