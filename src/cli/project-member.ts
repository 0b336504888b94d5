import { type Command, Option } from 'commander';
import { ROLES } from '../auth/roles.ts';
import { type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, printJSON } from './format.ts';
import { printTable } from './output.ts';

/** A member as the API lists it. */
export interface Member {
  username: string;
  role: string;
  createdAt?: string;
}

const roleOption = (): Option => new Option('--role <role>', 'the role in the project').choices(ROLES).makeOptionMandatory();

/** `berth project member add|update|remove|list`, over /api/v1/projects/{p}/members. */
export function projectMemberCommand(project: Command): void {
  const member = project.command('member').description(`who may do what in a project (roles: ${ROLES.join(', ')})`);

  withCommon(member.command('list <project>').description("a project's members and their roles")).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const { items } = await client.list<Member>(`/projects/${segment(name)}/members`);
    if (opts.json) return printJSON(items);
    printTable(['USERNAME', 'ROLE', 'ADDED'], items.map((m) => [m.username, m.role, formatTime(m.createdAt)]));
  });

  withCommon(member.command('add <project> <username>').description('add a user to a project'))
    .addOption(roleOption())
    .action(async (name: string, username: string, opts: CommonFlags & { role: string }) => {
      const { client } = await loggedInClient(opts.url);
      const added = await client.post<Member | undefined>(`/projects/${segment(name)}/members`, { username, role: opts.role });
      if (opts.json) return printJSON(added ?? { username, role: opts.role });
      console.log(`added ${username} to project "${name}" as ${added?.role ?? opts.role}`);
    });

  withCommon(member.command('update <project> <username>').description("change a member's role"))
    .addOption(roleOption())
    .action(async (name: string, username: string, opts: CommonFlags & { role: string }) => {
      const { client } = await loggedInClient(opts.url);
      const updated = await client.put<Member | undefined>(`/projects/${segment(name)}/members/${segment(username)}`, { role: opts.role });
      if (opts.json) return printJSON(updated ?? { username, role: opts.role });
      console.log(`${username} is now ${updated?.role ?? opts.role} in project "${name}"`);
    });

  withCommon(member.command('remove <project> <username>').description('remove a member from a project')).action(
    async (name: string, username: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      await client.delete(`/projects/${segment(name)}/members/${segment(username)}`);
      if (opts.json) return printJSON({ project: name, username, removed: true });
      console.log(`removed ${username} from project "${name}"`);
    },
  );
}
