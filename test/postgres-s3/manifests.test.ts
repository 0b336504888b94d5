// test/http/manifests.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/manifests.test.ts';
