// test/http/library-project.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/library-project.test.ts';
