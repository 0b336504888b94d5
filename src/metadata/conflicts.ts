// Telling the database's refusals apart: transactions PostgreSQL aborts to break a deadlock or a
// serialization conflict are run again (such an abort rolled everything back; SQLite's serial
// transactions never see either), and foreign-key violations on either database.
import { setTimeout as sleep } from 'node:timers/promises';

/** Attempts of a transaction PostgreSQL aborted to break a deadlock or a serialization conflict. */
const CONFLICT_ATTEMPTS = 8;

/**
 * Runs `transaction` again when PostgreSQL aborted it as a deadlock victim (40P01) or for a
 * serialization failure (40001), with growing random pauses (cut short by `signal`); other
 * errors, and the last attempt's, are thrown. Such an abort rolled everything back, so running
 * it again is safe.
 */
export async function retryingConflicts<T>(transaction: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if ((code !== '40P01' && code !== '40001') || attempt >= CONFLICT_ATTEMPTS) throw err;
      await sleep(Math.random() * 10 * 2 ** attempt, undefined, signal ? { signal } : {});
    }
  }
}

/** A foreign-key violation on either database (the row is still referenced, or references a missing one). */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
