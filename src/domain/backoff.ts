// Exponential backoff, shared by everything that waits before trying again: job retries, webhook
// deliveries, an artifact's attempts within a replication execution.

/** Backoff between attempts: `baseMs` doubled per attempt, at most `maxMs`. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/** The backoff after failed attempt `attempt` (from 1): `baseMs` doubled per attempt, at most `maxMs`. */
export function backoff(attempt: number, policy: RetryPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
}
