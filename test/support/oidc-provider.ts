// A real OpenID provider for tests: the certified `oidc-provider` package in a child process of its
// own (oidc-provider-main.ts) on 127.0.0.1, so a test can stop it, restart it with new signing
// keys, and make it tamper with the ID tokens it issues. Plus plain-HTTP drivers of its pages: the
// browser side of the code flow (signInWithForm) and of the device flow (approveDevice).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { startProcess, tailFile, type ManagedProcess } from './processes.ts';
import { cleanEnv } from './run.ts';
import { freePort, tmpDir, waitForHttp } from './system.ts';

/**
 * How the provider rewrites the `id_token` of token-endpoint answers: `expired` (re-signed with
 * its key, exp an hour ago), `wrong-audience`, `wrong-nonce` (both re-signed), `bad-signature`
 * (payload changed, signature kept), `foreign-key` (signed by a key outside its JWKS, own kid).
 */
export type TamperMode = 'expired' | 'wrong-audience' | 'wrong-nonce' | 'bad-signature' | 'foreign-key';

/** A registered client. */
export interface OidcTestClient {
  clientId: string;
  /** Unset: a public client (token_endpoint_auth_method none). */
  clientSecret?: string;
  redirectUris: string[];
  /** Default: authorization_code, refresh_token and the device code grant. */
  grantTypes?: string[];
}

/** A person who can sign in with `login`/`password`; `claims` are released by scope (profile: preferred_username, name; email; groups). */
export interface OidcTestUser {
  sub: string;
  login: string;
  password: string;
  claims: Record<string, unknown>;
}

/** What the provider runs with. */
export interface OidcProviderOptions {
  clients: OidcTestClient[];
  users: OidcTestUser[];
  /** Private signing JWKs (see {@link generateSigningKey}); all are published, the first one of the alg signs. */
  keys: JWK[];
  tamper?: TamperMode;
  /**
   * oidc-provider's conformIdTokenClaims: true puts only `sub` (and the protocol claims) in the
   * ID token and the scope claims in userinfo — a provider that needs the userinfo fallback.
   * Default false: all granted claims in the ID token.
   */
  conformIdTokenClaims?: boolean;
  /** Seconds a device code lives (default 600). */
  deviceCodeTTL?: number;
}

/** What the provider process reads (internal to the harness). */
export interface ProviderProcessOptions extends OidcProviderOptions {
  port: number;
  controlToken: string;
}

/** A running provider. */
export interface OidcProviderHandle {
  /** `http://127.0.0.1:PORT`: the issuer, also the base URL. */
  readonly issuer: string;
  /** The same as `issuer` (the provider's base URL). */
  readonly url: string;
  readonly port: number;
  readonly logFile: string;
  /** The options it runs with now. */
  options(): OidcProviderOptions;
  /** Stops the process (SIGTERM, then SIGKILL by pid). */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port with `changes` merged in (e.g. new keys); sessions and codes are lost. */
  restart(changes?: Partial<OidcProviderOptions>): Promise<void>;
  /** Sets (or clears, with undefined) the ID-token tamper mode at runtime. */
  setTamper(mode: TamperMode | undefined): Promise<void>;
  /** Sets the device code lifetime for codes issued from now on. */
  setDeviceCodeTTL(seconds: number): Promise<void>;
  /** Replaces the people and their claims at runtime (grants survive: a refresh for a person no longer listed is invalid_grant). */
  setUsers(users: OidcTestUser[]): Promise<void>;
  /** Requests per path (`/jwks`, `/token`, `/me`, `/.well-known/openid-configuration`…) since the process started. */
  stats(): Promise<Record<string, number>>;
  /** {@link signInWithForm}. */
  signIn(authorizationUrl: string, login: string, password: string, options?: { deny?: boolean }): Promise<URL>;
  /** {@link approveDevice}. */
  approveDevice(target: string | { uri: string; userCode: string }, login: string, password: string, options?: { deny?: boolean }): Promise<void>;
}

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'oidc-provider-main.ts');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A fresh RS256 private signing JWK with a random kid. */
export async function generateSigningKey(kid = `k-${randomBytes(4).toString('hex')}`): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

