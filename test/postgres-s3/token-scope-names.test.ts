// test/http/token-scope-names.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/token-scope-names.test.ts';
