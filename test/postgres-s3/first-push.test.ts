// test/http/first-push.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/first-push.test.ts';
