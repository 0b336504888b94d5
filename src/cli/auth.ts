// `berth auth test`: ask the server's directory or OpenID provider now, over /api/v1/auth/test —
// for an administrator connecting Berth to the company's identity source.
import type { Command } from 'commander';
import { type CommonFlags, loggedInClient, withCommon } from './api-client.ts';
import { printFields, printJSON } from './format.ts';
import { CliError } from './output.ts';
import type { IdentityTest } from '../auth/sources.ts';

/** `berth auth test [--user NAME]` (system administrators). */
export function authCommand(program: Command): void {
  const auth = program.command('auth').description("the server's identity source: LDAP directory or OpenID provider (administrators)");
  withCommon(auth.command('test').description('ask the directory or provider now: does it answer, and (LDAP, --user) how it describes a person'))
    .option('--user <name>', 'LDAP: look this person up (no password needed): DN, email, groups, admin')
    .action(async (opts: CommonFlags & { user?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const t = await client.post<IdentityTest>('/auth/test', opts.user === undefined ? {} : { username: opts.user });
      if (opts.json) printJSON(t);
      else if (t.mode === 'local') console.log('auth.mode is local: no directory or provider to test');
      else {
        console.log(`${t.mode} ${t.target ?? ''}: ${t.ok ? 'ok' : `failed: ${t.error ?? 'unknown error'}`} (${t.elapsedMs} ms)`);
        if (t.deviceFlow !== undefined) console.log(`device flow (berth login --device): ${t.deviceFlow ? 'offered' : 'not offered by the provider'}`);
        if (t.person?.found === false) console.log(`${opts.user}: not found (no entry of that name matches auth.ldap.userFilter under baseDN)`);
        else if (t.person?.found) {
          printFields([
            ['user', t.person.username],
            ['DN', t.person.externalId],
            ['email', t.person.email ?? '-'],
            ['groups', t.person.groups.join(', ') || '(none)'],
            ['admin', t.person.admin ? 'yes (in auth.ldap.adminGroup)' : 'no'],
          ]);
        }
      }
      if (!t.ok) throw new CliError(opts.json ? 'the identity source test failed' : `the ${t.mode === 'ldap' ? 'directory' : 'provider'} did not answer as it should: see above`);
    });
}
