import type { Command } from 'commander';
import { ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { browserLogin, deviceLogin } from './login-sso.ts';
import { askHidden } from './login.ts';
import { CliError, readStdin } from './output.ts';
import { formatTime, parseInteger, printJSON } from './format.ts';
import { removeLogin } from './login-store.ts';
import { printTable } from './output.ts';

/** A personal access token as the API lists it (never the token itself). */
export interface PersonalToken {
  name: string;
  prefix: string;
  expiresAt: string | null;
  revoked: boolean;
  lastUsedAt: string | null;
  createdAt: string;
}

interface CreatedToken {
  name: string;
  token: string;
  expiresAt: string | null;
}

function tokenStatus(t: PersonalToken, now = Date.now()): string {
  if (t.revoked) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= now) return 'expired';
  return 'active';
}

/**
 * `berth token create|list|revoke`: the logged-in user's personal access tokens, for docker
 * configs and scripts in place of the password.
 */
export function tokenCommand(program: Command): void {
  const token = program.command('token').description('your personal access tokens (use one as the password in docker login)');

  withCommon(token.command('create <name>').description('create a token; prints it once (asks for your password, or signs in again with --sso/--device: a token cannot create tokens)'))
    .option('--expires-days <days>', 'days until it expires (-1: never; default: the server\'s)')
    .option('--password-stdin', 'read your password from standard input')
    .option('--sso', 'prove it is you by signing in through the OpenID provider in a browser (90-day token)')
    .option('--device', 'the same with a code entered on another device (90-day token)')
    .action(async (name: string, opts: CommonFlags & { expiresDays?: string; passwordStdin?: boolean; sso?: boolean; device?: boolean }) => {
      const expiresInDays = opts.expiresDays === undefined ? undefined : parseInteger(opts.expiresDays, '--expires-days', -1);
      const { login } = await loggedInClient(opts.url);
      if (opts.sso || opts.device) {
        // People of an OpenID provider have no password here: a fresh sign-in there is the proof.
        if (expiresInDays !== undefined) throw new CliError('--expires-days does not apply with --sso/--device: the token lives 90 days');
        const server = new ApiClient(login.url, undefined);
        const made = opts.device ? await deviceLogin(server, name) : await browserLogin(server, name);
        if (opts.json) return printJSON(made);
        console.log(`created token "${made.name}" for ${made.username} (expires ${formatTime(made.expiresAt, 'never')})`);
        console.log(`token (shown only now, store it safely): ${made.token}`);
        console.log(`log in with: docker login ${new URL(login.url).host} -u ${made.username}   (password: the token)`);
        return;
      }
      // The stored login is itself a token; creating one needs the password, used for this request only.
      const password = opts.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : await askHidden(`Password for ${login.username} at ${login.url}: `);
      if (!password) throw new CliError('empty password');
      const client = ApiClient.basic(login.url, login.username, password);
      const created = await client.post<CreatedToken>('/users/me/tokens', { name, ...(expiresInDays !== undefined ? { expiresInDays } : {}) });
      if (opts.json) return printJSON(created);
      console.log(`created token "${created.name}" (expires ${formatTime(created.expiresAt, 'never')})`);
      console.log(`token (shown only now, store it safely): ${created.token}`);
      console.log(`log in with: docker login ${new URL(login.url).host} -u ${login.username}   (password: the token)`);
    });

  withCommon(token.command('list').description('list your tokens')).action(async (opts: CommonFlags) => {
    const { client, login } = await loggedInClient(opts.url);
    const { items } = await client.list<PersonalToken>('/users/me/tokens');
    if (opts.json) return printJSON(items);
    printTable(
      ['NAME', 'PREFIX', 'STATUS', 'EXPIRES', 'LAST USED', 'CREATED'],
      items.map((t) => [
        t.name,
        t.prefix,
        `${tokenStatus(t)}${t.name === login.tokenName ? ' (this CLI)' : ''}`,
        formatTime(t.expiresAt, 'never'),
        formatTime(t.lastUsedAt, 'never'),
        formatTime(t.createdAt),
      ]),
    );
  });

  withCommon(token.command('revoke <name>').description('revoke a token; it stops working at once')).action(async (name: string, opts: CommonFlags) => {
    const { client, login } = await loggedInClient(opts.url);
    await client.delete(`/users/me/tokens/${segment(name)}`);
    // Revoking the CLI's own token is a logout: the stored login would only be refused from now on.
    const ownToken = name === login.tokenName;
    if (ownToken) await removeLogin(login.url);
    if (opts.json) return printJSON({ name, revoked: true, loggedOut: ownToken });
    console.log(`revoked token "${name}"`);
    if (ownToken) console.log(`that was this CLI's login token: logged out of ${login.url}`);
  });
}
