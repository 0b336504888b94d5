// test/http/api-repositories.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-repositories.test.ts';
