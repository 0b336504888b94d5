// Runs short-lived commands (clients, openssl, apt-get) with a bounded timeout and captured output.
import { spawn } from 'node:child_process';

/** Options for {@link run}. */
export interface RunOptions {
  /** Text written to the command's stdin (then stdin is closed). */
  readonly input?: string;
  /** Full environment of the command; defaults to {@link cleanEnv}(). */
  readonly env?: NodeJS.ProcessEnv;
  /** Working directory. */
  readonly cwd?: string;
  /** Kill the command (SIGKILL) after this many milliseconds; default 120 000. */
  readonly timeoutMs?: number;
  /** Return the result instead of throwing when the exit code is not 0. */
  readonly allowFailure?: boolean;
  /** Secrets (e.g. passwords in `--user u:p`) shown as `***` in the recorded command line (4+ chars). */
  readonly redact?: readonly string[];
}

/** Outcome of a finished command. */
export interface RunResult {
  /** The command line as a shell-like string, for messages. */
  readonly commandLine: string;
  /** Exit code, or null when the command was ended by a signal. */
  readonly code: number | null;
  /** Signal that ended the command, if any. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  /** stdout as raw bytes (for binary output such as `ctr content get`). */
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
  /** True when the command was killed because it ran longer than the timeout. */
  readonly timedOut: boolean;
}

/** Thrown by {@link run} when a command fails; the message carries its full output. */
export class CommandError extends Error {
  /** The failed command's result. */
  readonly result: RunResult;
  constructor(result: RunResult, context?: string) {
    super(`${context ? `${context}: ` : ''}${describeResult(result)}`);
    this.name = 'CommandError';
    this.result = result;
  }
}

/** Removes ANSI colour and cursor sequences. */
export function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

/**
 * Shortens progress-bar output (ctr redraws its whole table every 100 ms, thousands of lines for a
 * hung push): strips ANSI sequences and, beyond 200 lines, keeps each distinct line once, in
 * order, plus the last `elapsed:` line.
 */
export function condenseProgress(text: string): string {
  const lines = stripAnsi(text).split('\n');
  if (lines.length <= 200) return lines.join('\n');
  const seen = new Set<string>();
  const kept: string[] = [];
  let lastElapsed: string | undefined;
  for (const raw of lines.map((l) => l.trimEnd())) {
    if (/^elapsed:/.test(raw)) lastElapsed = raw;
    else if (!seen.has(raw)) {
      seen.add(raw);
      kept.push(raw);
    }
  }
  if (lastElapsed) kept.push(lastElapsed);
  return `(${lines.length} lines condensed to ${kept.length} distinct ones)\n${kept.join('\n')}`;
}

/** Formats a result as `$ cmd` + exit status + stdout + stderr, for error messages and transcripts. */
export function describeResult(result: RunResult): string {
  const status = result.timedOut
    ? 'timed out'
    : result.code !== null
      ? `exit code ${result.code}`
      : `signal ${result.signal ?? '?'}`;
  return [
    `$ ${result.commandLine}  (${status})`,
    result.stdout.trim() ? `--- stdout ---\n${condenseProgress(result.stdout.trimEnd())}` : '--- stdout: (empty)',
    result.stderr.trim() ? `--- stderr ---\n${condenseProgress(result.stderr.trimEnd())}` : '--- stderr: (empty)',
  ].join('\n');
}

/** Quotes an argument for display only (commands never go through a shell). */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Formats a command and its arguments for display. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(quote).join(' ');
}

/**
 * The current environment without proxy variables, so clients talk to loopback registries directly
 * and never through a proxy configured on the machine. `extra` entries are added on top.
 */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(https?|all|no)_proxy$/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Runs a command without a shell and collects its output. Throws {@link CommandError} (with the full
 * output) when it exits non-zero, is killed, or times out, unless `allowFailure` is set.
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  let line = commandLine(command, args);
  for (const secret of options.redact ?? []) if (secret.length >= 4) line = line.replaceAll(secret, '***');
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? cleanEnv(),
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdin.on('error', () => {
      /* the command may exit without reading its input; the exit status tells the story */
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${line}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      const result: RunResult = {
        commandLine: line,
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stdoutBytes,
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      };
      if ((code !== 0 || timedOut) && !options.allowFailure) reject(new CommandError(result));
      else resolve(result);
    });
    child.stdin.end(options.input ?? '');
  });
}
