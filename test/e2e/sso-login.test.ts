// `berth login --sso` and `berth login --device` as a person runs them: the real CLI process, a
// real OpenID provider (oidc-provider in its own process) and, for the browser flow, headless
// Chromium driven through playwright-core filling the provider's login form. The stored token then
// works as the CLI's (and docker's) credential.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { basic, expectStatus, api } from '../support/api.ts';
import { REPO_ROOT } from '../support/berth.ts';
import { berthCli } from '../support/cli.ts';
import { approveDevice, generateSigningKey, startOidcProvider, type OidcProviderHandle, type OidcTestUser } from '../support/oidc-provider.ts';
import { cleanEnv } from '../support/run.ts';
import { rememberSecret } from '../support/secrets.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { ensurePackages, freePort, tmpDir } from '../support/system.ts';

const CALLBACK = '/api/v1/auth/oidc/callback';
const SCREENSHOT = '/tmp/sso-login.png';

function person(login: string, groups: string[]): OidcTestUser {
  const password = `${login}-provider-password`;
  rememberSecret(password, login);
  return { sub: `sub-${login}`, login, password, claims: { preferred_username: login, email: `${login}@example.com`, groups } };
}
const alice = person('alice', ['devs']);
const bob = person('bob', ['devs']);

/** A `berth` process whose stderr is read line by line while it runs. */
interface RunningCli {
  /** Resolves with the first stderr line matching `pattern` (rejects when the process ends first). */
  line(pattern: RegExp): Promise<string>;
  /** Resolves when it exits: its code, stdout and stderr. */
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
  child: ChildProcess;
}

function startCli(args: string[], env: Record<string, string>): RunningCli {
  const environment = cleanEnv({ ...env, BERTH_FROM_SOURCE: '1' });
  delete environment['DISPLAY'];
  delete environment['WAYLAND_DISPLAY'];
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiting: { pattern: RegExp; resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr += `${line}\n`;
    for (const w of waiting.splice(0)) {
      if (w.pattern.test(line)) w.resolve(line);
      else waiting.push(w);
    }
  });
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      for (const w of waiting.splice(0)) w.reject(new Error(`berth ${args[0]} exited (${code}) before printing the line:\n${stderr}`));
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, exit, line: (pattern) => new Promise((resolve, reject) => waiting.push({ pattern, resolve, reject })) };
}

describe('berth login through the OpenID provider', { timeout: 4 * 60_000 }, () => {
  let provider: OidcProviderHandle;
  let server: TestServer;
  let home: string;
  const running: ChildProcess[] = [];

  before(async () => {
    await ensurePackages([{ binary: 'chromium', pkg: 'chromium' }]);
    const port = await freePort();
    provider = await startOidcProvider({ clients: [{ clientId: 'berth', redirectUris: [`http://127.0.0.1:${port}${CALLBACK}`] }], users: [alice, bob], keys: [await generateSigningKey()] });
    server = await startTestServer({
      addr: `127.0.0.1:${port}`,
      auth: { mode: 'oidc', oidc: { issuer: provider.issuer, clientId: 'berth', scopes: ['openid', 'profile', 'email', 'groups'], displayName: 'Test IdP', redirectURL: `http://127.0.0.1:${port}${CALLBACK}` } },
    });
    home = await tmpDir('berth-sso-login');
  });
  after(async () => {
    for (const child of running) if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await server?.close();
    await provider?.stop();
  });

  /** The token the CLI stored, checked against the server. */
  async function storedLogin(config: string, username: string): Promise<void> {
    const file = JSON.parse(await readFile(config, 'utf8')) as { logins: { url: string; username: string; token: string }[] };
    const login = file.logins.find((l) => l.url === server.url)!;
    rememberSecret(login.token);
    assert.equal(login.username, username);
    assert.match(login.token, /^berth_pat_/);
    assert.deepEqual(await expectStatus(await api(server.url, 'GET', '/auth/whoami', { auth: basic(username, login.token) }), 200), { kind: 'user', name: username, isAdmin: false });
  }

  test('--sso: the CLI prints the address, Chromium signs in at the provider, the CLI stores a token', async () => {
    const config = path.join(home, 'alice', 'cli.json');
    const cli = startCli(['login', server.url, '--sso', '--json'], { BERTH_CLI_CONFIG: config });
    running.push(cli.child);
    const address = await cli.line(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/auth\/oidc\/login\?\S+$/);
    const browser = await chromium.launch({
      executablePath: '/usr/lib/chromium/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(address);
      await page.waitForSelector('input[name=login]');
      await page.screenshot({ path: SCREENSHOT });
      await page.fill('input[name=login]', alice.login);
      await page.fill('input[name=password]', alice.password);
      await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/, { timeout: 30_000 }), page.click('button[name=submit]')]);
      assert.match(await page.textContent('body') ?? '', /signed in/i);
    } finally {
      await browser.close();
    }
    const result = await cli.exit;
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as { username: string; tokenName: string };
    assert.equal(out.username, 'alice');
    assert.match(out.tokenName, /^berth-cli-/);
    await storedLogin(config, 'alice');
  });

  test('the portal: "Sign in with Test IdP" signs in at the provider and comes back to the page asked for, signed in', async () => {
    const browser = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/account`);
      await page.waitForURL(/\/login\?return=%2Faccount$/);
      await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
      await page.waitForSelector('input[name=login]');
      await page.fill('input[name=login]', bob.login);
      await page.fill('input[name=password]', bob.password);
      await Promise.all([page.waitForURL(`${server.url}/account`, { timeout: 30_000 }), page.click('button[name=submit]')]);
      // The session cookie set on the way back works for the portal's own requests.
      await page.getByRole('link', { name: 'Signed in as bob' }).waitFor({ timeout: 10_000 });
      await page.getByRole('heading', { level: 1 }).waitFor();
    } finally {
      await browser.close();
    }
  });

  test('--device: the CLI shows the code, the person approves elsewhere, the CLI stores a token', async () => {
    const config = path.join(home, 'bob', 'cli.json');
    const cli = startCli(['login', server.url, '--device', '--json'], { BERTH_CLI_CONFIG: config });
    running.push(cli.child);
    const complete = await cli.line(new RegExp(`^${provider.issuer.replace(/[.]/g, '\\.')}/\\S+$`));
    await approveDevice(complete, bob.login, bob.password);
    const result = await cli.exit;
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as { username: string }).username, 'bob');
    await storedLogin(config, 'bob');
  });

  test('a plain berth login on an OIDC server says to use --sso or --device', async () => {
    const cli = berthCli({ env: { BERTH_CLI_CONFIG: path.join(home, 'nobody', 'cli.json'), BERTH_FROM_SOURCE: '1' }, cwd: home, secrets: () => [] });
    const result = await cli(['login', server.url], { fails: true });
    assert.match(result.stderr, /--sso/);
    assert.match(result.stderr, /--device/);
  });
});
