// test/http/api-openapi.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-openapi.test.ts';
