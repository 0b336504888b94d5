// test/http/manifest-cache.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/manifest-cache.test.ts';
