// test/http/upload-diagnosis-privacy.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/upload-diagnosis-privacy.test.ts';
