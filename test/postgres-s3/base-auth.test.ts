// test/http/base-auth.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/base-auth.test.ts';
