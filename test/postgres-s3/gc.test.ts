// test/http/gc.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/gc.test.ts';
