// test/http/immutability.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/immutability.test.ts';
