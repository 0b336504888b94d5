// A start that cannot succeed says why in one `berth:` line naming the setting and the fix, exits
// non-zero, and leaves no half-made admin behind (real `berth serve` processes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openMetadata } from '../../src/metadata/index.ts';

const BIN = new URL('../../bin/berth.js', import.meta.url).pathname;

/** Runs `berth serve ARGS` until it exits (at most 30 s); its exit code and output. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--log-format', 'json', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth serve ${args.join(' ')} did not exit: ${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Exactly one line on stderr, `berth: …`, no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${stderr}`);
  assert.match(lines[0]!, /^berth: /);
  assert.doesNotMatch(stderr, /\n\s+at |Error:/, 'no stack trace');
  return lines[0]!;
}

describe('start-up failures', () => {
  let dir: string;
  let occupied: Server;
  let port: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-startup-'));
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    port = (occupied.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => occupied.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('the port is in use: names addr and the fix; no admin created, no password printed', async () => {
    const data = join(dir, 'in-use');
    const { code, stderr } = await serve(['--data-dir', data, '--addr', `127.0.0.1:${port}`]);
    assert.notEqual(code, 0);
    const line = oneLine(stderr);
    assert.match(line, new RegExp(`^berth: addr 127\\.0\\.0\\.1:${port}: the address is in use .*--addr`));
    assert.doesNotMatch(stderr, /created the user|password/i);
    const meta = await openMetadata(data);
    try {
      assert.equal(await meta.users.count(), 0, 'the one-time admin is created only by a start that succeeds');
    } finally {
      await meta.close();
    }
  });

  test('an external URL without a scheme, a data directory that is a file or cannot be made, an unreadable TLS file', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const cases: [string[], RegExp][] = [
      [['--external-url', 'hub.example.com'], /^berth: invalid configuration:/],
      [['--data-dir', file], /^berth: dataDir .*a-file: exists and is a file, not a directory; choose a directory .*--data-dir/],
      [['--data-dir', join(file, 'sub')], /^berth: dataDir .*a-file\/sub: a part of the path is a file, not a directory/],
      [['--data-dir', '/proc/berth-cannot-exist'], /^berth: dataDir \/proc\/berth-cannot-exist: cannot be created \(ENOENT\)/],
      [['--tls-cert', join(dir, 'none.pem'), '--tls-key', join(dir, 'none.key')], /^berth: tls\.cert .*none\.pem: cannot be read \(ENOENT\)/],
    ];
    for (const [args, expected] of cases) {
      const withDefaults = args.includes('--data-dir') ? args : ['--data-dir', join(dir, 'ok'), ...args];
      const { code, stderr } = await serve([...withDefaults, '--addr', '127.0.0.1:0']);
      assert.notEqual(code, 0, args.join(' '));
      if (args[0] === '--external-url') {
        assert.match(stderr, expected);
        assert.match(stderr, /externalURL\.0: must be a URL such as https:\/\/registry\.example\.com \(with the scheme\)/);
        assert.doesNotMatch(stderr, /TypeError|\n\s+at /);
      } else {
        assert.match(oneLine(stderr), expected, args.join(' '));
      }
    }
  });

  test('a changed BERTH_ADMIN_PASSWORD on a later start is logged as ignored', async () => {
    const data = join(dir, 'later');
    const first = spawn(process.execPath, [BIN, 'serve', '--data-dir', data, '--addr', '127.0.0.1:0', '--log-format', 'json'], { env: { ...process.env, BERTH_ADMIN_PASSWORD: 'first-password-1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor(first.stdout, /berth listening/);
    first.kill('SIGTERM');
    await new Promise((resolve) => first.on('exit', resolve));
    const second = spawn(process.execPath, [BIN, 'serve', '--data-dir', data, '--addr', '127.0.0.1:0', '--log-format', 'json'], { env: { ...process.env, BERTH_ADMIN_PASSWORD: 'second-password-2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = await waitFor(second.stdout, /berth listening/);
    second.kill('SIGTERM');
    await new Promise((resolve) => second.on('exit', resolve));
    assert.match(out, /adminPassword \(BERTH_ADMIN_PASSWORD\) is ignored/);
    assert.doesNotMatch(out, /second-password-2/, 'the password itself is never logged');
  });
});

function waitFor(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in: ${text}`)), 30_000);
    stream.on('data', (d: Buffer) => {
      text += d.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}
