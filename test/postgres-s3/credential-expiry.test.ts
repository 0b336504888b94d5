// test/http/credential-expiry.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/credential-expiry.test.ts';
