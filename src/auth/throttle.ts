/**
 * Refuses password guessing without punishing the people it is aimed at. Failures are counted
 * independently per (address, user name), per user name from any address and per address for any
 * user name; once a key is over its free failures it is locked for a time that doubles with each
 * further failure (capped), and attempts on a locked key are refused at once — `retryAfterMs` — not
 * delayed, so parallel guesses gain nothing. A success clears only its own (address, user) pair and
 * makes that pair trusted for a while: a user who logged in from an address before is not refused
 * because someone else behind the same NAT or CI runner guesses at other names, or at their name
 * from elsewhere. Attempts of one pair run one at a time (a bounded queue), and attempts of
 * untrusted pairs from one address are bounded in number at once.
 *
 * Kept in memory per process; the audit log records every failure.
 */
export interface ThrottleOptions {
  /** Failures allowed per (address, user) before it locks. */
  pairFree: number;
  /** Failures allowed per user name, from any address, before it locks for untrusted pairs. */
  userFree: number;
  /** Failures allowed per address, for any user, before it locks for untrusted pairs. */
  addressFree: number;
  /** A key without a failure for this long is forgotten. */
  windowMs: number;
  /** The first lock; each further failure doubles it, up to `maxLockMs`. */
  baseLockMs: number;
  maxLockMs: number;
  /** How long a pair that logged in successfully stays trusted. */
  trustMs: number;
  /** Attempts of one pair waiting for their turn before more are refused. */
  maxQueuedPerPair: number;
  /** Attempts of untrusted pairs from one address in progress at once before more are refused. */
  maxActivePerAddress: number;
  now: () => number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  pairFree: 5,
  userFree: 20,
  addressFree: 50,
  windowMs: 15 * 60_000,
  baseLockMs: 1_000,
  maxLockMs: 15 * 60_000,
  trustMs: 24 * 3_600_000,
  maxQueuedPerPair: 128,
  maxActivePerAddress: 16,
  now: () => Date.now(),
};

interface Failures {
  count: number;
  first: number;
  last: number;
}

/** An admitted attempt: call `done` exactly once with its outcome (undefined: it ended in an error, not a verdict). */
export interface Ticket {
  done(succeeded: boolean | undefined): void;
}

/** An attempt refused: try again after this long. */
export interface Refusal {
  retryAfterMs: number;
  /** Which key is locked, for the log. */
  key: 'pair' | 'user' | 'address' | 'busy';
}

const MAX_ENTRIES = 100_000;

export class LoginThrottle {
  private readonly options: ThrottleOptions;
  private readonly pairs = new Map<string, Failures>();
  private readonly users = new Map<string, Failures>();
  private readonly addresses = new Map<string, Failures>();
  private readonly trusted = new Map<string, number>();
  /** Per pair: the tail of its queue and how many wait in it. */
  private readonly queues = new Map<string, { tail: Promise<void>; waiting: number }>();
  private readonly active = new Map<string, number>();

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.options = { ...DEFAULT_THROTTLE, ...options };
  }

  /**
   * Waits for this pair's turn, then admits the attempt or refuses it. A refused attempt must not
   * be checked at all (its answer would still tell a guesser whether the guess was right).
   */
  async admit(client: string, user: string): Promise<Ticket | Refusal> {
    const pair = `${client}\0${user}`;
    const queue = this.queues.get(pair) ?? { tail: Promise.resolve(), waiting: 0 };
    if (queue.waiting >= this.options.maxQueuedPerPair) return { retryAfterMs: 1_000, key: 'busy' };
    queue.waiting++;
    this.queues.set(pair, queue);
    const previous = queue.tail;
    let release!: () => void;
    queue.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    queue.waiting--;
    const finish = () => {
      release();
      if (queue.waiting === 0 && this.queues.get(pair) === queue) this.queues.delete(pair);
    };

    const now = this.options.now();
    const trusted = this.isTrusted(pair, now);
    const refusal =
      this.locked(this.pairs, pair, this.options.pairFree, now, 'pair') ??
      (trusted ? undefined : this.locked(this.users, user, this.options.userFree, now, 'user') ?? this.locked(this.addresses, client, this.options.addressFree, now, 'address'));
    if (refusal) {
      finish();
      return refusal;
    }
    const active = this.active.get(client) ?? 0;
    if (!trusted && active >= this.options.maxActivePerAddress) {
      finish();
      return { retryAfterMs: 1_000, key: 'busy' };
    }
    if (!trusted) this.active.set(client, active + 1);
    let ended = false;
    return {
      done: (succeeded) => {
        if (ended) return;
        ended = true;
        if (!trusted) {
          const n = (this.active.get(client) ?? 1) - 1;
          if (n <= 0) this.active.delete(client);
          else this.active.set(client, n);
        }
        if (succeeded === true) this.succeeded(pair, this.options.now());
        else if (succeeded === false) this.failed(pair, user, client, this.options.now());
        finish();
      },
    };
  }

  /** Failures of this (address, user) pair within the window. */
  failures(client: string, user: string): number {
    return this.current(this.pairs, `${client}\0${user}`, this.options.now())?.count ?? 0;
  }

  private succeeded(pair: string, now: number): void {
    this.pairs.delete(pair);
    if (this.trusted.size >= MAX_ENTRIES) this.trusted.clear();
    this.trusted.set(pair, now + this.options.trustMs);
  }

  private failed(pair: string, user: string, client: string, now: number): void {
    for (const [map, key] of [
      [this.pairs, pair],
      [this.users, user],
      [this.addresses, client],
    ] as const) {
      const entry = this.current(map, key, now) ?? { count: 0, first: now, last: now };
      entry.count++;
      entry.last = now;
      if (map.size >= MAX_ENTRIES) map.clear();
      map.set(key, entry);
    }
  }

  private isTrusted(pair: string, now: number): boolean {
    const until = this.trusted.get(pair);
    if (until === undefined) return false;
    if (until > now) return true;
    this.trusted.delete(pair);
    return false;
  }

  /** A refusal while `key` is locked: `free` failures, then a lock from the last failure that doubles per failure. */
  private locked(map: Map<string, Failures>, key: string, free: number, now: number, name: Refusal['key']): Refusal | undefined {
    const entry = this.current(map, key, now);
    if (!entry || entry.count < free) return undefined;
    const lock = Math.min(this.options.baseLockMs * 2 ** Math.min(entry.count - free, 30), this.options.maxLockMs);
    const until = entry.last + lock;
    return until > now ? { retryAfterMs: until - now, key: name } : undefined;
  }

  private current(map: Map<string, Failures>, key: string, now: number): Failures | undefined {
    const entry = map.get(key);
    if (entry && now - entry.last > this.options.windowMs) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }
}
