// test/http/quota-deletion.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/quota-deletion.test.ts';
