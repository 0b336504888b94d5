// test/http/members-groups.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/members-groups.test.ts';
