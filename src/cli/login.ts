import { hostname } from 'node:os';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ApiClient, ApiError, segment } from './api-client.ts';
import { formatTime, printJSON } from './format.ts';
import { authConfig, browserLogin, deviceLogin, tokenNames } from './login-sso.ts';
import { findLogin, normalizeUrl, removeLogin, saveLogin, type StoredLogin } from './login-store.ts';
import { CliError, readStdin } from './output.ts';
import { TOKEN_PREFIX } from '../auth/secrets.ts';

/** How long the CLI's token lives; `berth login` again makes a new one. */
const TOKEN_DAYS = 90;

interface CreatedToken {
  name: string;
  token: string;
  expiresAt: string | null;
}

interface WhoAmI {
  kind: 'user' | 'robot' | 'anonymous';
  name: string;
  isAdmin: boolean;
}

/**
 * `berth login <url>` and `berth logout`: the password is used once, to create a personal access
 * token named after this machine; only that token is stored, and logout revokes it on the server.
 * With `--sso` or `--device` the person signs in at the server's OpenID provider instead
 * (login-sso.ts), and the server makes the token.
 */
export function loginCommand(program: Command): void {
  program
    .command('login <url>')
    .description('log in to a Berth server: creates a personal access token for this machine and stores it (never the password)')
    .option('-u, --username <name>', 'user name (asked when interactive)')
    .option('--password-stdin', 'read the password (or a personal access token) from standard input')
    .option('--sso', "sign in through the server's identity provider in a browser (prints the address to open)")
    .option('--device', "sign in through the server's identity provider from another device (for machines without a browser)")
    .option('--json', 'print JSON')
    .action(async (rawUrl: string, opts: { username?: string; passwordStdin?: boolean; sso?: boolean; device?: boolean; json?: boolean }) => {
      const url = normalizeUrl(rawUrl);
      if (opts.sso || opts.device) {
        if (opts.sso && opts.device) throw new CliError('--sso and --device are two ways of signing in: give one');
        if (opts.username !== undefined || opts.passwordStdin) throw new CliError('--sso and --device sign in at the identity provider: no -u or --password-stdin');
        const anonymous = new ApiClient(url, undefined);
        const signedIn = opts.sso ? await browserLogin(anonymous, tokenName(new Date())) : await deviceLogin(anonymous, tokenName(new Date()));
        await finishLogin(url, signedIn.username, signedIn, opts.json);
        return;
      }
      if (opts.username === undefined) {
        const config = await authConfig(new ApiClient(url, undefined));
        if (config?.mode === 'oidc') {
          throw new CliError(`${url} signs people in through ${config.oidc?.displayName ?? 'single sign-on'}: run berth login ${url} --sso (browser) or --device (no browser here); local accounts give -u NAME`);
        }
      }
      const username = opts.username ?? (await ask('Username: '));
      if (!username) throw new CliError('a user name is needed: -u USER');
      const password = opts.passwordStdin ? (await readStdin()).replace(/\r?\n$/, '') : await askHidden(`Password for ${username} at ${url}: `);
      if (!password) throw new CliError('empty password');

      // A personal access token given in place of the password is stored as it is: a token cannot
      // create another (that needs the password), and this one is already the machine's credential.
      const created = password.startsWith(TOKEN_PREFIX) ? await existingToken(url, username, password) : await createToken(ApiClient.basic(url, username, password), tokenName(new Date()));
      await finishLogin(url, username, created, opts.json);
    });

  program
    .command('logout [url]')
    .description("revoke the CLI's token on the server and remove the stored login")
    .option('--url <url>', 'server to log out of when logins to several are stored')
    .option('--local', 'only remove the stored login (when the server cannot be reached)')
    .option('--json', 'print JSON')
    .action(async (positional: string | undefined, opts: { url?: string; local?: boolean; json?: boolean }) => {
      const login = await findLogin(positional ?? opts.url);
      let revoked = false;
      let note: string | undefined;
      if (!opts.local) {
        try {
          await ApiClient.basic(login.url, login.username, login.token).delete(`/users/me/tokens/${segment(login.tokenName)}`);
          revoked = true;
        } catch (err) {
          // A token the server no longer accepts or knows needs no revoking; anything else might still work.
          if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 404)) {
            throw new CliError(`could not revoke token "${login.tokenName}": ${err instanceof Error ? err.message : String(err)}\n(run again, or with --local to only remove the stored login)`);
          }
          note = `token "${login.tokenName}" was already revoked or expired (${err.status} ${err.code})`;
        }
      }
      await removeLogin(login.url);
      if (opts.json) {
        printJSON({ url: login.url, username: login.username, tokenName: login.tokenName, revoked });
        return;
      }
      if (note) console.log(note);
      console.log(`logged out of ${login.url} (${login.username})${revoked ? `; token "${login.tokenName}" revoked` : ''}`);
    });
}

