// test/http/refused-bodies.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/refused-bodies.test.ts';
