// The job system across replicas on one PostgreSQL database: three processes (test/jobs/replica.ts),
// each with its own connection pool, worker and scheduler. 1,000 jobs raced for run exactly once
// each; a per-second cron fires once per tick; a job whose replica is killed with SIGKILL is
// finished by another once its lease lapses.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { JobQueue } from '../../src/jobs/queue.ts';
import { REPO_ROOT } from '../support/berth.ts';
import { eventually, openTestMetadata, type TestMetadata } from './stores.ts';

const REPLICAS = 3;
const LEASE_SECONDS = 1;

interface Replica {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

/** Starts one replica process; resolves once it prints `ready`. */
async function startReplica(url: string, name: string): Promise<Replica> {
  const args = JSON.stringify({ url, replica: name, concurrency: 4, pollSeconds: 0.1, leaseSeconds: LEASE_SECONDS });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/jobs/replica.ts'), args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${name} did not start within 30 s`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      if (line === 'ready') resolve();
      else reject(new Error(`replica ${name} printed ${JSON.stringify(line)}`));
    });
    child.once('exit', (code) => reject(new Error(`replica ${name} exited (${code}) before it was ready`)));
  });
  return { name, child, exited };
}

describe('jobs across three replicas on PostgreSQL', { timeout: 120_000 }, () => {
  let db: TestMetadata;
  let replicas: Replica[] = [];
  let queue: JobQueue;
  const runs = (kind: string) =>
    sql<{ job_id: number; replica: string; attempt: number }>`select job_id, replica, attempt from job_runs where kind = ${kind} order by id`.execute(db.meta.db).then((r) => r.rows);

  before(async () => {
    db = await openTestMetadata('postgres', 4);
    await sql`create table job_runs (id serial primary key, job_id integer not null, kind text not null, replica text not null, attempt integer not null)`.execute(db.meta.db);
    queue = new JobQueue(db.meta.jobs, { leaseMs: 60_000, replica: 'test' });
    replicas = await Promise.all(Array.from({ length: REPLICAS }, (_, i) => startReplica(db.url!, `replica-${i}-${randomBytes(2).toString('hex')}`)));
  });

  after(async () => {
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
    await Promise.race([Promise.all(replicas.map((r) => r.exited)), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await db?.close();
  });

  test('1,000 jobs raced for by three replicas each run exactly once', async () => {
    const ids: number[] = [];
    // Enqueued while the replicas already claim: the race starts with the first job.
    for (let n = 0; n < 1000; n += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, i) => queue.enqueue({ kind: 'record-run', payload: { n: n + i } })));
      ids.push(...batch.map((b) => b.id));
    }
    await eventually(
      'all 1,000 jobs to succeed',
      async () => (await db.meta.jobs.list({ kind: 'record-run', state: 'succeeded', offset: 0, limit: 1 })).total === 1000,
      60_000,
    );
    const recorded = await runs('record-run');
    assert.equal(recorded.length, 1000, 'exactly 1,000 runs');
    assert.deepEqual(new Set(recorded.map((r) => r.job_id)), new Set(ids), 'one run of each job, no duplicates');
    assert.ok(recorded.every((r) => r.attempt === 1), 'no job needed a second attempt');
    const perReplica = new Map<string, number>();
    for (const r of recorded) perReplica.set(r.replica, (perReplica.get(r.replica) ?? 0) + 1);
    assert.ok(perReplica.size >= 2, `the replicas shared the work: ${JSON.stringify([...perReplica])}`);
  });

  test('a per-second cron schedule fires once per tick across the replicas', async () => {
    const name = `every-second-${randomBytes(2).toString('hex')}`;
    await db.meta.schedules.put({ name, kind: 'tick', cron: '* * * * * *' });
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await db.meta.schedules.put({ name, kind: 'tick', cron: '* * * * * *', enabled: false });
    // The replicas read the table every 0.1 s; a tick being enqueued right now still lands.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const jobs = await db.meta.db.selectFrom('jobs').select(['id', 'dedupe_key']).where('dedupe_key', 'like', `${name}@%`).execute();
    const ticks = jobs.map((j) => Date.parse(j.dedupe_key!.slice(name.length + 1))).sort((a, b) => a - b);
    assert.ok(ticks.length >= 3, `at least three ticks in 3.5 s: ${ticks.length}`);
    for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]! - ticks[i - 1]!, 1000, 'one job per second, none missed, none twice');
    await eventually('every tick job to succeed', async () => {
      const states = await db.meta.db.selectFrom('jobs').select('state').where('dedupe_key', 'like', `${name}@%`).execute();
      return states.every((s) => s.state === 'succeeded');
    });
    const recorded = (await runs('tick')).filter((r) => jobs.some((j) => Number(j.id) === r.job_id));
    assert.equal(recorded.length, jobs.length, 'each tick ran once');
    assert.equal(new Set(recorded.map((r) => r.job_id)).size, jobs.length);
    const schedule = (await db.meta.schedules.list()).find((s) => s.name === name)!;
    assert.equal(schedule.last_run_at, ticks.at(-1), 'the schedule notes its last tick');
  });

  test('a job whose replica is killed (SIGKILL) is finished by another once its lease lapses', async () => {
    const { id } = await queue.enqueue({ kind: 'hang-once' });
    const owner = await eventually('the job to be running', async () => {
      const row = await db.meta.jobs.get(id);
      return row?.state === 'running' && (await runs('hang-once')).some((r) => r.job_id === id) ? row.lease_owner! : undefined;
    });
    const victim = replicas.find((r) => owner.startsWith(`${r.name}#`));
    assert.ok(victim, `the owner ${owner} is one of the replicas`);
    victim.child.kill('SIGKILL');
    await victim.exited;
    const done = await eventually('another replica to finish the job', async () => {
      const row = await db.meta.jobs.get(id);
      return row?.state === 'succeeded' ? row : undefined;
    }, 20_000);
    assert.equal(done.attempts, 2, 'the killed run, then the one that took over');
    const recorded = (await runs('hang-once')).filter((r) => r.job_id === id);
    assert.deepEqual(recorded.map((r) => r.attempt), [1, 2]);
    assert.equal(recorded[0]!.replica, victim.name);
    assert.notEqual(recorded[1]!.replica, victim.name, 'finished by a replica that is alive');
    const log = (await db.meta.jobs.logs(id)).map((l) => l.message);
    assert.ok(log.some((m) => m.startsWith('attempt 2 of 3 started on ') && !m.includes(victim.name)), log.join('\n'));
  });
});
