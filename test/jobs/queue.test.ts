// The job queue's semantics on both databases: dedupe keys, claims under a lease (one owner per
// job, also when claims race), due times, heartbeats and lease takeover, retries with backoff,
// cancellation through the run's AbortSignal, shutdown handing jobs back, the bounded job log.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startJobs } from '../../src/jobs/index.ts';
import type { JobKind } from '../../src/jobs/kind.ts';
import { JobQueue, retryDelay } from '../../src/jobs/queue.ts';
import { Worker } from '../../src/jobs/worker.ts';
import { JOB_LOG_LINES } from '../../src/metadata/jobs.ts';
import { DIALECTS, eventually, openTestMetadata, quietLog, type TestMetadata } from './stores.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A kind name no other test uses, so each test's worker claims only its own jobs. */
const kindName = (what: string) => `${what}-${randomBytes(3).toString('hex')}`;

test('retryDelay: doubles per attempt from the base, capped, drawn from the upper half', () => {
  const policy = { baseMs: 100, maxMs: 1000 };
  assert.equal(retryDelay(1, policy, () => 0), 50);
  assert.equal(retryDelay(1, policy, () => 1), 100);
  assert.equal(retryDelay(3, policy, () => 1), 400);
  assert.equal(retryDelay(3, policy, () => 0), 200);
  assert.equal(retryDelay(10, policy, () => 1), 1000, 'capped at maxMs');
});

