// test/http/webhooks-api.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/webhooks-api.test.ts';