/** Starts the provider on a free loopback port; resolves once its discovery document answers. */
export async function startOidcProvider(initial: OidcProviderOptions): Promise<OidcProviderHandle> {
  const port = await freePort();
  const dir = await tmpDir('berth-oidc-provider');
  const logFile = path.join(dir, 'provider.log');
  const controlToken = randomBytes(16).toString('hex');
  const issuer = `http://127.0.0.1:${port}`;
  let current: OidcProviderOptions = { ...initial };
  let proc: ManagedProcess | undefined;

  const launch = async () => {
    const file = path.join(dir, 'options.json');
    await writeFile(file, JSON.stringify({ ...current, port, controlToken } satisfies ProviderProcessOptions), { mode: 0o600 });
    const started = await startProcess({ name: 'oidc-provider', command: process.execPath, args: ['--import', 'tsx', MAIN, file], cwd: ROOT, env: cleanEnv(), logFile });
    proc = started;
    try {
      await waitForHttp(`${issuer}/.well-known/openid-configuration`, { timeoutMs: 30_000, abortIf: () => started.exitDescription() });
    } catch (error) {
      await started.stop();
      throw new Error(`the test OpenID provider did not start: ${(error as Error).message}\n${await tailFile(logFile)}`);
    }
  };
  const control = async (pathname: string, body?: unknown) => {
    const response = await fetch(`${issuer}${pathname}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'x-control-token': controlToken, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`provider control ${pathname} answered ${response.status}`);
    return response.status === 204 ? undefined : ((await response.json()) as Record<string, number>);
  };

  await launch();
  return {
    issuer,
    url: issuer,
    port,
    logFile,
    options: () => current,
    stop: async () => {
      await proc?.stop({ termTimeoutMs: 5_000 });
    },
    restart: async (changes = {}) => {
      await proc?.stop({ termTimeoutMs: 5_000 });
      current = { ...current, ...changes };
      await launch();
    },
    setTamper: async (mode) => {
      current = { ...current, tamper: mode };
      await control('/__test/control', { tamper: mode ?? null });
    },
    setDeviceCodeTTL: async (seconds) => {
      current = { ...current, deviceCodeTTL: seconds };
      await control('/__test/control', { deviceCodeTTL: seconds });
    },
    setUsers: async (users) => {
      current = { ...current, users };
      await control('/__test/control', { users });
    },
    stats: async () => (await control('/__test/stats'))!,
    signIn: signInWithForm,
    approveDevice,
  };
}

// ---- the person's side over plain HTTP -------------------------------------------------------

/** Cookies by name and path, enough for one provider on one host. */
class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((p) => p.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      const attr = (key: string) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const cookiePath = attr('path') ?? '/';
      const expires = attr('expires');
      const gone = attr('max-age') === '0' || (expires !== undefined && Date.parse(expires) < Date.now()) || value === '';
      if (gone) this.#cookies.delete(`${name} ${cookiePath}`);
      else this.#cookies.set(`${name} ${cookiePath}`, { name, value, path: cookiePath });
    }
  }

  header(url: URL): string {
    return [...this.#cookies.values()]
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

const decode = (text: string) =>
  text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e[0] !== '#') return named[e.toLowerCase()]!;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });
const attribute = (tag: string, name: string) => {
  const m = new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag);
  return m ? decode(m[1]!) : undefined;
};

/** What the person types, and whether they refuse. */
export interface PersonInput {
  login: string;
  password: string;
  /** Press Cancel / Deny instead of signing in / allowing. */
  deny?: boolean;
  /** For a verification page without the code filled in. */
  userCode?: string;
}

/**
 * Follows redirects and submits the pages' single forms like a person would (hidden fields kept,
 * login and password typed, the Allow or Deny button pressed) until `done` says to stop on a
 * redirect, or a page has no form. Throws on an HTTP error or a refused login.
 */
async function drive(start: URL, input: PersonInput, done: (location: URL) => boolean): Promise<{ redirect?: URL; page?: string }> {
  const jar = new CookieJar();
  let next: { url: URL; body?: URLSearchParams } = { url: start };
  let logins = 0;
  for (let step = 0; step < 40; step++) {
    const cookie = jar.header(next.url);
    const response = await fetch(next.url, {
      method: next.body ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(next.body ? { body: next.body } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    jar.store(response);
    if (response.status >= 300 && response.status < 400) {
      const location = new URL(response.headers.get('location')!, next.url);
      await response.body?.cancel();
      if (done(location)) return { redirect: location };
      next = { url: location };
      continue;
    }
    const html = await response.text();
    if (html.includes('class="error"')) return { page: html };
    if (response.status !== 200) throw new Error(`${next.url.pathname} answered ${response.status}: ${html.replace(/<[^>]+>/g, ' ').trim().slice(0, 300)}`);
    const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
    if (!form) return { page: html };
    const body = new URLSearchParams();
    for (const tag of form[2]!.match(/<input\b[^>]*>/gi) ?? []) {
      const name = attribute(tag, 'name');
      if (!name) continue;
      const type = (attribute(tag, 'type') ?? 'text').toLowerCase();
      if (type === 'hidden') body.append(name, attribute(tag, 'value') ?? '');
      else if (type === 'password') body.append(name, input.password);
      else if (name === 'login') body.append(name, input.login);
      else if (name === 'user_code') body.append(name, attribute(tag, 'value') ?? input.userCode ?? '');
    }
    if (body.has('password') && ++logins > 1) throw new Error(`the provider refused the login of ${input.login}`);
    const buttons = (form[2]!.match(/<button\b[^>]*>/gi) ?? []).filter((b) => attribute(b, 'name'));
    const button = buttons.find((b) => (attribute(b, 'name') === 'abort') === Boolean(input.deny)) ?? (input.deny ? undefined : buttons[0]);
    if (button) body.append(attribute(button, 'name')!, attribute(button, 'value') ?? '');
    next = { url: new URL(attribute(form[1]!, 'action') ?? next.url.href, next.url), body };
  }
  throw new Error('the sign-in did not finish within 40 steps');
}

/**
 * The browser side of the authorization-code flow over plain HTTP: opens `authorizationUrl`,
 * signs in with the login form (or cancels, with `deny`), consents, and returns the redirect to
 * the client's redirect_uri (the callback URL with code and state, or with error=access_denied).
 */
export async function signInWithForm(authorizationUrl: string, login: string, password: string, options: { deny?: boolean } = {}): Promise<URL> {
  const start = new URL(authorizationUrl);
  const redirectUri = new URL(start.searchParams.get('redirect_uri') ?? '');
  const isCallback = (u: URL) => u.origin === redirectUri.origin && u.pathname === redirectUri.pathname;
  const result = await drive(start, { login, password, ...options }, isCallback);
  if (!result.redirect) throw new Error(`the sign-in ended on a page, not at the redirect URI: ${result.page!.replace(/<[^>]+>/g, ' ').trim().slice(0, 300)}`);
  return result.redirect;
}

/**
 * The person's side of the device flow over plain HTTP: opens the verification URI (complete, or
 * plain with the user code typed in), allows (or denies) the device, signs in. Resolves once the
 * provider's success page is shown (or the denial accepted); throws otherwise.
 */
export async function approveDevice(target: string | { uri: string; userCode: string }, login: string, password: string, options: { deny?: boolean } = {}): Promise<void> {
  const uri = typeof target === 'string' ? target : target.uri;
  const userCode = typeof target === 'string' ? undefined : target.userCode;
  const result = await drive(new URL(uri), { login, password, ...options, ...(userCode ? { userCode } : {}) }, () => false);
  const text = (result.page ?? '').replace(/<[^>]+>/g, ' ').trim();
  if (options.deny) {
    if (!/was denied/i.test(text)) throw new Error(`the denial was not confirmed: ${text.slice(0, 300)}`);
    return;
  }
  if (!result.page?.includes('id="done"')) throw new Error(`the device was not approved: ${text.slice(0, 300)}`);
}
