// test/http/sso-oidc.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/sso-oidc.test.ts';
