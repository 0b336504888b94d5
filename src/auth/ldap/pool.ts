// A small pool of open connections: at most `size` exist at once, idle ones are reused, dead ones
// are dropped and replaced, and a caller waits for a free one at most `waitMs`.

/** How the pool makes, checks and ends its connections. */
export interface PoolOptions<T> {
  /** Most connections open at once (idle plus in use). */
  size: number;
  /** Longest wait for a free connection before {@link Pool.use} rejects with `onWaitTimeout()`. */
  waitMs: number;
  /** Opens a ready-to-use connection; its rejection is the caller's rejection. */
  open(): Promise<T>;
  /** Whether an idle connection is still usable (checked before reuse and after each use). */
  healthy(conn: T): boolean;
  /** Ends a connection; must not throw. */
  close(conn: T): Promise<void>;
  /** The error a caller gets when no connection became free in time. */
  onWaitTimeout(): Error;
  /** The error a caller gets after {@link Pool.close}. */
  onClosed(): Error;
}

/** A bounded pool of connections (see {@link PoolOptions}). */
export class Pool<T> {
  readonly #options: PoolOptions<T>;
  readonly #idle: T[] = [];
  readonly #waiters: Array<() => void> = [];
  #open = 0;
  #closed = false;

  constructor(options: PoolOptions<T>) {
    this.#options = options;
  }

  /** Connections open right now (idle and in use); for tests and metrics. */
  get size(): number {
    return this.#open;
  }

  /**
   * Runs `fn` with a connection and gives the connection back afterwards (or drops it when it is
   * no longer healthy or `fn` reports it broken through `isBroken`). When a reused idle connection
   * turns out to have died while idle (`wasStale(error)` true, e.g. closed by the server), `fn`
   * is retried once on a fresh one. Rejects with `fn`'s error, `open()`'s error,
   * `onWaitTimeout()` or `onClosed()`.
   */
  async use<R>(fn: (conn: T) => Promise<R>, isBroken: (error: unknown) => boolean, wasStale: (error: unknown) => boolean = isBroken): Promise<R> {
    const deadline = Date.now() + this.#options.waitMs;
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = await this.#acquire(deadline);
      let broken = false;
      try {
        return await fn(conn);
      } catch (error) {
        broken = isBroken(error);
        if (broken && reused && attempt === 0 && wasStale(error)) continue;
        throw error;
      } finally {
        this.#release(conn, broken);
      }
    }
  }

  /** Closes idle connections now and the others when they come back; later use() calls reject with onClosed(). */
  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    this.#open -= idle.length;
    for (const wake of this.#waiters.splice(0)) wake();
    await Promise.all(idle.map((c) => this.#options.close(c)));
  }

  async #acquire(deadline: number): Promise<{ conn: T; reused: boolean }> {
    for (;;) {
      if (this.#closed) throw this.#options.onClosed();
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        if (this.#options.healthy(idle)) return { conn: idle, reused: true };
        this.#drop(idle);
        continue;
      }
      if (this.#open < this.#options.size) {
        this.#open++;
        try {
          return { conn: await this.#options.open(), reused: false };
        } catch (error) {
          this.#open--;
          this.#wakeOne();
          throw error;
        }
      }
      await this.#waitForChange(deadline);
    }
  }

  #release(conn: T, broken: boolean): void {
    if (broken || this.#closed || !this.#options.healthy(conn)) this.#drop(conn);
    else this.#idle.push(conn);
    this.#wakeOne();
  }

  #drop(conn: T): void {
    this.#open--;
    void this.#options.close(conn);
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }

  #waitForChange(deadline: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(wake);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(this.#options.onWaitTimeout());
      }, Math.max(0, deadline - Date.now()));
      this.#waiters.push(wake);
    });
  }
}
