// test/e2e/proxy-cache.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../e2e/proxy-cache.test.ts';
