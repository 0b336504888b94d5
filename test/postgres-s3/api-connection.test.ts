// test/http/api-connection.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/api-connection.test.ts';
