import type { Command } from 'commander';
import { type ApiClient, type CommonFlags, loggedInClient, segment, withCommon } from './api-client.ts';
import { formatTime, printFields, printJSON } from './format.ts';
import { askHidden } from './login.ts';
import { CliError, printTable, readStdin } from './output.ts';

/** A registry endpoint as the API describes it (the credential itself never comes back). */
export interface RegistryView {
  name: string;
  type: string;
  url: string;
  username: string | null;
  hasCredential: boolean;
  caFile: string | null;
  insecure: boolean;
  description: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  usedBy?: string[];
  usedByRules?: string[];
}

/** What a connection test found. */
export interface RegistryTestView {
  ok: boolean;
  auth: 'none' | 'basic' | 'bearer' | null;
  realm: string | null;
  authenticated: boolean;
  elapsedMs: number;
  error?: string;
}

const TYPES = ['berth', 'distribution', 'harbor', 'dockerhub', 'ghcr', 'quay', 'generic'];

/** `--server` (which stored login) and `--json`, as `add` and `update` have them. */
interface ServerFlags {
  server?: string;
  json?: boolean;
}

interface SettingFlags {
  type?: string;
  url?: string;
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  caFile?: string;
  insecure?: boolean;
  description?: string;
}

/**
 * The options of `add` and `update`. There `--url` is the endpoint's URL, so the stored login is
 * chosen with `--server` (what `--url` does in every other command).
 */
function settingOptions(cmd: Command, adding: boolean): Command {
  return cmd
    .option('--server <url>', 'Berth server to use when logins to several are stored')
    .option('--json', 'print JSON instead of a table')
    .option('--type <type>', `${TYPES.join(', ')}${adding ? ' (required)' : ''}`)
    .option('--url <url>', 'http(s)://host[:port]' + (adding ? ' (default for dockerhub, ghcr, quay: their public registry)' : ''))
    .option('--username <name>', 'user name at the registry (with a password)')
    .option('--password-stdin', 'read the password or token from standard input (first line)')
    .option('--password <password>', 'the password or token (visible to other users of this machine: prefer --password-stdin)')
    .option('--ca-file <path>', 'PEM file of CA certificates, a path on the server')
    .option('--insecure', 'do not verify the TLS certificate (test setups only)')
    .option('--description <text>', 'what it is for');
}

/** The password of the flags: `--password`, the first line of stdin, or a prompt on a terminal when a username needs one. */
async function passwordOf(opts: SettingFlags, prompt: boolean): Promise<string | undefined> {
  if (opts.password !== undefined && opts.passwordStdin) throw new CliError('--password and --password-stdin: pick one');
  if (opts.passwordStdin) {
    const line = (await readStdin()).split(/\r?\n/)[0] ?? '';
    if (line === '') throw new CliError('--password-stdin: standard input is empty');
    return line;
  }
  if (opts.password !== undefined) {
    process.stderr.write('warning: --password is visible to other users of this machine; use --password-stdin\n');
    return opts.password;
  }
  if (prompt && process.stdin.isTTY) return (await askHidden(`Password of ${opts.username} at the registry: `)) || undefined;
  return undefined;
}

function checkType(type: string | undefined): void {
  if (type !== undefined && !TYPES.includes(type)) throw new CliError(`--type: one of ${TYPES.join(', ')}`);
}

