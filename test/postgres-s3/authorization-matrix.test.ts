// test/http/authorization-matrix.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/authorization-matrix.test.ts';
