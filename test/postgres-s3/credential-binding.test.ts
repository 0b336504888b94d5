// test/http/credential-binding.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/credential-binding.test.ts';
