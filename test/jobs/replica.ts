// One replica's job system in a process of its own, for replicas.test.ts: a worker and a scheduler
// on a PostgreSQL database shared with the other replicas, running test kinds that record each run
// in the table `job_runs`. Argument: JSON { url, replica, concurrency, pollSeconds, leaseSeconds }.
// Prints `ready` once running; stops cleanly on SIGTERM or when its stdin closes (a SIGKILL is what
// the takeover test sends).
import { sql } from 'kysely';
import { pino } from 'pino';
import { configSchema } from '../../src/config/schema.ts';
import { startJobs, type JobKind } from '../../src/jobs/index.ts';
import { openMetadataFor } from '../../src/metadata/index.ts';

const options = JSON.parse(process.argv[2]!) as { url: string; replica: string; concurrency: number; pollSeconds: number; leaseSeconds: number };
const config = configSchema.parse({ database: { url: options.url, poolSize: options.concurrency + 2 }, jobs: { concurrency: options.concurrency } });
const meta = await openMetadataFor(config);

const record = (jobId: number, kind: string, attempt: number) =>
  sql`insert into job_runs (job_id, kind, replica, attempt) values (${jobId}, ${kind}, ${options.replica}, ${attempt})`.execute(meta.db);

const kinds: JobKind<undefined>[] = [
  { kind: 'record-run', run: async (job) => void (await record(job.id, job.kind, job.attempt)) },
  { kind: 'tick', run: async (job) => void (await record(job.id, job.kind, job.attempt)) },
  {
    // The first attempt hangs until its replica is killed; the one that takes it over finishes.
    kind: 'hang-once',
    run: async (job, ctx) => {
      await record(job.id, job.kind, job.attempt);
      if (job.attempt > 1) return;
      await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped'))));
    },
  },
];

const jobs = await startJobs({
  meta,
  log: pino({ level: process.env.BERTH_TEST_LOG ?? 'warn', base: { replica: options.replica } }, pino.destination(2)),
  // Fractions of a second, as tests need; the configuration's own parser takes whole units.
  config: { jobs: { concurrency: options.concurrency, pollInterval: options.pollSeconds, lease: options.leaseSeconds } },
  kinds,
  context: undefined,
  replica: options.replica,
});
process.stdout.write('ready\n');

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await jobs.stop();
    await meta.close();
    process.exit(0);
  })();
};
process.once('SIGTERM', stop);
// The test holds our stdin open: when it ends (the test process died), stop too.
process.stdin.on('end', stop);
process.stdin.resume();
