// The whole test suite: type-check (server and portal), then every *.test.ts through Node's built-in runner, in one run.
// The files under test/postgres-s3/ run suites of test/http/ again on PostgreSQL + S3: for them
// this script first starts one PostgreSQL and one S3 server that all those files share
// (test/support/global-servers.ts) and stops them when the run ends.
// Suites that need other real parts (dockerd, nginx, skopeo…) install and start them themselves.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';

const root = new URL('..', import.meta.url).pathname;

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.ts') ? [relative(root, path)] : [];
  });
}

const only = process.argv.slice(2);
const files = (only.length ? only : find(join(root, 'test'))).sort();

// The server's sources and tests, then the portal's (ui/, its own compiler settings for the browser).
for (const project of ['tsconfig.json', 'ui/tsconfig.json']) {
  const tsc = spawnSync('npx', ['tsc', '--noEmit', '-p', project], { cwd: root, stdio: 'inherit' });
  if (tsc.status !== 0) {
    console.error(`type-check failed (${project})`);
    process.exit(tsc.status ?? 1);
  }
}

/** Starts the shared PostgreSQL and S3 servers; resolves to the environment naming them. */
async function sharedServers() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/global-servers.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the shared PostgreSQL and S3 servers did not start (exit ${code})`)));
  });
  return { env: JSON.parse(line), stop: async () => void (child.stdin.end(), await exited) };
}

const servers = files.some((f) => f.startsWith('test/postgres-s3/')) ? await sharedServers() : undefined;
const runner = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { cwd: root, stdio: 'inherit', env: { ...process.env, ...servers?.env } });
const status = await new Promise((resolve) => runner.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
await servers?.stop();
process.exit(status);
