// test/http/fuzz.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/fuzz.test.ts';
