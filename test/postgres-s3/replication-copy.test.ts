// test/replication/copy.test.ts on PostgreSQL + S3 (the local side's registry services).
import '../support/postgres-s3.ts';
import '../replication/copy.test.ts';
