// test/http/upload-streaming.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/upload-streaming.test.ts';
