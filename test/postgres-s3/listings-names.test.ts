// test/http/listings-names.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/listings-names.test.ts';
