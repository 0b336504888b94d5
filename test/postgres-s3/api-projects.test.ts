// test/http/api-projects.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-projects.test.ts';
