// test/http/proxy-aware.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/proxy-aware.test.ts';
