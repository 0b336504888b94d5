/**
 * Slows down repeated failed logins from one client address: after `free` failures within the
 * window, each further attempt waits longer (1 s more per failure, at most `maxDelayMs`). A success
 * clears the address. Kept in memory per process; the audit log records every failure.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; first: number }>();

  constructor(private readonly options = { free: 5, windowMs: 5 * 60_000, maxDelayMs: 10_000 }) {}

  /** How long to hold the next attempt from `client` before answering it. */
  delayFor(client: string): number {
    const entry = this.current(client);
    if (!entry || entry.count < this.options.free) return 0;
    return Math.min((entry.count - this.options.free + 1) * 1000, this.options.maxDelayMs);
  }

  /** Records a failure; returns the number of failures in the window. */
  failed(client: string): number {
    const entry = this.current(client) ?? { count: 0, first: Date.now() };
    entry.count++;
    if (this.failures.size > 100_000) this.failures.clear();
    this.failures.set(client, entry);
    return entry.count;
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }

  private current(client: string): { count: number; first: number } | undefined {
    const entry = this.failures.get(client);
    if (entry && Date.now() - entry.first > this.options.windowMs) {
      this.failures.delete(client);
      return undefined;
    }
    return entry;
  }
}
