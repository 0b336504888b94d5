// test/http/api.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api.test.ts';
