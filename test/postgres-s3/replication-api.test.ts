// test/http/replication-api.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/replication-api.test.ts';