/** `berth-cli-<host>-<yyyymmddhhmm>` (UTC), so `berth token list` shows which machine holds which token. */
export function tokenName(now: Date): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'host';
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 12);
  return `berth-cli-${host}-${stamp}`;
}

/** Checks the new token names `username`, stores it (revoking the one it replaces) and says so. */
async function finishLogin(url: string, username: string, created: CreatedToken, json: boolean | undefined): Promise<void> {
  const withToken = ApiClient.basic(url, username, created.token);
  const me = await withToken.get<WhoAmI>('/auth/whoami');
  if (me.kind !== 'user') throw new CliError(`the token logs in as ${me.kind} "${me.name}", not as user "${username}"`);
  const login: StoredLogin = { url, username: me.name, token: created.token, tokenName: created.name, expiresAt: created.expiresAt ?? null };
  const { file, replaced } = await saveLogin(login);
  if (replaced && replaced.tokenName !== login.tokenName) await revokeReplaced(replaced);

  if (json) {
    printJSON({ url, username: me.name, admin: me.isAdmin, tokenName: login.tokenName, expiresAt: login.expiresAt, file });
    return;
  }
  console.log(`logged in to ${url} as ${me.name}${me.isAdmin ? ' (system admin)' : ''}`);
  console.log(`personal access token "${login.tokenName}" stored in ${file} (expires ${formatTime(login.expiresAt, 'never')}); no password was stored`);
}

/** Creates the token; a second login within the same minute gets `-2`, `-3`… instead of a conflict. */
async function createToken(client: ApiClient, base: string): Promise<CreatedToken> {
  let taken: unknown;
  for (const name of tokenNames(base)) {
    try {
      return await client.post<CreatedToken>('/users/me/tokens', { name, expiresInDays: TOKEN_DAYS });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
      taken = err;
    }
  }
  throw taken;
}

/** A personal access token the user already has, with its name and expiry as the server lists them. */
async function existingToken(url: string, username: string, token: string): Promise<CreatedToken> {
  const { items } = await ApiClient.basic(url, username, token).list<{ name: string; prefix: string; expiresAt: string | null; revoked: boolean }>('/users/me/tokens');
  const own = items.find((t) => !t.revoked && token.startsWith(t.prefix));
  if (!own) throw new CliError('the server does not list this personal access token among yours');
  return { name: own.name, token, expiresAt: own.expiresAt };
}

/** A new login replaces one for the same server: its token is revoked so it does not linger. */
async function revokeReplaced(old: StoredLogin): Promise<void> {
  try {
    await ApiClient.basic(old.url, old.username, old.token).delete(`/users/me/tokens/${segment(old.tokenName)}`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 404)) return;
    process.stderr.write(`berth: warning: could not revoke the previous token "${old.tokenName}": ${(err as Error).message}\n`);
  }
}

async function ask(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError('no terminal to ask on: give the user name with -u');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Reads a line from the terminal without echoing it. */
export function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return Promise.reject(new CliError('no terminal to ask for the password on: use --password-stdin'));
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (result: () => void) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      result();
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(() => resolve(value));
        if (ch === '\u0003') return finish(() => reject(new CliError('cancelled')));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
