import { type Command, Option } from 'commander';
import { ROLES } from '../auth/roles.ts';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

/** A member as the API lists it: a user, or a group of an identity source. */
export interface Member {
  kind: 'user' | 'group';
  name: string;
  role: string;
  createdAt?: string;
  /** Users only. */
  username?: string;
  /** Groups only. */
  group?: { id: number; source: string; externalId: string };
}

interface MemberFlags extends CommonFlags {
  role: string;
  group?: string;
  source?: string;
}

const roleOption = (): Option => new Option('--role <role>', 'the role in the project').choices(ROLES).makeOptionMandatory();

/** Exactly one of a user name and `--group`. */
function subject(username: string | undefined, group: string | undefined): { username: string } | { group: string } {
  if ((username === undefined) === (group === undefined)) throw new CliError('name a user, or a group with --group (one of the two)');
  return username !== undefined ? { username } : { group: group! };
}

/**
 * The id of the group member `given` names in the project: an id as is, else the group member
 * whose name or DN it is. Several: an error listing them, so the person can pick an id.
 */
async function groupMemberId(client: ApiClient, project: string, given: string): Promise<number> {
  if (/^\d+$/.test(given)) return Number(given);
  const { items } = await client.list<Member>(`/projects/${segment(project)}/members`);
  const matches = items.filter((m) => m.kind === 'group' && m.group && (m.name === given || m.group.externalId === given));
  if (matches.length === 1) return matches[0]!.group!.id;
  if (matches.length === 0) throw new CliError(`no group named ${JSON.stringify(given)} is a member of project "${project}" (see: berth project member list ${project})`);
  const choices = matches.map((m) => `  id ${m.group!.id}: ${m.group!.source} ${m.group!.externalId}`).join('\n');
  throw new CliError(`several group members of project "${project}" are named ${JSON.stringify(given)}; give the id with --group:\n${choices}`);
}

function describe(m: Member | undefined, fallback: string): string {
  if (!m) return fallback;
  return m.kind === 'group' && m.group ? `group "${m.name}" (${m.group.source}, id ${m.group.id})` : m.name;
}

/** `berth project member add|update|remove|list`, over /api/v1/projects/{p}/members and /member-groups. */
export function projectMemberCommand(project: Command): void {
  const member = project
    .command('member')
    .description(`who may do what in a project: users, and LDAP/OIDC groups whose members all get the role (roles: ${ROLES.join(', ')})`);

  withCommon(member.command('list <project>').description("a project's members (users, then groups) and their roles")).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const { items } = await client.list<Member>(`/projects/${segment(name)}/members`);
    if (opts.json) return printJSON(items);
    printTable(
      ['KIND', 'NAME', 'ROLE', 'GROUP ID', 'SOURCE', 'ADDED'],
      items.map((m) => [m.kind, m.name, m.role, m.group ? String(m.group.id) : '-', m.group?.source ?? '-', formatTime(m.createdAt)]),
    );
  });

  withCommon(member.command('add <project> [username]').description('add a user, or with --group an LDAP/OIDC group, to a project'))
    .option('--group <nameOrDN>', 'a group name, or an LDAP group DN (unknown groups are looked up in the directory, or created for OIDC)')
    .addOption(new Option('--source <source>', 'with --group: only groups of this source').choices(['ldap', 'oidc']))
    .addOption(roleOption())
    .action(async (name: string, username: string | undefined, opts: MemberFlags) => {
      const who = subject(username, opts.group);
      if (opts.source !== undefined && opts.group === undefined) throw new CliError('--source goes with --group');
      const { client } = await loggedInClient(opts.url);
      const body = { ...who, role: opts.role, ...(opts.source !== undefined ? { source: opts.source } : {}) };
      const added = await client.post<Member | undefined>(`/projects/${segment(name)}/members`, body);
      if (opts.json) return printJSON(added ?? body);
      console.log(`added ${describe(added, username ?? opts.group!)} to project "${name}" as ${added?.role ?? opts.role}`);
    });

  withCommon(member.command('update <project> [username]').description("change a member's role (a group: --group with its id or name)"))
    .option('--group <idOrName>', "the group member's id (see member list), or its name or DN")
    .addOption(roleOption())
    .action(async (name: string, username: string | undefined, opts: MemberFlags) => {
      const who = subject(username, opts.group);
      const { client } = await loggedInClient(opts.url);
      const path = 'username' in who ? `/projects/${segment(name)}/members/${segment(who.username)}` : `/projects/${segment(name)}/member-groups/${await groupMemberId(client, name, who.group)}`;
      const updated = await client.put<Member | undefined>(path, { role: opts.role });
      if (opts.json) return printJSON(updated ?? { ...who, role: opts.role });
      console.log(`${describe(updated, username ?? opts.group!)} is now ${updated?.role ?? opts.role} in project "${name}"`);
    });

  withCommon(member.command('remove <project> [username]').description('remove a member from a project (a group: --group with its id or name)'))
    .option('--group <idOrName>', "the group member's id (see member list), or its name or DN")
    .action(async (name: string, username: string | undefined, opts: CommonFlags & { group?: string }) => {
      const who = subject(username, opts.group);
      const { client } = await loggedInClient(opts.url);
      if ('username' in who) {
        await client.delete(`/projects/${segment(name)}/members/${segment(who.username)}`);
        if (opts.json) return printJSON({ project: name, username: who.username, removed: true });
        console.log(`removed ${who.username} from project "${name}"`);
        return;
      }
      const id = await groupMemberId(client, name, who.group);
      await client.delete(`/projects/${segment(name)}/member-groups/${id}`);
      if (opts.json) return printJSON({ project: name, group: id, removed: true });
      console.log(`removed group ${id} from project "${name}"`);
    });
}
