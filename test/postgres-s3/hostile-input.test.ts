// test/http/hostile-input.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/hostile-input.test.ts';
