import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line carries that a person does not need to read. */
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service']);

/**
 * A pino destination that writes each JSON line as one line a person can read:
 * `14:03:07.412 WARN  message key=value key2="a value"` — local time, the level's name, the message
 * first, then the fields (objects as compact JSON). Lines that are not JSON pass through unchanged.
 */
export function prettyDestination(out: { write(text: string): unknown } = process.stdout): DestinationStream {
  return {
    write(line: string) {
      out.write(`${formatLine(line)}\n`);
    },
  };
}

/** One JSON log line as a readable line (without the newline). */
export function formatLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.replace(/\n$/, '');
  }
  const time = typeof entry.time === 'number' ? localTime(new Date(entry.time)) : '';
  const level = (LEVELS[entry.level as number] ?? String(entry.level ?? '')).padEnd(5);
  const fields = Object.entries(entry)
    .filter(([key, value]) => !HIDDEN.has(key) && value !== undefined)
    .map(([key, value]) => `${key}=${formatValue(key, value)}`);
  return [time, level, typeof entry.msg === 'string' ? entry.msg : '', ...fields].filter(Boolean).join(' ');
}

function formatValue(key: string, value: unknown): string {
  if (key === 'err' && typeof value === 'object' && value !== null && 'message' in value) {
    const err = value as { type?: string; message: string; stack?: string };
    return JSON.stringify(`${err.type ?? 'Error'}: ${err.message}`);
  }
  if (typeof value === 'string') return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value);
}

function localTime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** Where the server's log goes for `log.format`: readable lines on a terminal (or when asked), else pino's JSON on stdout. */
export function logDestination(format: 'json' | 'pretty' | 'auto', stdout: { isTTY?: boolean; write(text: string): unknown } = process.stdout): DestinationStream | undefined {
  return format === 'pretty' || (format === 'auto' && stdout.isTTY === true) ? prettyDestination(stdout) : undefined;
}