for (const dialect of DIALECTS) {
  describe(`job queue on ${dialect}`, { timeout: 60_000 }, () => {
    let db: TestMetadata;
    const workers: Worker<unknown>[] = [];
    const queue = (leaseMs = 5_000, replica?: string) => new JobQueue(db.meta.jobs, { leaseMs, retry: { baseMs: 100, maxMs: 400 }, ...(replica ? { replica } : {}) });
    const worker = (kinds: JobKind<unknown>[], q = queue()) => {
      const w = new Worker(q, kinds, undefined, { concurrency: 2, pollMs: 20, heartbeatMs: 50, log: quietLog, stopGraceMs: 2_000 });
      workers.push(w);
      w.start();
      return w;
    };
    const job = async (id: number) => (await db.meta.jobs.get(id))!;

    before(async () => {
      db = await openTestMetadata(dialect);
    });
    after(async () => {
      for (const w of workers) await w.stop();
      await db?.close();
    });

    test('a dedupe key makes one job however many callers race to enqueue it', async () => {
      const kind = kindName('dedupe');
      const results = await Promise.all(Array.from({ length: 10 }, () => queue().enqueue({ kind, dedupeKey: `${kind}@1` })));
      assert.equal(results.filter((r) => r.created).length, 1, 'exactly one caller created it');
      assert.equal(new Set(results.map((r) => r.id)).size, 1, 'all were told the same job');
      const other = await queue().enqueue({ kind, dedupeKey: `${kind}@2` });
      assert.ok(other.created && other.id !== results[0]!.id, 'another key is another job');
      assert.equal((await db.meta.jobs.list({ kind, offset: 0, limit: 10 })).total, 2);
    });

    test('racing claims never hand one job to two owners; a claimed job waits out its lease; a job is not claimed before it is due', async () => {
      const kind = kindName('race');
      const ids = new Set<number>();
      for (let i = 0; i < 12; i++) ids.add((await queue().enqueue({ kind, payload: { i } })).id);
      const later = await queue().enqueue({ kind, runAt: Date.now() + 60_000 });
      const claims = await Promise.all(Array.from({ length: 6 }, (_, i) => queue(5_000, `r${i}`).claim([kind], 4)));
      const claimed = claims.flat().map((c) => c.job.id);
      assert.equal(claimed.length, 12, 'every due job was claimed');
      assert.deepEqual(new Set(claimed), ids, 'each exactly once, and not the one due later');
      assert.ok(!claimed.includes(later.id));
      for (const c of claims.flat()) {
        assert.equal(c.row.state, 'running');
        assert.equal(c.row.attempts, 1);
        assert.equal(c.row.lease_owner, c.owner);
      }
      assert.deepEqual(await queue().claim([kind], 10), [], 'nothing left while the leases hold');
      assert.deepEqual(await queue().claim(['another-kind'], 10), [], 'claims only the kinds asked for');
    });

    test('a heartbeat extends the lease; a lapsed lease is taken over, and the old owner can no longer change the job', async () => {
      const kind = kindName('lease');
      const { id } = await queue().enqueue({ kind });
      const [first] = await queue(300, 'a').claim([kind], 1);
      assert.ok(first);
      const leased = (await job(id)).lease_until!;
      await sleep(20);
      await first.heartbeat();
      assert.ok((await job(id)).lease_until! > leased, 'the heartbeat moved the lease');
      assert.deepEqual(await queue(300, 'b').claim([kind], 1), [], 'not taken while the lease holds');
      await sleep(350);
      const [second] = await queue(300, 'b').claim([kind], 1);
      assert.ok(second, 'taken over once the lease lapsed');
      assert.equal(second.row.attempts, 2, 'the takeover counts as an attempt');
      assert.match(second.row.lease_owner!, /^b#/);
      assert.equal(await first.complete(), false, 'the old owner cannot settle it');
      await first.heartbeat();
      assert.equal(first.abortReason, 'lease-lost', "the old owner's run is told to stop");
      assert.equal((await job(id)).state, 'running');
      assert.equal(await second.complete(), true);
      assert.equal((await job(id)).state, 'succeeded');
    });

    test('a failing job is retried with backoff until max_attempts, then fails for good; one that recovers succeeds', async () => {
      const failing = kindName('failing');
      const flaky = kindName('flaky');
      const starts = new Map<number, number[]>();
      const note = (id: number) => starts.set(id, [...(starts.get(id) ?? []), Date.now()]);
      worker([
        { kind: failing, run: async (j) => (note(j.id), Promise.reject(new Error(`disk full on attempt ${j.attempt}`))) },
        { kind: flaky, run: async (j) => { note(j.id); if (j.attempt < 2) throw new Error('try again'); } },
      ]);
      const doomed = await queue().enqueue({ kind: failing, maxAttempts: 3 });
      const recovering = await queue().enqueue({ kind: flaky, maxAttempts: 3 });
      const failed = await eventually('the failing job to fail', async () => ((await job(doomed.id)).state === 'failed' ? job(doomed.id) : undefined));
      assert.equal(failed.attempts, 3);
      assert.equal(failed.error, 'disk full on attempt 3');
      const times = starts.get(doomed.id)!;
      assert.equal(times.length, 3, 'three runs, no more');
      // Backoff 100 ms doubling with equal jitter: at least 50 ms, then at least 100 ms.
      assert.ok(times[1]! - times[0]! >= 45, `first retry after ${times[1]! - times[0]!} ms`);
      assert.ok(times[2]! - times[1]! >= 95, `second retry after ${times[2]! - times[1]!} ms`);
      const log = (await db.meta.jobs.logs(doomed.id)).map((l) => l.message);
      assert.ok(log.includes('attempt 1 failed: disk full on attempt 1') && log.includes('attempt 3 failed: disk full on attempt 3'), log.join('\n'));
      const recovered = await eventually('the flaky job to succeed', async () => ((await job(recovering.id)).state === 'succeeded' ? job(recovering.id) : undefined));
      assert.equal(recovered.attempts, 2);
      assert.equal(recovered.error, 'try again', 'the last failure stays visible');
    });

    test('cancelling: a queued job ends at once and never runs; a running one sees it through its signal at the next heartbeat', async () => {
      const kind = kindName('cancel');
      const reasons: unknown[] = [];
      const ran: number[] = [];
      worker([
        {
          kind,
          run: (j, ctx) =>
            new Promise<void>((_, reject) => {
              ran.push(j.id);
              ctx.signal.addEventListener('abort', () => (reasons.push(ctx.signal.reason), reject(new Error('stopped'))));
            }),
        },
      ]);
      const queued = await queue().enqueue({ kind, runAt: Date.now() + 60_000 });
      const cancelledQueued = await db.meta.jobs.cancel(queued.id);
      assert.equal(cancelledQueued?.state, 'cancelled');
      assert.ok(cancelledQueued?.finished_at);
      const running = await queue().enqueue({ kind });
      await eventually('the job to run', async () => ran.includes(running.id));
      const asked = await db.meta.jobs.cancel(running.id);
      assert.equal(asked?.state, 'running', 'a running job is asked, not stopped');
      assert.equal(asked?.cancel_requested, 1);
      const done = await eventually('the running job to end cancelled', async () => ((await job(running.id)).state === 'cancelled' ? job(running.id) : undefined));
      assert.deepEqual(reasons, ['cancelled'], "the run's signal said why");
      assert.equal(done.lease_owner, null);
      assert.ok(!ran.includes(queued.id), 'the queued job never ran');
      assert.equal(await db.meta.jobs.cancel(999_999), undefined, 'an unknown job');
      assert.equal((await db.meta.jobs.cancel(running.id))?.state, 'cancelled', 'cancelling a finished job changes nothing');
    });

    test('a stopping worker hands its running job back, its attempt not counted', async () => {
      const kind = kindName('shutdown');
      const w = worker([{ kind, run: (_j, ctx) => new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))) }]);
      const { id } = await queue().enqueue({ kind });
      await eventually('the job to run', async () => (await job(id)).state === 'running');
      await w.stop();
      const back = await job(id);
      assert.equal(back.state, 'queued');
      assert.equal(back.attempts, 0);
      assert.equal(back.lease_owner, null);
      assert.ok(back.run_at <= Date.now(), 'due at once, for another replica');
    });

    test('a lapsed job with no attempts left fails; a lapsed one whose cancellation was asked ends cancelled', async () => {
      const kind = kindName('reap');
      // Running workers reap too: stop them, so the count below is this test's.
      for (const w of workers.splice(0)) await w.stop();
      const exhausted = await queue().enqueue({ kind, maxAttempts: 1 });
      const asked = await queue().enqueue({ kind, maxAttempts: 3 });
      assert.equal((await queue(50).claim([kind], 2)).length, 2);
      await db.meta.jobs.cancel(asked.id);
      await sleep(80);
      assert.deepEqual(await queue().claim([kind], 2), [], 'neither is taken over');
      assert.equal(await queue().reap(), 2);
      const failed = await job(exhausted.id);
      assert.equal(failed.state, 'failed');
      assert.match(failed.error!, /lease lapsed on the last attempt/);
      assert.equal((await job(asked.id)).state, 'cancelled');
    });

    if (dialect === 'postgres') {
      test('an idle replica is woken by NOTIFY when another enqueues, long before its next poll', async () => {
        const kind = kindName('notify');
        const ran: number[] = [];
        const jobs = await startJobs({
          meta: db.meta,
          log: quietLog,
          config: { jobs: { concurrency: 1, pollInterval: 60, lease: 60 } },
          kinds: [{ kind, run: async (j) => void ran.push(j.id) }],
          context: undefined,
        });
        try {
          // Its first poll has passed; the next is a minute away. The enqueue comes from another queue,
          // as from another replica: only PostgreSQL's NOTIFY can reach this worker.
          await sleep(300);
          const { id } = await queue().enqueue({ kind });
          await eventually('the woken worker to run the job', async () => ran.includes(id), 5_000);
        } finally {
          await jobs.stop();
        }
      });
    }

    test("a job's log keeps its newest lines", async () => {
      const kind = kindName('log');
      const { id } = await queue().enqueue({ kind });
      const [claimed] = await queue().claim([kind], 1);
      for (let i = 0; i < JOB_LOG_LINES + 60; i++) await claimed!.log('info', `line ${i}`);
      await claimed!.complete();
      const lines = await db.meta.jobs.logs(id, 10_000);
      assert.equal(lines.length, JOB_LOG_LINES, 'trimmed to the newest lines when the job ended');
      assert.equal(lines.at(-1)!.message, `line ${JOB_LOG_LINES + 59}`);
      assert.equal(lines[0]!.message, 'line 60');
    });
  });
}
