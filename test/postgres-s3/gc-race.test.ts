// test/e2e/gc-race.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../e2e/gc-race.test.ts';
