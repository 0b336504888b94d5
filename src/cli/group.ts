// `berth group`: the LDAP and OIDC groups the server knows (read only: the sources own them), over
// /api/v1/groups. Giving a group a role in a project is `berth project member add --group`.
import { type Command, Option } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { formatTime, printFields, printJSON } from './format.ts';
import { CliError, printTable } from './output.ts';

/** A group as the API lists it. */
interface Group {
  id: number;
  name: string;
  source: string;
  externalId: string;
  createdAt: string;
  members: number;
}

/** A group as the API shows one. */
interface GroupDetail extends Omit<Group, 'members'> {
  memberCount: number;
  members: { username: string; email: string | null; lastLoginAt: string | null }[];
  projects: { project: string; role: string; createdAt: string }[];
}

/** `berth group list|show` (system administrators). */
export function groupCommand(program: Command): void {
  const group = program.command('group').description('LDAP and OIDC groups known to the server, their members and projects (administrators)');

  withCommon(group.command('list').description('groups, with how many users are in each'))
    .addOption(new Option('--source <source>', 'only groups of this source').choices(['ldap', 'oidc']))
    .option('-q, --query <text>', 'only groups whose name contains this')
    .action(async (opts: CommonFlags & { source?: string; query?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<Group>('/groups', { source: opts.source, q: opts.query });
      if (opts.json) return printJSON(items);
      printTable(['ID', 'NAME', 'SOURCE', 'MEMBERS', 'EXTERNAL ID'], items.map((g) => [String(g.id), g.name, g.source, String(g.members), g.externalId]));
    });

  withCommon(group.command('show <id>').description("a group's members and the projects where it has a role")).action(async (given: string, opts: CommonFlags) => {
    if (!/^\d{1,10}$/.test(given)) throw new CliError('id: the group id, a number (see: berth group list)');
    const { client } = await loggedInClient(opts.url);
    const g = await client.get<GroupDetail>(`/groups/${given}`);
    if (opts.json) return printJSON(g);
    printFields([
      ['Id', String(g.id)],
      ['Name', g.name],
      ['Source', g.source],
      ['External id', g.externalId],
      ['Known since', formatTime(g.createdAt)],
      ['Members', String(g.memberCount)],
    ]);
    console.log('');
    if (g.projects.length === 0) console.log('no project roles');
    else printTable(['PROJECT', 'ROLE', 'SINCE'], g.projects.map((p) => [p.project, p.role, formatTime(p.createdAt)]));
    console.log('');
    if (g.members.length === 0) console.log('no members have signed in yet');
    else printTable(['USERNAME', 'EMAIL', 'LAST LOGIN'], g.members.map((m) => [m.username, m.email ?? '-', formatTime(m.lastLoginAt, 'never')]));
    if (g.memberCount > g.members.length) console.log(`… and ${g.memberCount - g.members.length} more`);
  });
}
