// `berth user`: through the server's management API when logged in (the normal way: the server
// checks who may do what and audits it under your name), or on a data directory's database
// directly when `--data-dir` is given (recovery: the server is down, or nobody can log in).
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { isUsername } from '../auth/external.ts';
import type { Metadata } from '../metadata/index.ts';
import type { UserRow } from '../metadata/schema.ts';
import { type ApiClient, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, printJSON } from './format.ts';
import { askHidden } from './login.ts';
import { listLogins, type StoredLogin } from './login-store.ts';
import { CliError, printTable, readStdin } from './output.ts';

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MIN_PASSWORD = 8;

/** A user as the API describes it; the data-directory mode prints the same shape. */
interface User {
  username: string;
  admin: boolean;
  createdAt: string | null;
  /** Where the account lives: local, ldap or oidc. */
  source?: string;
  email?: string | null;
  lastLoginAt?: string | null;
  /** Only in the answer to a create without a password: the generated one. */
  password?: string;
}

interface UserFlags {
  url?: string;
  json?: boolean;
  dataDir?: string;
}

interface PasswordFlags {
  password?: string;
  passwordStdin?: boolean;
}

/** Where the command acts. */
type Target = { kind: 'server'; client: ApiClient; login: StoredLogin } | { kind: 'local'; dataDir: string };

/** The server of the stored login, or the data directory when `--data-dir` is given. */
async function targetOf(opts: UserFlags): Promise<Target> {
  if (opts.dataDir !== undefined) {
    if (opts.url !== undefined) throw new CliError('--data-dir and --url: pick one (--data-dir works on the database directly, --url through a server)');
    return { kind: 'local', dataDir: path.resolve(opts.dataDir) };
  }
  if (opts.url === undefined && (await listLogins()).logins.length === 0) {
    const env = process.env['BERTH_DATA_DIR'] ? ' (BERTH_DATA_DIR is not read by "berth user": name the directory with --data-dir)' : '';
    throw new CliError(
      'not logged in, and no --data-dir given: run "berth login <url>" to manage users through the server, ' +
        `or give --data-dir <dir> to change the database in a data directory directly (recovery: server down, nobody can log in)${env}`,
    );
  }
  const { client, login } = await loggedInClient(opts.url);
  return { kind: 'server', client, login };
}

// ---- the data-directory mode ----

/** Who made a change in the data-directory mode, for the audit log: `cli:<os user>`. */
function localActor(): string {
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the environment, else the uid.
  }
  return `cli:${name || process.env['USER'] || `uid-${process.getuid?.() ?? 'unknown'}`}`;
}

/** Records a change the way the API does (`user.create`, `user.update`, `user.delete`), from client `local`. */
type Audit = (action: string, username: string, detail?: Record<string, unknown>) => Promise<void>;

/**
 * Opens the database of `dataDir` — only one that exists: a mistyped directory must not become a
 * new, empty registry — and closes it afterwards, which writes the queued audit rows.
 */
