import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseStore } from '../metadata/leases.ts';

/** How long a replica's lease on an upstream fetch lasts; a fetch of a manifest takes far less. */
const LEASE_MS = 30_000;

/**
 * One upstream request for many callers: concurrent callers on this replica share one promise, and
 * replicas share a lease in the database. A replica that finds the lease taken waits for what the
 * holder records (`recorded`), polling with backoff, and does the work itself only once the lease
 * is free (the holder ended or died) or `patienceMs` has passed.
 */
export class Shared {
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(
    private readonly leases: LeaseStore,
    private readonly owner: string,
    private readonly patienceMs: number,
  ) {}

  /** `work()` once for `key` at a time, or what another replica's run of it recorded (`recorded()`). */
  run<T>(key: string, recorded: () => Promise<T | undefined>, work: () => Promise<T>): Promise<T> {
    let pending = this.inflight.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = this.leased(key, recorded, work).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  private async leased<T>(key: string, recorded: () => Promise<T | undefined>, work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.patienceMs;
    for (let wait = 25; ; wait = Math.min(wait * 2, 400)) {
      if (await this.leases.acquire(key, this.owner, LEASE_MS)) {
        try {
          return await work();
        } finally {
          await this.leases.release(key, this.owner).catch(() => undefined);
        }
      }
      const done = await recorded();
      if (done !== undefined) return done;
      if (Date.now() >= deadline) return work();
      await sleep(wait);
    }
  }
}
