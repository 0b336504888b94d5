// test/http/quota-refusal.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/quota-refusal.test.ts';