/** The API body of the setting flags (absent flags left out). */
async function settingsOf(opts: SettingFlags, adding: boolean): Promise<Record<string, unknown>> {
  checkType(opts.type);
  const password = await passwordOf(opts, adding && opts.username !== undefined);
  if (password !== undefined && opts.username === undefined && adding) throw new CliError('a password needs --username');
  if (opts.username !== undefined && password === undefined && adding) throw new CliError('--username needs its password: --password-stdin (or --password)');
  return {
    ...(opts.type !== undefined ? { type: opts.type } : {}),
    ...(opts.url !== undefined ? { url: opts.url } : {}),
    ...(opts.username !== undefined ? { username: opts.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
    ...(opts.insecure ? { insecure: true } : {}),
    ...(opts.description !== undefined ? { description: opts.description } : {}),
  };
}

function credentialText(r: RegistryView): string {
  return r.username ? `${r.username}${r.hasCredential ? ' (password saved)' : ''}` : 'anonymous';
}

function tlsText(r: RegistryView): string {
  if (r.url.startsWith('http:')) return 'plain http';
  if (r.insecure) return 'not verified (insecure)';
  return r.caFile ? `verified, CA ${r.caFile}` : 'verified';
}

/** One line for a test: `ok: bearer auth (realm …), authenticated, 120 ms` or `failed: …`. */
export function testLine(t: RegistryTestView): string {
  const how = t.auth === null ? '' : `${t.auth === 'none' ? 'no auth' : `${t.auth} auth`}${t.realm ? ` (realm ${t.realm})` : ''}, `;
  if (t.ok) return `ok: ${how}${t.authenticated ? 'authenticated' : 'anonymous'}, ${t.elapsedMs} ms`;
  return `failed: ${t.error ?? 'unknown error'}${how ? ` [${how.slice(0, -2)}]` : ''}`;
}

/** Prints a test's result; exit 1 (a CliError) when it failed. */
function reportTest(t: RegistryTestView, json: boolean | undefined): void {
  if (json) printJSON(t);
  else if (t.ok) console.log(testLine(t));
  if (!t.ok) throw new CliError(json ? 'the connection test failed' : testLine(t));
}

async function show(client: ApiClient, name: string): Promise<RegistryView> {
  return client.get<RegistryView>(`/registries/${segment(name)}`);
}

/** `berth registry add|list|show|test|update|delete`, over /api/v1/registries (system administrators). */
export function registryCommand(program: Command): void {
  const cmd = program
    .command('registry')
    .description('registry endpoints: other registries Berth pulls from (proxy-cache projects) — system administrators; passwords are stored sealed and never shown');

  settingOptions(cmd.command('add <name>').description('register an upstream registry'), true)
    .option('--test', 'test the connection first and save only if it works')
    .action(async (name: string, opts: ServerFlags & SettingFlags & { test?: boolean }) => {
      if (opts.type === undefined) throw new CliError(`give --type: ${TYPES.join(', ')}`);
      const body = { name, ...(await settingsOf(opts, true)) };
      const { client } = await loggedInClient(opts.server);
      if (opts.test) {
        const result = await client.post<RegistryTestView>('/registries/test', body);
        if (!result.ok) throw new CliError(`not saved: the connection test ${testLine(result)}`);
        if (!opts.json) console.log(`tested: ${testLine(result)}`);
      }
      const created = await client.post<RegistryView>('/registries', body);
      if (opts.json) return printJSON(created);
      console.log(`added registry endpoint "${created.name}" (${created.type}, ${created.url}, ${credentialText(created)})`);
    });

  withCommon(cmd.command('list').description('the registry endpoints'))
    .option('-q, --query <text>', 'only endpoints whose name contains this')
    .action(async (opts: CommonFlags & { query?: string }) => {
      const { client } = await loggedInClient(opts.url);
      const { items } = await client.list<RegistryView>('/registries', { q: opts.query });
      if (opts.json) return printJSON(items);
      printTable(
        ['NAME', 'TYPE', 'URL', 'CREDENTIALS', 'TLS', 'DESCRIPTION'],
        items.map((r) => [r.name, r.type, r.url, credentialText(r), tlsText(r), r.description ?? '']),
      );
    });

  withCommon(cmd.command('show <name>').description("a registry endpoint's settings and the projects using it")).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    const r = await show(client, name);
    if (opts.json) return printJSON(r);
    printFields([
      ['Name', r.name],
      ['Type', r.type],
      ['URL', r.url],
      ['Credentials', credentialText(r)],
      ['TLS', tlsText(r)],
      ['Description', r.description ?? '-'],
      ['Used by', r.usedBy?.length ? r.usedBy.join(', ') : '-'],
      ['Replication rules', r.usedByRules?.length ? r.usedByRules.join(', ') : '-'],
      ['Created', `${formatTime(r.createdAt)}${r.createdBy ? ` by ${r.createdBy}` : ''}`],
      ['Updated', formatTime(r.updatedAt)],
    ]);
  });

  withCommon(cmd.command('test <name>').description('test the connection: the real challenge and token/Basic flow with the saved credentials')).action(
    async (name: string, opts: CommonFlags) => {
      const { client } = await loggedInClient(opts.url);
      reportTest(await client.post<RegistryTestView>(`/registries/${segment(name)}/test`, {}), opts.json);
    },
  );

  settingOptions(cmd.command('update <name>').description("change an endpoint's settings (the name cannot change)"), false)
    .option('--no-credentials', 'remove the username and password (anonymous access)')
    .option('--no-ca-file', 'stop trusting the extra CA file')
    .option('--verify-tls', 'verify the TLS certificate again (undo --insecure)')
    .option('--test', 'test the changed settings first and save only if they work')
    .action(async (name: string, opts: ServerFlags & Omit<SettingFlags, 'caFile'> & { credentials?: boolean; caFile?: string | false; verifyTls?: boolean; test?: boolean }) => {
      if (opts.insecure && opts.verifyTls) throw new CliError('--insecure and --verify-tls: pick one');
      if (opts.credentials === false && (opts.username !== undefined || opts.password !== undefined || opts.passwordStdin)) throw new CliError('--no-credentials removes the credentials: give no --username or password with it');
      const caFile = opts.caFile;
      const body = await settingsOf({ ...opts, caFile: typeof caFile === 'string' ? caFile : undefined }, false);
      if (opts.username !== undefined && body.password === undefined) throw new CliError('a new --username needs its password: --password-stdin (or --password)');
      if (caFile === false) body.caFile = null;
      if (opts.credentials === false) body.username = null;
      if (opts.verifyTls) body.insecure = false;
      if (Object.keys(body).length === 0) throw new CliError('nothing to change: give --type, --url, --username, --password-stdin, --ca-file, --insecure, --description …');
      const { client } = await loggedInClient(opts.server);
      if (opts.test) {
        const result = await client.post<RegistryTestView>(`/registries/${segment(name)}/test`, body);
        if (!result.ok) throw new CliError(`not saved: the connection test ${testLine(result)}`);
        if (!opts.json) console.log(`tested: ${testLine(result)}`);
      }
      const updated = await client.patch<RegistryView>(`/registries/${segment(name)}`, body);
      if (opts.json) return printJSON(updated);
      console.log(`updated registry endpoint "${updated.name}" (${updated.type}, ${updated.url}, ${credentialText(updated)})`);
    });

  withCommon(cmd.command('delete <name>').description('delete an endpoint (refused while proxy-cache projects use it)')).action(async (name: string, opts: CommonFlags) => {
    const { client } = await loggedInClient(opts.url);
    await client.delete(`/registries/${segment(name)}`);
    if (opts.json) return printJSON({ name, deleted: true });
    console.log(`deleted registry endpoint "${name}"`);
  });
}
