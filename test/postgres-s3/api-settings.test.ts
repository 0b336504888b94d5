// test/http/api-settings.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-settings.test.ts';
