// test/http/upload-expiry.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/upload-expiry.test.ts';
