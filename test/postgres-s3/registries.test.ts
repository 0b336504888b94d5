// test/http/registries.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/registries.test.ts';