async function withDatabase<T>(dataDir: string, task: (meta: Metadata, audit: Audit) => Promise<T>): Promise<T> {
  const file = path.join(dataDir, 'berth.db');
  try {
    if (!statSync(file).isFile()) throw new CliError(`no Berth database in ${dataDir}: ${file} is not a file`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new CliError(`no Berth database in ${dataDir}: ${file} does not exist (give the data directory of a server that has started at least once; nothing was created)`);
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  // Loaded on use, so other subcommands start without the database driver.
  const { openMetadata } = await import('../metadata/index.ts');
  const meta = await openMetadata(dataDir);
  let auditError: unknown;
  meta.audit.onError = (err) => {
    auditError = err;
  };
  const actor = localActor();
  const audit: Audit = (action, username, detail) =>
    meta.audit.record({ actor, action, resourceType: 'user', resource: username, client: 'local', success: true, ...(detail ? { detail } : {}) });
  try {
    return await task(meta, audit);
  } finally {
    await meta.close();
    if (auditError !== undefined) {
      process.stderr.write(`berth: warning: the change was made, but its audit row could not be written: ${(auditError as Error).message ?? String(auditError)}\n`);
      process.exitCode = 1;
    }
  }
}

function view(row: UserRow): User {
  const at = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return { username: row.username, admin: row.is_admin === 1, createdAt: at(row.created_at), source: row.source, email: row.email, lastLoginAt: at(row.last_login_at) };
}

const SOURCE_NAMES: Record<string, string> = { ldap: 'LDAP', oidc: 'OpenID Connect' };

/** The server's refusal, said before any password is asked for: a user of an identity source has no password in Berth. */
function refuseExternalPassword(username: string, source: string | undefined): void {
  if (source === undefined || source === 'local') return;
  const where = source === 'ldap' ? 'change the password in the directory' : 'change the password at the OpenID provider';
  throw new CliError(`${username} signs in through ${SOURCE_NAMES[source] ?? source}: ${where}`);
}

/** The API's rule: the last system administrator may not be deleted or demoted. */
async function keepAnAdmin(meta: Metadata, row: UserRow, what: string): Promise<void> {
  if (row.is_admin === 1 && (await meta.users.countAdmins()) <= 1) throw new CliError(`cannot ${what} "${row.username}": it is the last system administrator`);
}

async function findUser(meta: Metadata, username: string): Promise<UserRow> {
  const row = await meta.users.find(username);
  if (!row) throw new CliError(`no user "${username}"`);
  return row;
}

// ---- passwords ----

function checkLength(password: string, what = 'password'): string {
  if (password.length < MIN_PASSWORD) throw new CliError(`${what}: must be at least ${MIN_PASSWORD} characters`);
  return password;
}

/** Asks for a new password twice on the terminal; empty means "generate one". */
async function askNewPassword(username: string): Promise<string | undefined> {
  const first = await askHidden(`New password for ${username} (empty: generate one): `);
  if (first === '') return undefined;
  checkLength(first);
  if ((await askHidden('Repeat the new password: ')) !== first) throw new CliError('the passwords do not match; nothing was changed');
  return first;
}

/**
 * The passwords a command was given: `--password`, the lines of `--password-stdin` (one: the new
 * password; two when `current` is wanted: the current one, then the new one), or the terminal.
 * `next` undefined: none given, so one is generated (by the server for `add`, here otherwise).
 */
async function passwordsOf(opts: PasswordFlags, username: string, wantCurrent: boolean): Promise<{ current?: string; next?: string }> {
  if (opts.password !== undefined && opts.passwordStdin) throw new CliError('--password and --password-stdin: pick one');
  if (opts.passwordStdin) {
    const lines = (await readStdin()).split(/\r?\n/);
    if (!wantCurrent) return { next: checkLength(lines[0] ?? '') };
    if (!lines[0] || !lines[1]) {
      throw new CliError('--password-stdin: changing your own password through the server reads two lines, your current password and then the new one');
    }
    return { current: lines[0], next: checkLength(lines[1]) };
  }
  const interactive = Boolean(process.stdin.isTTY);
  let current: string | undefined;
  if (wantCurrent) {
    if (!interactive) throw new CliError('changing your own password needs your current one: run this on a terminal, or pipe two lines (current, new) to --password-stdin');
    current = await askHidden(`Current password of ${username}: `);
    if (!current) throw new CliError('empty password');
  }
  if (opts.password !== undefined) return { current, next: checkLength(opts.password) };
  return { current, next: interactive ? await askNewPassword(username) : undefined };
}

const generate = (): string => randomBytes(15).toString('base64url');

function printUsers(users: User[], json: boolean | undefined): void {
  if (json) return printJSON(users);
  printTable(
    ['USERNAME', 'ADMIN', 'SOURCE', 'LAST LOGIN', 'CREATED'],
    users.map((u) => [u.username, u.admin ? 'yes' : 'no', u.source ?? 'local', u.source === 'local' || u.source === undefined ? '-' : formatTime(u.lastLoginAt, 'never'), formatTime(u.createdAt)]),
  );
}

/** `berth user add|passwd|list|delete`, through the server (logged in) or on a data directory (`--data-dir`). */
export function userCommand(program: Command): void {
  const user = program
    .command('user')
    .description('manage users: through the server you are logged in to, or with --data-dir on a data directory directly (recovery)');
  const common = (cmd: Command) =>
    withCommon(cmd).option('--data-dir <dir>', "work on the database in this data directory instead of through a server (recovery; it must exist)");

  common(
    user
      .command('add <username>')
      .description('create a user (without a password, one is generated and printed once); --source ldap|oidc registers someone of an identity source ahead of their first sign-in, without a password'),
  )
    .option('--password <password>', 'the password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--admin', 'make the user a system administrator')
    .addOption(new Option('--source <source>', 'where the account lives').choices(['local', 'ldap', 'oidc']).default('local'))
    .action(async (username: string, opts: UserFlags & PasswordFlags & { admin?: boolean; source: string }) => {
      const local = opts.source === 'local';
      if (username === 'me') throw new CliError('username: "me" is reserved (it names the caller)');
      if (local && !USERNAME.test(username)) throw new CliError('username: 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit (not "me")');
      if (!local && !isUsername(username)) throw new CliError('username: at most 255 characters, without "/", ":", control characters or surrounding spaces');
      if (!local && (opts.password !== undefined || opts.passwordStdin)) {
        throw new CliError(`--password: a ${opts.source} user signs in through ${SOURCE_NAMES[opts.source]} and has no password in Berth`);
      }
      const target = await targetOf(opts);
      let created: User;
      if (!local) {
        if (target.kind === 'server') created = await target.client.post<User>('/users', { username, admin: Boolean(opts.admin), source: opts.source });
        else {
          created = await withDatabase(target.dataDir, async (meta, audit) => {
            if (await meta.users.find(username)) throw new CliError(`user "${username}" already exists`);
            const row = await meta.users.createExternal({ username, source: opts.source, externalId: null, isAdmin: Boolean(opts.admin) });
            await audit('user.create', username, { admin: Boolean(opts.admin), source: opts.source });
            return view(row);
          });
        }
        if (opts.json) return printJSON(created);
        console.log(`created ${opts.source} user "${created.username}"${created.admin ? ' (admin)' : ''}: they sign in through ${SOURCE_NAMES[opts.source]}, with no password in Berth`);
        return;
      }
      const { next } = await passwordsOf(opts, username, false);
      if (target.kind === 'server') {
        created = await target.client.post<User>('/users', { username, admin: Boolean(opts.admin), ...(next !== undefined ? { password: next } : {}) });
      } else {
        const password = next ?? generate();
        created = await withDatabase(target.dataDir, async (meta, audit) => {
          const { hashPassword } = await import('../auth/passwords.ts');
          if (await meta.users.find(username)) throw new CliError(`user "${username}" already exists`);
          await meta.users.create(username, await hashPassword(password), Boolean(opts.admin));
          await audit('user.create', username, { admin: Boolean(opts.admin), source: 'local' });
          return view((await meta.users.find(username))!);
        });
        if (next === undefined) created.password = password;
      }
      if (opts.json) return printJSON(created);
      console.log(`created user "${created.username}"${created.admin ? ' (admin)' : ''}`);
      if (created.password) console.log(`password (shown once): ${created.password}`);
    });

  common(user.command('passwd <username>').description('set a password; your own, through the server, needs your current one'))
    .option('--password <password>', 'the new password (prefer --password-stdin)')
    .option('--password-stdin', 'read the new password from standard input (your own, through the server: two lines, current then new)')
    .action(async (username: string, opts: UserFlags & PasswordFlags) => {
      const target = await targetOf(opts);
      const name = target.kind === 'server' && username === 'me' ? target.login.username : username;
      // Through the server your own password needs the current one (a stolen token must not take
      // the account over); an administrator resets others' without it, as the data-directory mode does.
      const self = target.kind === 'server' && name === target.login.username;
      if (target.kind === 'server') {
        // Before asking for passwords: a user of LDAP or OIDC has none here (the server refuses it too).
        refuseExternalPassword(name, (await target.client.get<User>(`/users/${segment(name)}`)).source);
      }
      const { current, next } = await passwordsOf(opts, name, self);
      const password = next ?? generate();
      if (target.kind === 'server') {
        await target.client.patch<User>(`/users/${segment(name)}`, { password, ...(current !== undefined ? { currentPassword: current } : {}) });
      } else {
        await withDatabase(target.dataDir, async (meta, audit) => {
          const { hashPassword } = await import('../auth/passwords.ts');
          const row = await findUser(meta, name);
          refuseExternalPassword(row.username, row.source);
          await meta.users.setPassword(name, await hashPassword(password));
          await meta.tokens.deleteSessionsOf(row.id);
          await audit('user.update', name, { passwordChanged: true, reset: true });
        });
      }
      if (opts.json) return printJSON({ username: name, passwordChanged: true, ...(next === undefined ? { password } : {}) });
      console.log(`password of "${name}" changed; sessions and refresh tokens from the old one no longer work (personal access tokens still do)`);
      if (next === undefined) console.log(`password (shown once): ${password}`);
    });

  common(user.command('list').description('list users')).action(async (opts: UserFlags) => {
    const target = await targetOf(opts);
    const users =
      target.kind === 'server'
        ? (await target.client.list<User>('/users')).items
        : await withDatabase(target.dataDir, async (meta) => (await meta.users.list()).map(view));
    printUsers(users, opts.json);
  });

  common(user.command('delete <username>').description('delete a user with their memberships, tokens and sessions (never the last administrator)'))
    .action(async (given: string, opts: UserFlags) => {
      const target = await targetOf(opts);
      const username = target.kind === 'server' && given === 'me' ? target.login.username : given;
      if (target.kind === 'server') await target.client.delete(`/users/${segment(username)}`);
      else {
        await withDatabase(target.dataDir, async (meta, audit) => {
          const row = await findUser(meta, username);
          await keepAnAdmin(meta, row, 'delete');
          await meta.users.delete(username);
          await audit('user.delete', username);
        });
      }
      if (opts.json) return printJSON({ username, deleted: true });
      console.log(`deleted user "${username}"`);
    });
}
