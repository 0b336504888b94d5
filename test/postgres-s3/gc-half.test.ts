// test/e2e/gc-half.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../e2e/gc-half.test.ts';
