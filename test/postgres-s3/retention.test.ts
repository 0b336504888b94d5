// test/http/retention.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/retention.test.ts';
