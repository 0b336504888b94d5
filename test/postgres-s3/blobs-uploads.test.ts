// test/http/blobs-uploads.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/blobs-uploads.test.ts';
