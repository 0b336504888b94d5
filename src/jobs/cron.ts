// Cron expressions an administrator sets for scheduled jobs (GC, retention): validated the same way
// everywhere, read as UTC like the scheduler (croner).
import { Cron } from 'croner';

/** Scheduled runs closer together than this are refused: a retention run reads the whole project. */
export const MIN_CRON_INTERVAL_MS = 60 * 60_000;

/** Why `expression` cannot schedule retention runs, or undefined when it can. Never echoes it. */
export function cronProblem(expression: string): string | undefined {
  if (expression.trim() === '') return 'must not be empty';
  if (/[\u0000-\u001f\u007f]/.test(expression)) return 'must not contain control characters';
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone: 'Etc/UTC', paused: true });
  } catch {
    return 'is not a cron expression (5 or 6 space-separated fields, e.g. "0 3 * * *")';
  }
  const runs = cron.nextRuns(4).map((d) => d.getTime());
  cron.stop();
  if (runs.length === 0) return 'never fires';
  for (let i = 1; i < runs.length; i++) {
    if (runs[i]! - runs[i - 1]! < MIN_CRON_INTERVAL_MS) return 'fires more often than once an hour';
  }
  return undefined;
}

/** The next time (ISO) `cron` fires, UTC; null when it never does again or is not valid. */
export function nextRun(cron: string | null): string | null {
  if (cron === null) return null;
  try {
    const job = new Cron(cron, { timezone: 'Etc/UTC', paused: true });
    const next = job.nextRun();
    job.stop();
    return next ? next.toISOString() : null;
  } catch {
    return null;
  }
}
