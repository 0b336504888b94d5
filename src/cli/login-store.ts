// The CLI's stored logins: one personal access token per server, in a file only its owner can read.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { CliError } from './output.ts';

/**
 * One login, as `berth login` stores it. Only the token: the password is never written anywhere,
 * so a leaked file is revoked with one `berth token revoke`, not a password change.
 */
export interface StoredLogin {
  /** The server's origin, e.g. `https://registry.example.com` (no path, no trailing slash). */
  url: string;
  username: string;
  /** The personal access token (`berth_pat_…`) the CLI authenticates with. */
  token: string;
  /** The token's name on the server, so `berth logout` can revoke it. */
  tokenName: string;
  /** ISO time, or null when the token does not expire. */
  expiresAt: string | null;
}

interface StoreFile {
  /** The login used when `--url` is not given: the latest `berth login`. */
  current?: string;
  logins: StoredLogin[];
}

/** `$BERTH_CLI_CONFIG`, else `$XDG_CONFIG_HOME/berth/cli.json`, else `~/.config/berth/cli.json`. */
export function loginFilePath(): string {
  const explicit = process.env['BERTH_CLI_CONFIG'];
  if (explicit) return path.resolve(explicit);
  const base = process.env['XDG_CONFIG_HOME'] || path.join(homedir(), '.config');
  return path.join(base, 'berth', 'cli.json');
}

/**
 * A server address as people type it (`registry.example.com`, `http://127.0.0.1:5000/`) → its
 * origin. No scheme means https, as docker assumes for anything but localhost.
 */
export function normalizeUrl(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`not a server URL: "${text}" (example: https://registry.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`not an http(s) URL: "${text}"`);
  return url.origin;
}

async function readStore(file: string): Promise<StoreFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { logins: [] };
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoreFile>;
    const logins = Array.isArray(parsed.logins) ? parsed.logins.filter(isLogin) : [];
    return { ...(typeof parsed.current === 'string' ? { current: parsed.current } : {}), logins };
  } catch {
    throw new CliError(`${file} is not valid JSON; remove it and run "berth login" again`);
  }
}

function isLogin(value: unknown): value is StoredLogin {
  const v = value as Partial<StoredLogin> | null;
  return typeof v === 'object' && v !== null && typeof v.url === 'string' && typeof v.username === 'string' && typeof v.token === 'string' && typeof v.tokenName === 'string';
}

/**
 * Writes the file whole, via a 0600 temp file renamed into place, so a reader never sees half a
 * file and the token is never readable by others, not even for a moment.
 */
async function writeStore(file: string, store: StoreFile): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Our own directory under ~/.config is kept private too (mkdir's mode only applies when it creates it).
  if (!process.env['BERTH_CLI_CONFIG']) await chmod(dir, 0o700);
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(store, null, 2)}\n`);
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Every stored login and which is current. */
export async function listLogins(): Promise<{ file: string; current: string | undefined; logins: StoredLogin[] }> {
  const file = loginFilePath();
  const store = await readStore(file);
  return { file, current: store.current, logins: store.logins };
}

/** Stores `login` (replacing one for the same URL, which is returned) and makes it current. */
export async function saveLogin(login: StoredLogin): Promise<{ file: string; replaced: StoredLogin | undefined }> {
  const file = loginFilePath();
  const store = await readStore(file);
  const replaced = store.logins.find((l) => l.url === login.url);
  store.logins = [...store.logins.filter((l) => l.url !== login.url), login];
  store.current = login.url;
  await writeStore(file, store);
  return { file, replaced };
}

/** Removes the login for `url`; false when there was none. */
export async function removeLogin(url: string): Promise<boolean> {
  const file = loginFilePath();
  const store = await readStore(file);
  const kept = store.logins.filter((l) => l.url !== url);
  if (kept.length === store.logins.length) return false;
  store.logins = kept;
  if (store.current === url) {
    const latest = kept.at(-1);
    if (latest) store.current = latest.url;
    else delete store.current;
  }
  await writeStore(file, store);
  return true;
}

/**
 * The login to use: the one for `url` when given, else the current one. Throws a CliError that
 * says what to run when there is none.
 */
export async function findLogin(url?: string): Promise<StoredLogin> {
  const { file, current, logins } = await listLogins();
  if (url !== undefined) {
    const wanted = normalizeUrl(url);
    const login = logins.find((l) => l.url === wanted);
    if (!login) throw new CliError(`not logged in to ${wanted}: run "berth login ${wanted}"`);
    return login;
  }
  const login = logins.find((l) => l.url === current) ?? (logins.length === 1 ? logins[0] : undefined);
  if (login) return login;
  if (logins.length === 0) throw new CliError(`not logged in (no login in ${file}): run "berth login <url>"`);
  throw new CliError(`several logins are stored (${logins.map((l) => l.url).join(', ')}): pick one with --url`);
}
