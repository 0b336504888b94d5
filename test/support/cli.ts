// Runs the real `berth` command (bin/berth.js) as a person would, for end-to-end CLI tests.
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT } from './berth.ts';
import { cleanEnv, describeResult, run, type RunResult } from './run.ts';

/** One person's `berth`: their environment (where the login is stored) and working directory. */
export interface Cli {
  /** Runs `berth …`; asserts exit 0, or exit 1 with `fails`. */
  (args: string[], options?: { input?: string; fails?: boolean }): Promise<RunResult>;
  /** Runs `berth … --json` (exit 0) and parses its output. */
  json<T>(args: string[]): Promise<T>;
}

export interface CliOptions {
  /** Added to the environment; without BERTH_CLI_CONFIG here, an inherited one is dropped (the default location is used). */
  env: Record<string, string>;
  /** Working directory of every call: a scratch directory, so anything written to `./` shows. */
  cwd: string;
  /** Secrets to show as `***` in failure messages, read at each call. */
  secrets: () => string[];
}

/** A CLI user with its own stored-login location (env), as two people on two machines. */
export function berthCli(options: CliOptions): Cli {
  const env = cleanEnv(options.env);
  if (!options.env['BERTH_CLI_CONFIG']) delete env['BERTH_CLI_CONFIG'];
  const call = async (args: string[], opts: { input?: string; fails?: boolean } = {}): Promise<RunResult> => {
    const result = await run(process.execPath, [path.join(REPO_ROOT, 'bin', 'berth.js'), ...args], {
      env,
      cwd: options.cwd,
      allowFailure: true,
      timeoutMs: 60_000,
      redact: options.secrets(),
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
    if (opts.fails) assert.equal(result.code, 1, `expected exit 1:\n${describeResult(result)}`);
    else assert.equal(result.code, 0, describeResult(result));
    return result;
  };
  return Object.assign(call, { json: async <T>(args: string[]) => JSON.parse((await call([...args, '--json'])).stdout) as T });
}

/** Rows of a printTable output as arrays of cells (cells are separated by two or more spaces). */
export function tableRows(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').map((line) => line.split(/\s{2,}/));
}

export function basicAuth(user: string, secret: string): string {
  return `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
}

/** Status of GET /api/v1/auth/whoami with these credentials: 200 when they work. */
export async function whoamiStatus(baseUrl: string, user: string, secret: string): Promise<number> {
  const res = await fetch(`${baseUrl}/api/v1/auth/whoami`, { headers: { Authorization: basicAuth(user, secret) } });
  await res.arrayBuffer();
  return res.status;
}
