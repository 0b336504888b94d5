// `berth login --sso` and `--device`: signing in through the server's OpenID provider, ending with
// a personal access token for this machine (the same thing the password login stores).
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { newVerifier, s256 } from '../auth/oidc/flows.ts';
import { ApiClient, ApiError } from './api-client.ts';
import { CliError } from './output.ts';

/** What a sign-in gives the CLI: the user it proved and the token made for this machine. */
export interface SsoToken {
  username: string;
  token: string;
  name: string;
  expiresAt: string | null;
}

/** The server's `/auth/config` answer. */
export interface AuthConfig {
  mode: 'local' | 'ldap' | 'oidc';
  oidc?: { displayName: string; loginPath: string };
}

/** How long the browser sign-in may take before the CLI gives up. */
const BROWSER_WAIT_MS = 5 * 60_000;
/** Token names tried: the base, then `-2` … `-9` (the user already has a token of that name). */
const NAME_ATTEMPTS = 9;

/** The server's sign-in configuration; undefined from a server too old to say (it has local users only). */
export async function authConfig(server: ApiClient): Promise<AuthConfig | undefined> {
  try {
    return await server.get<AuthConfig>('/auth/config');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** The `/auth/config` of a server that signs people in through an OpenID provider; a CliError naming the mode otherwise. */
async function ssoConfig(server: ApiClient): Promise<{ displayName: string; loginPath: string }> {
  const config = await authConfig(server);
  if (config?.mode !== 'oidc' || !config.oidc) {
    throw new CliError(`${server.baseUrl} does not use single sign-on (auth.mode ${config?.mode ?? 'local'}): log in with a user name and password (-u NAME)`);
  }
  return config.oidc;
}

/** The token names a login tries in turn: `base`, then `base-2` … `base-9` (the user already has one of that name). */
export function tokenNames(base: string): string[] {
  return Array.from({ length: NAME_ATTEMPTS }, (_, i) => (i === 0 ? base : `${base}-${i + 1}`));
}

/**
 * The browser sign-in: listens on 127.0.0.1 (a random port), prints the URL to open (on a line of
 * its own, to stderr) and opens it when a desktop is there, waits for the server to send the
 * browser back with a one-time code, and trades the code — with the verifier only this process
 * knows — for a personal access token named `tokenBase` (or `-2`, `-3`… when taken).
 */
export async function browserLogin(server: ApiClient, tokenBase: string): Promise<SsoToken> {
  const { displayName, loginPath } = await ssoConfig(server);
  const verifier = newVerifier();
  const listener = await listen();
  try {
    const port = (listener.server.address() as AddressInfo).port;
    const start = new URL(loginPath, server.baseUrl);
    start.searchParams.set('cli_port', String(port));
    start.searchParams.set('cli_challenge', s256(verifier));
    process.stderr.write(`Open this address in a browser to sign in with ${displayName}:\n\n${start.href}\n\nWaiting for the sign-in (at most ${BROWSER_WAIT_MS / 60_000} minutes)…\n`);
    openBrowser(start.href);
    const code = await listener.code;
    for (const name of tokenNames(tokenBase)) {
      try {
        return await server.post<SsoToken>('/auth/oidc/cli/exchange', { code, verifier, tokenName: name });
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409)) throw err;
      }
    }
    throw new CliError(`tokens named ${tokenBase} to ${tokenBase}-${NAME_ATTEMPTS} exist already: revoke some (berth token list)`);
  } finally {
    listener.server.close();
    listener.server.closeAllConnections();
  }
}

/**
 * The device sign-in, for machines without a browser: prints where to go and the code to enter,
 * then polls the server (which asks the provider) every interval until the person signed in,
 * refused, or the code expired.
 */
export async function deviceLogin(server: ApiClient, tokenBase: string): Promise<SsoToken> {
  const { displayName } = await ssoConfig(server);
  const start = await server.post<{ flow: string; userCode: string; verificationUri: string; verificationUriComplete: string; interval: number; expiresIn: number }>('/auth/oidc/device');
  process.stderr.write(
    `To sign in with ${displayName}, open ${printable(start.verificationUri)} on any device and enter the code ${printable(start.userCode)}, or open:\n\n${printable(start.verificationUriComplete)}\n\nWaiting for the sign-in…\n`,
  );
  const names = tokenNames(tokenBase);
  let attempt = 0;
  let interval = Math.max(1, start.interval);
  const deadline = Date.now() + (start.expiresIn + 30) * 1000;
  let wait = true;
  while (Date.now() < deadline) {
    if (wait) await sleep(interval * 1000);
    wait = true;
    let answer: { status: string } & Partial<SsoToken>;
    try {
      answer = await server.post('/auth/oidc/device/poll', { flow: start.flow, tokenName: names[attempt] });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409) || ++attempt >= names.length) throw err;
      // The flow is kept for another name: ask again at once.
      wait = false;
      continue;
    }
    switch (answer.status) {
      case 'done':
        return answer as SsoToken;
      case 'slow_down':
        interval += 5;
        break;
      case 'denied':
        throw new CliError('the sign-in was refused at the provider');
      case 'expired':
        throw new CliError('the code expired before the sign-in finished: run berth login --device again');
    }
  }
  throw new CliError('the code expired before the sign-in finished: run berth login --device again');
}

interface Listener {
  server: Server;
  /** The one-time code the server sends the browser back with; rejects with the server's refusal or after BROWSER_WAIT_MS. */
  code: Promise<string>;
}

/** A one-shot HTTP listener on 127.0.0.1 for the browser's return to `/callback`. */
async function listen(): Promise<Listener> {
  let settle!: { resolve: (code: string) => void; reject: (err: Error) => void };
  const code = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  let done = false;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback' || req.method !== 'GET' || done) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const value = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    if (value !== null && /^[A-Za-z0-9_-]{20,256}$/.test(value)) {
      done = true;
      page(res, 200, 'Signed in', 'You are signed in to Berth. You can close this window and go back to the terminal.');
      settle.resolve(value);
    } else if (error !== null) {
      done = true;
      const why = printable((url.searchParams.get('error_description') ?? error).slice(0, 500));
      page(res, 403, 'Sign-in refused', why);
      settle.reject(new CliError(`the sign-in was refused: ${why}`));
    } else {
      page(res, 400, 'Not a sign-in', 'This address only receives the answer of a sign-in started by berth login.');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new CliError(`cannot listen on 127.0.0.1 for the browser's return: ${err.message}`)));
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const timer = setTimeout(() => settle.reject(new CliError(`no sign-in within ${BROWSER_WAIT_MS / 60_000} minutes: run berth login --sso again (or use --device)`)), BROWSER_WAIT_MS);
  timer.unref();
  void code.finally(() => clearTimeout(timer)).catch(() => undefined);
  return { server, code };
}

function page(res: import('node:http').ServerResponse, status: number, title: string, text: string): void {
  const body = `<!doctype html><meta charset="utf-8"><title>${escapeHTML(title)}</title><h1>${escapeHTML(title)}</h1><p>${escapeHTML(text)}</p>\n`;
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'", 'Cache-Control': 'no-store' }).end(body);
}

function escapeHTML(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Server-sent text fit for a terminal: control characters (escape sequences) removed. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
}

/** Opens `url` in the desktop's browser when there is a desktop; never fails (the URL is printed anyway). */
function openBrowser(url: string): void {
  if (!process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY']) return;
  try {
    const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // No xdg-open: the person opens the printed URL.
  }
}
