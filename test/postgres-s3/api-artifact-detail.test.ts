// test/http/api-artifact-detail.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-artifact-detail.test.ts';
