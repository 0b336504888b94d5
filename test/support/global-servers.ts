// Started by test/run.js for the PostgreSQL + S3 pass: one PostgreSQL and one S3 server shared by
// every test file of the pass (each test server gets its own database and key prefix, see
// backend.ts). Prints one JSON line with the environment that points test files at them, then
// runs until its stdin closes or it is signalled, and stops both by pid.
import { startPostgres } from './postgres.ts';
import { startS3 } from './s3.ts';

const [postgres, s3] = await Promise.all([startPostgres(), startS3()]);
let stopping: Promise<void> | undefined;
const stop = () => (stopping ??= Promise.allSettled([postgres.stop(), s3.stop()]).then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
const base = new URL(postgres.url('postgres'));
base.pathname = '';
process.stdout.write(`${JSON.stringify({ BERTH_TEST_PG_URL: base.toString().replace(/\/$/, ''), BERTH_TEST_S3_ENDPOINT: s3.endpoint })}\n`);
