import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { Metadata } from '../metadata/index.ts';
import { hashPassword } from '../auth/passwords.ts';
import { UserExistsError } from '../metadata/users.ts';
import { CliError, printTable, readStdin } from './output.ts';

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MIN_PASSWORD = 8;

interface StoreOptions {
  config?: string;
  dataDir?: string;
}

/** Opens the metadata of the data directory the server uses (same config sources as `serve`). */
async function withMetadata<T>(opts: StoreOptions, task: (meta: Metadata) => Promise<T>): Promise<T> {
  // Loaded on use, so other subcommands start without zod and the database driver.
  const { loadConfig } = await import('../config/load.ts');
  const { openMetadata } = await import('../metadata/index.ts');
  const config = loadConfig({ file: opts.config, flags: { dataDir: opts.dataDir } });
  const meta = await openMetadata(config.dataDir);
  try {
    return await task(meta);
  } finally {
    await meta.close();
  }
}

/** The password from --password, --password-stdin, or a generated one (printed once). */
async function choosePassword(opts: { password?: string; passwordStdin?: boolean }): Promise<{ password: string; generated: boolean }> {
  let password = opts.password;
  if (opts.passwordStdin) password = (await readStdin()).replace(/\r?\n$/, '');
  if (password === undefined) return { password: randomBytes(15).toString('base64url'), generated: true };
  if (password.length < MIN_PASSWORD) throw new CliError(`password: must be at least ${MIN_PASSWORD} characters`);
  return { password, generated: false };
}

/** `berth user add|passwd|list|delete`: manages users directly in the data directory. */
export function userCommand(program: Command): void {
  const user = program.command('user').description('manage users (works on the data directory directly; the server may be running)');
  const common = (cmd: Command) =>
    cmd.option('-c, --config <file>', 'YAML configuration file (env: BERTH_CONFIG)').option('--data-dir <dir>', 'data directory (env: BERTH_DATA_DIR)');

  common(user.command('add <username>').description('create a user'))
    .option('--password <password>', 'the password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--admin', 'make the user a system administrator')
    .action(async (username: string, opts: StoreOptions & { password?: string; passwordStdin?: boolean; admin?: boolean }) => {
      if (!USERNAME.test(username)) throw new CliError('username: 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit');
      const { password, generated } = await choosePassword(opts);
      await withMetadata(opts, async (meta) => {
        try {
          await meta.users.create(username, await hashPassword(password), Boolean(opts.admin));
        } catch (err) {
          if (err instanceof UserExistsError) throw new CliError(err.message);
          throw err;
        }
      });
      console.log(`created user "${username}"${opts.admin ? ' (admin)' : ''}`);
      if (generated) console.log(`password (shown once): ${password}`);
    });

  common(user.command('passwd <username>').description("set a user's password"))
    .option('--password <password>', 'the new password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (username: string, opts: StoreOptions & { password?: string; passwordStdin?: boolean }) => {
      const { password, generated } = await choosePassword(opts);
      const changed = await withMetadata(opts, async (meta) => meta.users.setPassword(username, await hashPassword(password)));
      if (!changed) throw new CliError(`no user "${username}"`);
      console.log(`password of "${username}" changed; refresh tokens issued before are revoked`);
      if (generated) console.log(`password (shown once): ${password}`);
    });

  common(user.command('list').description('list users'))
    .option('--json', 'print JSON')
    .action(async (opts: StoreOptions & { json?: boolean }) => {
      const users = await withMetadata(opts, (meta) => meta.users.list());
      const rows = users.map((u) => ({ username: u.username, admin: u.is_admin === 1, created: new Date(Number(u.created_at)).toISOString() }));
      if (opts.json) console.log(JSON.stringify(rows, null, 2));
      else printTable(['USERNAME', 'ADMIN', 'CREATED'], rows.map((r) => [r.username, r.admin ? 'yes' : 'no', r.created]));
    });

  common(user.command('delete <username>').description('delete a user'))
    .action(async (username: string, opts: StoreOptions) => {
      const deleted = await withMetadata(opts, (meta) => meta.users.delete(username));
      if (!deleted) throw new CliError(`no user "${username}"`);
      console.log(`deleted user "${username}"`);
    });
}
