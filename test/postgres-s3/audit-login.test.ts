// test/http/audit-login.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/audit-login.test.ts';
