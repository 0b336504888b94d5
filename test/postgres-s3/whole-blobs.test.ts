// test/http/whole-blobs.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/whole-blobs.test.ts';
